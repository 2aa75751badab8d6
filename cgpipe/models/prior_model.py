"""The fitted prior alone as a model: the baseline that every learned model must beat.

Nothing in it is trained (its parameters are buffers fitted by Boltzmann inversion);
a trainer only scores it on the held-out trajectories. Two negative controls (deliberately
weakened models) are built on it: ``prior_no_dihedrals`` (the prior fitted without its
dihedral term; the prior itself on maps without dihedrals) and ``prior_hot`` (the prior
sampling a stated wrong temperature; weaker on every map).
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


@MODELS.register("prior_hot")
class HotPrior(PriorModel):
    """A negative control on every map: the fold's prior made to sample a wrong, stated
    temperature. Every term's energy is scaled by T / T_control (T the temperature the
    prior was fitted at, the system's), so that Langevin dynamics at T samples
    exp(-U / k T_control), the prior's ensemble at T_control: bond lengths, angles and
    torsions all broaden (harmonic variances by T_control / T). Unlike
    ``prior_no_dihedrals`` it differs from the prior on maps without dihedrals (<= 3
    beads), where that control is the prior itself.

    Parameters
    ----------
    bead_types, prior
        As for :class:`PriorModel`.
    temperature
        T_control (K), config ``models.prior_hot.temperature``.
    """

    def __init__(
        self, bead_types: Sequence[int], prior: Mapping[str, Any], temperature: float
    ) -> None:
        super().__init__(bead_types, prior)
        if not temperature > 0:
            raise ValueError(f"prior_hot: temperature must be positive, got {temperature} K")
        self.record_hparams(temperature=float(temperature))
        self.scale = self.prior.temperature / float(temperature)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        return self.scale * self.prior(positions)
