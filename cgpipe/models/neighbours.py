"""The one neighbour list: each bead's neighbours in a table of static shape, built
without ever waiting on the host.

A batch is [n_frames, n_beads, 3]: frames of one system share their bead count, and a
bead's neighbours are beads of its own frame. The table is [n_frames, n_beads, n_slots]
of neighbour indices, so a network sums its messages over the last axis (no scatter, the
same order on every run); slots are not filtered by distance (that would need
``nonzero``, a host synchronisation on a GPU, and a shape that changes from step to
step, which a CUDA graph cannot hold). The network weighs every slot by ``d < cutoff``
(:meth:`Neighbours.distances`), so a slot beyond the cutoff contributes exactly nothing.

Two tables, chosen by the batch's size alone (known on the host):

- **All pairs** when ``n_frames * n_beads * (n_beads - 1) <= ALL_PAIRS_MAX_EDGES``
  (2**20: 64 replicas of 128 beads, 512 frames of 45): every ordered pair i != j of each
  frame, a constant table cached per (n_frames, n_beads, device). For its forces, a
  SchNet keeps about 4.4 kB per edge for backward at its default widths (50 Gaussians,
  64 filters, 3 interactions) and 1.6 kB at the default config's (32, 32, 2), in single
  precision (measured), so this bound is 4.6 or 1.7 GB.
- **A Verlet list** beyond that (:class:`NeighbourList`): for each bead, the beads within
  ``cutoff + skin`` at the last build, in ``capacity`` slots (padded, masked); a frame's
  table is rebuilt when one of its beads has moved more than ``skin / 2`` since, so no
  pair within the cutoff is ever missed (Verlet 1967; the sync-free update of JAX-MD,
  Schoenholz & Cubuk 2020). Which frames are stale is known only on the device, so the
  candidate table is computed on every call (O(n_frames * n_beads**2) distance work,
  small next to the network's work per slot) and taken by stale frames only
  (``torch.where``). The skin therefore saves no work here: it keeps a frame's table
  fixed between rebuilds, and costs slots ((1 + skin / cutoff)**3 times the pairs;
  ``skin=0`` rebuilds every frame that moved at all). A bead with more neighbours than
  ``capacity`` sets an overflow flag on the device, which the host reads every
  ``check_every`` calls (:meth:`NeighbourList.check`) and then raises
  :class:`NeighbourListOverflow`. A simulation checks at the end of every block and, on
  an overflow, runs the block again from its start with the list grown
  (:meth:`NeighbourList.grow`); :func:`neighbour_lists` finds a model's lists.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

ALL_PAIRS_MAX_EDGES = 2**20
"""Largest ``n_frames * n_beads * (n_beads - 1)`` that gets the all-pairs table."""


class NeighbourListOverflow(RuntimeError):
    """A bead had more neighbours within ``cutoff + skin`` than the Verlet list's capacity:
    pairs were dropped, so the energies and forces since the last check are wrong."""


class Neighbours(NamedTuple):
    """Each bead's neighbours in its own frame.

    Attributes
    ----------
    index
        [n_frames * n_beads * n_slots] long: slot k of bead i of frame f, at
        ``(f * n_beads + i) * n_slots + k``, holds the neighbour's index into the
        flattened [n_frames * n_beads] beads.
    n_slots
        Slots per bead.
    filled
        [n_frames, n_beads, n_slots] bool, the slots that hold a pair, or ``None`` where
        all do; an empty slot holds another bead of the frame (never the bead itself).
    """

    index: torch.Tensor
    n_slots: int
    filled: torch.Tensor | None = None

    def distances(
        self, positions: torch.Tensor, cutoff: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Distances (nm, differentiable) and ``d < cutoff`` of every slot, both [n_frames,
        n_beads, n_slots]; ``d < cutoff`` is false in empty slots.

        ``positions`` [n_frames, n_beads, 3] (nm), those the table was built for.
        """
        n_frames, n_beads, _ = positions.shape
        neighbour = positions.reshape(-1, 3).index_select(0, self.index)
        neighbour = neighbour.view(n_frames, n_beads, self.n_slots, 3)
        distances = torch.linalg.vector_norm(neighbour - positions.unsqueeze(2), dim=-1)
        within = distances < cutoff
        if self.filled is not None:
            within = within & self.filled
        return distances, within


def _flat(table: torch.Tensor) -> torch.Tensor:
    """[n_frames, n_beads, n_slots] bead indices within a frame -> indices into the
    flattened [n_frames * n_beads] beads, flattened."""
    n_frames, n_beads, _ = table.shape
    offsets = torch.arange(n_frames, device=table.device) * n_beads
    return (table + offsets.view(-1, 1, 1)).reshape(-1)


