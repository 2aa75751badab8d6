"""The physical prior's terms, one module each, in the registry :data:`PRIOR_TERMS`:
``bonds``, ``angles``, ``angle_wall``, ``dihedrals``, ``impropers``, ``repulsion``.
:class:`~cgpipe.models.prior.Prior` is their sum; see :mod:`.base` for the interface."""

from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm

__all__ = ["PRIOR_TERMS", "PriorTerm"]
