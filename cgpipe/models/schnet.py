"""SchNet energy network (Schütt et al. 2018) for CG beads, as used by CGSchNet
(Husic et al. 2020).

Bead types are embedded; interaction blocks apply continuous-filter convolutions whose
filters are generated from a Gaussian radial-basis expansion of pair distances and
damped by a cosine cutoff; shifted softplus is the non-linearity. A per-bead MLP gives
bead energies that are summed per frame. The energy depends on distances only, so it is
invariant to rotation, translation and permutation of beads of the same type.

The parameters are held as torch-geometric's SchNet holds them (``InteractionBlock`` with
its ``mlp``, ``conv.lin1``, ``conv.lin2``, ``conv.nn`` and ``lin``; ``GaussianSmearing``'s
``offset``), made in the same order with the same initialisation, so that a seed gives the
same weights and checkpoints keep their names; tests/unit/models/test_schnet.py checks
both, and the energy against torch-geometric's own layers. The layers are written here
because importing torch-geometric costs 2-4 s (it loads torch._dynamo and its datasets),
paid by every training, simulation and evaluation job of a SchNet model, where it was the
largest part of a test job's time. Message passing runs on the static-shape table of
:class:`cgpipe.models.neighbours.NeighbourList`, whose slots beyond the cutoff are
weighed by zero, so that an energy-and-forces call never waits on the host (a radius
graph needs ``nonzero``) and a GPU can capture it in a CUDA graph.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cgpipe.models.filter_table import FilterTable, intervals_for
from cgpipe.models.neighbours import NeighbourList, Neighbours


class SchNet(nn.Module):
    """Energy network E(types, positions).

    Parameters
    ----------
    num_types
        Number of bead types (embedding rows).
    hidden_channels, num_filters, num_interactions, num_gaussians
        Widths and depth.
    cutoff
        Neighbour-list and cosine-cutoff radius in nm.

    Attributes
    ----------
    neighbours
        The :class:`~cgpipe.models.neighbours.NeighbourList` (no parameters, not in the
        ``state_dict``).
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
        self.neighbours = NeighbourList(cutoff)
        self.embedding = nn.Embedding(num_types, hidden_channels)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden_channels, num_gaussians, num_filters)
            for _ in range(num_interactions)
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_channels, hidden_channels // 2),
            ShiftedSoftplus(),
            nn.Linear(hidden_channels // 2, 1),
        )
        self.filter_table: FilterTable | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.filter_table = None
        self.embedding.reset_parameters()
        for interaction in self.interactions:
            interaction.reset_parameters()
        for layer in self.head:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def tabulate(self, points_per_width: int = 16) -> None:
        """Evaluate the filters from a table from now on (:mod:`cgpipe.models.filter_table`):
        for a frozen model; :meth:`train` drops the table, and so does a call with
        ``points_per_width=0``."""
        self.filter_table = None
        if points_per_width <= 0:
            return
        smearing = copy.deepcopy(self.distance_expansion).to("cpu", torch.float64)

        def filters_of(interaction: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
            network = copy.deepcopy(interaction.conv.nn).to("cpu", torch.float64)

            def filters(r: torch.Tensor) -> torch.Tensor:
                return network(smearing(r)) * cosine_cutoff(r, self.cutoff).view(-1, 1)

            return filters

        parameter = self.embedding.weight
        with torch.no_grad():
            self.filter_table = FilterTable(
                [filters_of(interaction) for interaction in self.interactions],
                self.cutoff,
                intervals_for(self.cutoff, self.hparams["num_gaussians"], points_per_width),
                dtype=parameter.dtype,
                device=parameter.device,
            )

    def train(self, mode: bool = True) -> SchNet:
        if mode:
            self.filter_table = None  # a table is of the parameters it was built from
        return super().train(mode)

    def forward(
        self, types: torch.Tensor, positions: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm).

        ``types`` is [n_beads] (shared by all frames) of integer bead types; ``condition``
        [n_frames, hidden_channels], if given, is added to every bead's embedding of its
        frame (a diffusion model's noise level).
        """
        n_frames, n_beads, _ = positions.shape
        neighbours = self.neighbours(positions)
        distances, within = neighbours.distances(positions, self.cutoff)
        # A slot beyond the cutoff must add nothing, but the cosine cutoff rises again past
        # it: it is zeroed there, and the slot's features are taken at the cutoff (finite,
        # with no gradient to its real distance).
        distances = torch.where(within, distances, self.cutoff)
        if self.filter_table is not None:
            weight = within.view(-1, 1).to(distances.dtype)
            filters = [f * weight for f in self.filter_table(distances.view(-1))]
        else:
            cosine = cosine_cutoff(distances, self.cutoff)
            weight = torch.where(within, cosine, 0.0).view(-1, 1)
            edge_attr = self.distance_expansion(distances)
            filters = [i.conv.nn(edge_attr) * weight for i in self.interactions]
        h = self.embedding(types).repeat(n_frames, 1)
        if condition is not None:
            h = h + condition.repeat_interleave(n_beads, dim=0)
        for interaction, w in zip(self.interactions, filters, strict=True):
            h = h + _interact(interaction, h, neighbours, w)
        return self.head(h).view(n_frames, n_beads).sum(dim=1)


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """SchNet's filter damping, 1 at r = 0 and 0 (with zero slope) at the cutoff."""
    return 0.5 * (torch.cos(distances * math.pi / cutoff) + 1.0)


class ShiftedSoftplus(nn.Module):
    """softplus(x) - log 2: zero at zero (log 2 rounded to single precision, as
    torch-geometric's is, so that trained weights give the energies they were trained to)."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = torch.log(torch.tensor(2.0)).item()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x) - self.shift


class GaussianSmearing(nn.Module):
    """Gaussians of width equal to their spacing, centred on ``num_gaussians`` points from
    ``start`` to ``stop`` (nm): [n] distances to [n, num_gaussians] features."""

    def __init__(self, start: float, stop: float, num_gaussians: int) -> None:
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        self.coeff = -0.5 / (offset[1] - offset[0]).item() ** 2
        self.register_buffer("offset", offset)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.coeff * (distances.view(-1, 1) - self.offset.view(1, -1)) ** 2)


class CFConv(nn.Module):
    """The parameters of a continuous-filter convolution: ``lin1`` (bead features to
    filters, no bias), ``nn`` (the filter network, shared with the interaction's ``mlp``)
    and ``lin2`` (back to bead features)."""

    def __init__(self, channels: int, num_filters: int, network: nn.Sequential) -> None:
        super().__init__()
        self.lin1 = nn.Linear(channels, num_filters, bias=False)
        self.lin2 = nn.Linear(num_filters, channels)
        self.nn = network
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin1.weight)
        nn.init.xavier_uniform_(self.lin2.weight)
        nn.init.zeros_(self.lin2.bias)


class InteractionBlock(nn.Module):
    """One SchNet interaction's parameters (applied by :func:`_interact`)."""

    def __init__(self, hidden_channels: int, num_gaussians: int, num_filters: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(num_gaussians, num_filters),
            ShiftedSoftplus(),
            nn.Linear(num_filters, num_filters),
        )
        self.conv = CFConv(hidden_channels, num_filters, self.mlp)
        self.act = ShiftedSoftplus()
        self.lin = nn.Linear(hidden_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.conv.reset_parameters()
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)


def _interact(
    interaction: nn.Module, h: torch.Tensor, neighbours: Neighbours, filters: torch.Tensor
) -> torch.Tensor:
    """An interaction (continuous-filter convolution, shifted softplus, linear) on a
    neighbour table.

    ``h`` [n_frames * n_beads, hidden] bead features; ``filters`` [n_frames * n_beads *
    n_slots, num_filters] the slots' filters, damped by the cosine cutoff and zero beyond
    it. A bead's messages are summed over its slots.
    """
    conv = interaction.conv
    messages = conv.lin1(h).index_select(0, neighbours.index) * filters
    x = messages.view(h.shape[0], neighbours.n_slots, messages.shape[-1]).sum(dim=1)
    return interaction.lin(interaction.act(conv.lin2(x)))
