"""The one neighbour list: a radius graph from dense pairwise distances in plain torch.

CG systems have tens to hundreds of beads, so all pairs of one frame fit in memory
and a dense distance matrix per frame beats a cell list (and torch-cluster, which this
replaces, is not available everywhere). Frames of one system share their bead count,
so a batch is [n_frames, n_beads, 3] and distances are computed frame by frame
([n_frames, n_beads, n_beads]), never across frames.
"""

from __future__ import annotations

import torch


def radius_graph(positions: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Edges between beads of the same frame closer than ``cutoff``.

    Parameters
    ----------
    positions
        [n_frames, n_beads, 3], nm.
    cutoff
        nm.

    Returns
    -------
    torch.Tensor
        [2, n_edges] indices into the flattened [n_frames * n_beads] nodes, both
        directions of every pair, no self-loops, in PyG's (source, target) order.
    """
    if positions.dim() != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must be [n_frames, n_beads, 3], got {tuple(positions.shape)}")
    n_frames, n_beads, _ = positions.shape
    with torch.no_grad():
        distances = torch.cdist(positions, positions)
        within = distances < cutoff
        within &= ~torch.eye(n_beads, dtype=torch.bool, device=positions.device)
        frame, target, source = within.nonzero(as_tuple=True)
    offset = frame * n_beads
    return torch.stack([offset + source, offset + target])


def pair_distances(positions: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Distances [n_frames, n_pairs] (nm) of bead pairs [n_pairs, 2], differentiable."""
    vectors = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
    return torch.linalg.vector_norm(vectors, dim=-1)