@functools.lru_cache(maxsize=16)
def all_pairs(n_frames: int, n_beads: int, device: torch.device) -> Neighbours:
    """Every ordered pair i != j of each frame: bead i's slot k holds j = k + (k >= i).

    The table depends on the batch's shape only, so it is built once (and stays at one
    address, as a CUDA graph needs).
    """
    _not_capturing(device, "the all-pairs table of a new batch shape")
    slot = torch.arange(n_beads - 1, device=device)
    bead = torch.arange(n_beads, device=device)
    table = slot.view(1, -1) + (slot.view(1, -1) >= bead.view(-1, 1)).long()
    table = table.expand(n_frames, n_beads, n_beads - 1)
    return Neighbours(_flat(table), n_beads - 1)


@dataclass
class _Verlet:
    """The Verlet list of one batch shape: its table, the positions it was built at."""

    shape: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype
    capacity: int
    index: torch.Tensor  # [n_frames * n_beads * capacity] long
    filled: torch.Tensor  # [n_frames, n_beads, capacity] bool
    reference: torch.Tensor  # [n_frames, n_beads, 3], nm
    overflow: torch.Tensor  # [] bool, sticky until checked
    calls: int = 0


class NeighbourList:
    """Neighbours within ``cutoff`` of every bead of a batch [n_frames, n_beads, 3].

    Calls return the all-pairs table where the batch is small enough
    (:data:`ALL_PAIRS_MAX_EDGES`) and a Verlet list otherwise (see the module docstring).
    Neither synchronises with the host, except the Verlet list's first build for a batch
    shape (it sizes the capacity) and its overflow check every ``check_every`` calls.
    The Verlet list keeps its state for the last batch shape it saw; any positions of
    that shape are handled correctly (a frame that jumped is rebuilt), so the list serves
    training batches as well as consecutive simulation steps.

    Parameters
    ----------
    cutoff
        nm; pairs closer than this are the network's edges.
    skin
        nm; the Verlet list holds pairs within ``cutoff + skin`` and rebuilds a frame when
        one of its beads has moved more than ``skin / 2``.
    capacity
        Verlet-list slots per bead; ``None`` sizes it at the first build of a batch shape
        to 1.5 times the most neighbours any bead has within ``cutoff + skin``, plus 8.
    max_all_pairs
        Largest ``n_frames * n_beads * (n_beads - 1)`` for the all-pairs table.
    check_every
        Calls between the host's reads of the overflow flag. Under a CUDA graph the
        host does not run, so call :meth:`check` after replays.
    """

    def __init__(
        self,
        cutoff: float,
        skin: float = 0.1,
        *,
        capacity: int | None = None,
        max_all_pairs: int = ALL_PAIRS_MAX_EDGES,
        check_every: int = 100,
    ) -> None:
        if not cutoff > 0 or not skin >= 0:
            raise ValueError(f"need cutoff > 0 and skin >= 0 (nm), got {cutoff}, {skin}")
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.capacity = capacity
        self.max_all_pairs = int(max_all_pairs)
        self.check_every = int(check_every)
        self.least_capacity = 1
        """Fewest slots of the next build, raised by :meth:`grow`."""
        self._verlet: _Verlet | None = None

    def __call__(self, positions: torch.Tensor) -> Neighbours:
        """The neighbour table of positions [n_frames, n_beads, 3] (nm)."""
        if positions.dim() != 3 or positions.shape[-1] != 3:
            raise ValueError(
                f"positions must be [n_frames, n_beads, 3], got {tuple(positions.shape)}"
            )
        n_frames, n_beads, _ = positions.shape
        if n_frames * n_beads * (n_beads - 1) <= self.max_all_pairs:
            return all_pairs(n_frames, n_beads, positions.device)
        return self._update(positions.detach())

    def check(self) -> None:
        """Raise :class:`NeighbourListOverflow` if a Verlet list overflowed since the last
        check (reads one flag from the device)."""
        verlet = self._verlet
        if verlet is None or not bool(verlet.overflow):
            return
        verlet.overflow.zero_()
        raise NeighbourListOverflow(
            f"a bead had more than {verlet.capacity} neighbours within "
            f"{self.cutoff + self.skin:g} nm in a batch of shape {list(verlet.shape)} in "
            f"the last {self.check_every} calls or fewer: pairs were dropped and the forces "
            "since the last check are wrong; build the NeighbourList with a larger capacity"
        )

    def grow(self) -> int:
        """After an overflow: forget the Verlet list, so that the next call builds it
        anew with at least twice its slots (at most a bead's every partner, which cannot
        overflow). Returns that least capacity."""
        verlet = self._verlet
        if verlet is not None:
            self.least_capacity = max(self.least_capacity, 2 * verlet.capacity)
            self._verlet = None
        return self.least_capacity

    def _update(self, positions: torch.Tensor) -> Neighbours:
        n_frames = positions.shape[0]
        verlet = self._verlet
        if (
            verlet is None
            or verlet.shape != tuple(positions.shape)
            or verlet.device != positions.device
            or verlet.dtype != positions.dtype
        ):
            verlet = self._verlet = self._first_build(positions)
            index, filled = verlet.index.clone(), verlet.filled.clone()
        else:
            within = _pairs_within(positions, self.cutoff + self.skin)
            index, filled, overflow = _compact(within, verlet.capacity)
            moved = (positions - verlet.reference).square().sum(-1) > (self.skin / 2) ** 2
            stale = moved.any(dim=1)  # [n_frames]; NaN positions never count as moved
            index = torch.where(
                stale.view(-1, 1), index.view(n_frames, -1), verlet.index.view(n_frames, -1)
            ).view(-1)
            filled = torch.where(stale.view(-1, 1, 1), filled, verlet.filled)
            # In place, so that a captured CUDA graph reads and writes the same buffers;
            # the caller gets fresh tensors, which the next call leaves alone (autograd
            # may still hold them).
            verlet.index.copy_(index)
            verlet.filled.copy_(filled)
            verlet.reference.copy_(torch.where(stale.view(-1, 1, 1), positions, verlet.reference))
            verlet.overflow |= (overflow & stale).any()
        verlet.calls += 1
        if verlet.calls % self.check_every == 0 and not _capturing(positions.device):
            self.check()
        return Neighbours(index, verlet.capacity, filled)

    def _first_build(self, positions: torch.Tensor) -> _Verlet:
        _not_capturing(positions.device, "the first Verlet-list build of a batch shape")
        n_beads = positions.shape[1]
        within = _pairs_within(positions, self.cutoff + self.skin)
        capacity = self.capacity
        if capacity is None:
            most = int(within.sum(-1).max())  # host reads happen at first builds only
            capacity = math.ceil(1.5 * most) + 8
        capacity = max(1, self.least_capacity, capacity)
        capacity = min(capacity, n_beads - 1)
        index, filled, overflow = _compact(within, capacity)
        if bool(overflow.any()):
            raise NeighbourListOverflow(
                f"a bead has more than {capacity} neighbours within "
                f"{self.cutoff + self.skin:g} nm: build the NeighbourList with a larger capacity"
            )
        return _Verlet(
            shape=tuple(positions.shape),
            device=positions.device,
            dtype=positions.dtype,
            capacity=capacity,
            index=index,
            filled=filled,
            reference=positions.clone(),
            overflow=torch.zeros((), dtype=torch.bool, device=positions.device),
        )


