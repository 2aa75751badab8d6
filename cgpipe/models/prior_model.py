"""The fitted prior alone as a model: the baseline that every learned model must beat.

Nothing in it is trained (its parameters are buffers fitted by Boltzmann inversion);
a trainer only scores it on the held-out trajectories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from cgpipe.models.base import MODELS, EnergyModel


@MODELS.register("prior")
class PriorModel(EnergyModel):
    """E(z) = prior(z).

    Parameters
    ----------
    bead_types
        [n_beads] integer bead types.
    prior
        Constructor arguments of :class:`~cgpipe.models.prior.Prior`.
    """

    def __init__(self, bead_types: Sequence[int], prior: Mapping[str, Any]) -> None:
        if prior is None:
            raise ValueError("the prior model needs a prior")
        super().__init__(bead_types, prior)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        return self.prior(positions)


@MODELS.register("prior_no_dihedrals")
class PriorWithoutDihedrals(PriorModel):
    """The negative control: the prior fitted without its dihedral term (bonds, angles,
    impropers and repulsion only), so that it cannot hold the backbone's torsional free
    energy; a metric that scores it within the reference's noise floor cannot tell a bad
    model from a good one."""

    prior_overrides = {"dihedral_order": 0}
