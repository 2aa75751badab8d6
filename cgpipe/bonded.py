"""The bead graph's bonded paths: angles, dihedrals (one per central bond), impropers at
branched beads, the end beads of angles (1-3 pairs), and the pairs left to non-bonded
terms. Pure NumPy on [n_bonds, 2] bead index pairs; shared by the prior (which puts
energies on them) and the observables (whose distributions are compared)."""

from __future__ import annotations

from itertools import combinations

import numpy as np


def _neighbours(bonds: np.ndarray) -> dict[int, set[int]]:
    neighbours: dict[int, set[int]] = {}
    for i, j in bonds:
        neighbours.setdefault(int(i), set()).add(int(j))
        neighbours.setdefault(int(j), set()).add(int(i))
    return neighbours


def angle_triples(bonds: np.ndarray) -> np.ndarray:
    """[n_angles, 3] bead triples (i, j, k) with bonds i-j and j-k."""
    neighbours = _neighbours(bonds)
    triples = [
        (i, j, k) for j in sorted(neighbours) for i, k in combinations(sorted(neighbours[j]), 2)
    ]
    return np.array(triples, dtype=np.int64).reshape(-1, 3)


def dihedral_quadruples(bonds: np.ndarray) -> np.ndarray:
    """[n_dihedrals, 4] bead paths i-j-k-l along bonds: one per central bond j-k.

    Dihedrals that share a central bond are rigidly coupled (at a branched bead such as
    CA with N, C and CB, C-N-CA-CB is phi plus a near-constant offset); inverting each
    one's marginal distribution on its own would count the torsion's free energy once
    per path. Of the paths around one bond the one whose end beads have the most bonds
    (the one that continues the chain, not a side branch) is kept; ties go to the first
    in sorted order. Written with i < l (or i == l excluded).
    """
    neighbours = _neighbours(bonds)
    quadruples = []
    for j, k in sorted({tuple(sorted(b)) for b in np.asarray(bonds).reshape(-1, 2).tolist()}):
        paths = {
            (i, j, k, l) if i < l else (l, k, j, i)
            for i in neighbours[j] - {k}
            for l in neighbours[k] - {j}  # noqa: E741 - the usual name of the 4th bead
            if i != l
        }
        if paths:
            quadruples.append(
                min(sorted(paths), key=lambda p: -(len(neighbours[p[0]]) + len(neighbours[p[3]])))
            )
    return np.array(sorted(quadruples), dtype=np.int64).reshape(-1, 4)


def consecutive_dihedrals(quadruples: np.ndarray) -> np.ndarray:
    """[n_pairs, 2] indices (a < b) into ``quadruples`` of the dihedrals that share three
    beads, such as a residue's phi and psi: the pairs whose joint distribution a sum of
    one-dihedral terms cannot hold (CHARMM corrects it with CMAP)."""
    beads = [set(q) for q in np.asarray(quadruples).reshape(-1, 4).tolist()]
    pairs = [
        (a, b)
        for a in range(len(beads))
        for b in range(a + 1, len(beads))
        if len(beads[a] & beads[b]) == 3
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def improper_quadruples(bonds: np.ndarray) -> np.ndarray:
    """[n_impropers, 4] (a, b, c, j) for every bead j bonded to exactly three beads
    a < b < c: the signed dihedral of the four says on which side of its neighbours'
    plane j lies, so it changes sign under reflection (the handedness of a CA with N, C
    and CB)."""
    neighbours = _neighbours(bonds)
    quadruples = [
        (*sorted(others), j) for j, others in sorted(neighbours.items()) if len(others) == 3
    ]
    return np.array(quadruples, dtype=np.int64).reshape(-1, 4)


def _hops(n_beads: int, bonds: np.ndarray) -> np.ndarray:
    """[n_beads, n_beads] fewest bonds between beads (inf where unconnected)."""
    hops = np.full((n_beads, n_beads), np.inf)
    np.fill_diagonal(hops, 0)
    for i, j in np.asarray(bonds).reshape(-1, 2):
        hops[i, j] = hops[j, i] = 1
    for k in range(n_beads):  # Floyd-Warshall; CG bead counts are small
        hops = np.minimum(hops, hops[:, [k]] + hops[[k], :])
    return hops


def nonbonded_pairs(n_beads: int, bonds: np.ndarray, exclusion: int = 2) -> np.ndarray:
    """[n_pairs, 2] bead pairs more than ``exclusion`` bonds apart (or unconnected)."""
    hops = _hops(n_beads, bonds)
    pairs = [
        (i, j) for i in range(n_beads) for j in range(i + 1, n_beads) if hops[i, j] > exclusion
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def angle_end_pairs(n_beads: int, bonds: np.ndarray) -> np.ndarray:
    """[n_pairs, 2] bead pairs i < k exactly two bonds apart: the end beads of an angle
    (1-3 pairs), which no bonded term keeps apart and :func:`nonbonded_pairs` excludes."""
    hops = _hops(n_beads, bonds)
    pairs = [(i, j) for i in range(n_beads) for j in range(i + 1, n_beads) if hops[i, j] == 2]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
