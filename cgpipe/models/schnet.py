"""SchNet energy network (Schütt et al. 2018) for CG beads, as used by CGSchNet
(Husic et al. 2020).

Bead types are embedded; interaction blocks apply continuous-filter convolutions whose
filters are generated from a Gaussian radial-basis expansion of pair distances and
damped by a cosine cutoff; shifted softplus is the non-linearity. A per-bead MLP gives
bead energies that are summed per frame. The energy depends on distances only, so it is
invariant to rotation, translation and permutation of beads of the same type.

torch-geometric's layers (``InteractionBlock``, ``GaussianSmearing``,
``ShiftedSoftplus``) are reused, imported when a SchNet is built: importing
torch-geometric takes about 3 s (it loads torch._dynamo), which every job of the prior
and of models without SchNet would otherwise pay. The radius graph comes from
:func:`cgpipe.models.neighbours.radius_graph`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cgpipe.models.neighbours import radius_graph


class SchNet(nn.Module):
    """Energy network E(types, positions).

    Parameters
    ----------
    num_types
        Number of bead types (embedding rows).
    hidden_channels, num_filters, num_interactions, num_gaussians
        Widths and depth.
    cutoff
        Radius-graph and cosine-cutoff radius in nm.
    """

    def __init__(
        self,
        num_types: int,
        hidden_channels: int = 64,
        num_filters: int = 64,
        num_interactions: int = 3,
        num_gaussians: int = 50,
        cutoff: float = 1.0,
    ) -> None:
        from torch_geometric.nn.models.schnet import (
            GaussianSmearing,
            InteractionBlock,
            ShiftedSoftplus,
        )

        super().__init__()
        self.hparams: dict[str, Any] = {
            "num_types": num_types,
            "hidden_channels": hidden_channels,
            "num_filters": num_filters,
            "num_interactions": num_interactions,
            "num_gaussians": num_gaussians,
            "cutoff": cutoff,
        }
        self.cutoff = cutoff
        self.embedding = nn.Embedding(num_types, hidden_channels)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden_channels, num_gaussians, num_filters, cutoff)
            for _ in range(num_interactions)
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_channels, hidden_channels // 2),
            ShiftedSoftplus(),
            nn.Linear(hidden_channels // 2, 1),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for interaction in self.interactions:
            interaction.reset_parameters()
        for layer in self.head:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, types: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm).

        ``types`` is [n_beads] (shared by all frames) of integer bead types.
        """
        n_frames, n_beads, _ = positions.shape
        edge_index = radius_graph(positions, self.cutoff)
        flat = positions.reshape(-1, 3)
        distances = torch.linalg.vector_norm(flat[edge_index[0]] - flat[edge_index[1]], dim=-1)
        edge_attr = self.distance_expansion(distances)
        h = self.embedding(types).repeat(n_frames, 1)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, distances, edge_attr)
        return self.head(h).view(n_frames, n_beads).sum(dim=1)