def neighbour_lists(model: torch.nn.Module) -> list[NeighbourList]:
    """The neighbour lists of ``model``'s submodules (an attribute ``neighbours``)."""
    found = (getattr(module, "neighbours", None) for module in model.modules())
    return [neighbours for neighbours in found if isinstance(neighbours, NeighbourList)]


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _not_capturing(device: torch.device, what: str) -> None:
    """Refuse to build ``what`` inside a CUDA-graph capture: its memory would belong to
    the graph, and a build that reads the device cannot be captured."""
    if _capturing(device):
        raise RuntimeError(
            f"{what} is built during a CUDA-graph capture: call the model once on a batch of "
            "this shape before capturing"
        )


def _pairs_within(positions: torch.Tensor, radius: float) -> torch.Tensor:
    """[n_frames, n_beads, n_beads] bool: i != j closer than ``radius`` (nm)."""
    # Differences, not the |x|^2 - 2 x.y + |y|^2 of cdist's matrix product, whose rounding
    # could drop a pair at the edge of the skin.
    distances = torch.cdist(positions, positions, compute_mode="donot_use_mm_for_euclid_dist")
    within = distances < radius
    within.diagonal(dim1=1, dim2=2).fill_(False)
    return within


def _compact(
    within: torch.Tensor, capacity: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each bead's neighbours (``within``, [n_frames, n_beads, n_beads] bool) in
    ``capacity`` slots, in increasing bead order: the flattened index (:class:`Neighbours`),
    the filled slots [n_frames, n_beads, capacity] and whether a bead of the frame had
    more neighbours than slots [n_frames]."""
    n_beads = within.shape[1]
    counts = within.sum(-1)
    # A stable sort of each row puts the neighbours first, in bead order: the compaction
    # that nonzero would do, at a static shape.
    order = torch.sort(within.to(torch.uint8), dim=-1, descending=True, stable=True).indices
    filled = torch.arange(capacity, device=within.device) < counts.unsqueeze(-1)
    # An empty slot holds the next bead, never the bead itself: at a zero distance the
    # norm's derivatives are not finite.
    bead = torch.arange(n_beads, device=within.device).view(1, -1, 1)
    table = torch.where(filled, order[..., :capacity], (bead + 1) % n_beads)
    return _flat(table), filled, (counts > capacity).any(dim=1)


def pair_distances(positions: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Distances [n_frames, n_pairs] (nm) of bead pairs [n_pairs, 2], differentiable."""
    vectors = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
    return torch.linalg.vector_norm(vectors, dim=-1)
