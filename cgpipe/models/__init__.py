"""CG force-field models: energy functions of CG coordinates, forces -dE/dz.

Every model maps CG positions [n_frames, n_beads, 3] (nm) to energies [n_frames]
(kJ/mol); forces (kJ/mol/nm) are -dE/dz by autograd, so they are conservative by
construction. Models are plug-ins: each subclasses :class:`EnergyModel` in its own
module of this package and registers itself in :data:`MODELS`; a checkpoint records
the registered name, so :func:`load_model` rebuilds any of them.
"""

from cgpipe.models.base import (
    CHECKPOINT_FORMAT,
    MODELS,
    EnergyModel,
    force_rmse,
    load_model,
    save_model,
)
from cgpipe.models.neighbours import NeighbourList, NeighbourListOverflow, pair_distances
from cgpipe.models.prior import Prior, fit_prior
from cgpipe.models.schnet import SchNet

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODELS",
    "EnergyModel",
    "NeighbourList",
    "NeighbourListOverflow",
    "Prior",
    "SchNet",
    "fit_prior",
    "force_rmse",
    "load_model",
    "pair_distances",
    "save_model",
]
