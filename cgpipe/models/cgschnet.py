"""CGSchNet (Husic et al. 2020): the physical prior plus a SchNet energy network.

E(z) = prior(z) + SchNet(bead types, z); the network learns the part of the potential
of mean force that the prior's terms (bonds, angles, dihedrals, walls, repulsion) do not
describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from cgpipe.models.base import MODELS, EnergyModel
from cgpipe.models.schnet import SchNet


@MODELS.register("cgschnet")
class CGSchNet(EnergyModel):
    """Prior plus SchNet.

    Parameters
    ----------
    bead_types
        [n_beads] integer bead types; the network embeds ``max(bead_types) + 1`` types.
    prior
        Constructor arguments of :class:`~cgpipe.models.prior.Prior`, or ``None`` for the
        network alone.
    hidden_channels, num_filters, num_interactions, num_gaussians
        Widths and depth of :class:`~cgpipe.models.schnet.SchNet`.
    cutoff
        Radius-graph and cosine-cutoff radius, nm.
    """

    def __init__(
        self,
        bead_types: Sequence[int],
        prior: Mapping[str, Any] | None,
        *,
        hidden_channels: int,
        num_filters: int,
        num_interactions: int,
        num_gaussians: int,
        cutoff: float,
    ) -> None:
        # The prior is built first and holds no random numbers, so the network's random
        # initialisation is the first use of the seeded global generator.
        super().__init__(bead_types, prior)
        options = {
            "hidden_channels": int(hidden_channels),
            "num_filters": int(num_filters),
            "num_interactions": int(num_interactions),
            "num_gaussians": int(num_gaussians),
            "cutoff": float(cutoff),
        }
        self.record_hparams(**options)
        self.network = SchNet(num_types=max(self.hparams["bead_types"]) + 1, **options)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        if self.prior is None:
            return self.network(self.bead_types, positions)
        # The prior first, as before the registry: the same graph gives the same gradients
        # to the last bit.
        energy = self.prior(positions)
        return energy + self.network(self.bead_types, positions)
