"""Internal coordinates of CG frames that the prior terms put energies on: angles at the
middle bead of a triple and signed dihedrals of a quadruple (mdtraj's convention).
Distances are :func:`cgpipe.models.neighbours.pair_distances`."""

from __future__ import annotations

import torch


def bond_angles(positions: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
    """Angles [n_frames, n_triples] (rad) at the middle bead of each triple.

    ``positions`` [n_frames, n_beads, 3] (nm), ``triples`` [n_triples, 3] bead indices.
    """
    a = positions[:, triples[:, 0]] - positions[:, triples[:, 1]]
    b = positions[:, triples[:, 2]] - positions[:, triples[:, 1]]
    # atan2 is differentiable at 0 and pi, where acos is not.
    cross = torch.linalg.vector_norm(torch.cross(a, b, dim=-1), dim=-1)
    return torch.atan2(cross, (a * b).sum(-1))


def dihedral_angles(positions: torch.Tensor, quadruples: torch.Tensor) -> torch.Tensor:
    """Dihedrals [n_frames, n_quadruples] (rad, in (-pi, pi]) with mdtraj's sign convention.

    ``positions`` [n_frames, n_beads, 3] (nm), ``quadruples`` [n_quadruples, 4] bead indices.
    """
    b1 = positions[:, quadruples[:, 1]] - positions[:, quadruples[:, 0]]
    b2 = positions[:, quadruples[:, 2]] - positions[:, quadruples[:, 1]]
    b3 = positions[:, quadruples[:, 3]] - positions[:, quadruples[:, 2]]
    c1 = torch.cross(b2, b3, dim=-1)
    c2 = torch.cross(b1, b2, dim=-1)
    y = (b1 * c1).sum(-1) * torch.linalg.vector_norm(b2, dim=-1)
    x = (c1 * c2).sum(-1)
    return torch.atan2(y, x)
