"""Physical prior: harmonic bonds and angles fitted by Boltzmann inversion, and a
short-range repulsion between beads more than two bonds apart.

The prior keeps simulations in physical regions the network never saw (CGnet, Wang et
al. 2019; CGSchNet, Husic et al. 2020). Its parameters are buffers and its constructor
takes plain lists, so a checkpoint rebuilds it without pickles.

Boltzmann inversion: for each bond (angle), U(x) = -kT ln[p(x) / J(x)] with the
Jacobian J = r^2 (sin theta for angles), fitted by weighted least squares with a
quadratic a x^2 + b x + c, so k = 2a and x0 = -b / 2a (kJ/mol/nm^2 and nm; kJ/mol/rad^2
and rad).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch import nn

from cgpipe.models.neighbours import pair_distances
from cgpipe.units import thermal_energy


def bond_angles(positions: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
    """Angles [n_frames, n_triples] (rad) at the middle bead of each triple."""
    a = positions[:, triples[:, 0]] - positions[:, triples[:, 1]]
    b = positions[:, triples[:, 2]] - positions[:, triples[:, 1]]
    # atan2 is differentiable at 0 and pi, where acos is not.
    return torch.atan2(torch.linalg.vector_norm(torch.cross(a, b, dim=-1), dim=-1), (a * b).sum(-1))


def angle_triples(bonds: np.ndarray) -> np.ndarray:
    """[n_angles, 3] bead triples (i, j, k) with bonds i-j and j-k."""
    neighbours: dict[int, set[int]] = {}
    for i, j in bonds:
        neighbours.setdefault(int(i), set()).add(int(j))
        neighbours.setdefault(int(j), set()).add(int(i))
    triples = [
        (i, j, k) for j in sorted(neighbours) for i, k in combinations(sorted(neighbours[j]), 2)
    ]
    return np.array(triples, dtype=np.int64).reshape(-1, 3)


def nonbonded_pairs(n_beads: int, bonds: np.ndarray, exclusion: int = 2) -> np.ndarray:
    """[n_pairs, 2] bead pairs more than ``exclusion`` bonds apart (or unconnected)."""
    hops = np.full((n_beads, n_beads), np.inf)
    np.fill_diagonal(hops, 0)
    for i, j in bonds:
        hops[i, j] = hops[j, i] = 1
    for k in range(n_beads):  # Floyd-Warshall; CG bead counts are small
        hops = np.minimum(hops, hops[:, [k]] + hops[[k], :])
    pairs = [
        (i, j) for i in range(n_beads) for j in range(i + 1, n_beads) if hops[i, j] > exclusion
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def boltzmann_inversion(
    values: np.ndarray, kT: float, jacobian: str, bins: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic constants and centres of each column of ``values`` [n_frames, n_terms].

    ``jacobian`` is ``"bond"`` (r^2) or ``"angle"`` (sin theta).
    """
    ks, centres = [], []
    for column in np.atleast_2d(values.T):
        counts, edges = np.histogram(column, bins=bins)
        x = 0.5 * (edges[1:] + edges[:-1])
        keep = counts > 0
        density = counts[keep] / (counts.sum() * np.diff(edges)[keep])
        weight = np.sin(x[keep]) if jacobian == "angle" else x[keep] ** 2
        potential = -kT * np.log(density / np.maximum(weight, 1e-12))
        a, b, _ = np.polyfit(x[keep], potential, deg=2, w=np.sqrt(counts[keep]))
        if a <= 0 or keep.sum() < 3:
            # Too few or flat bins: the Gaussian moment estimate is the fallback.
            k, centre = kT / max(column.var(), 1e-12), column.mean()
        else:
            k, centre = 2.0 * a, -b / (2.0 * a)
        ks.append(float(k))
        centres.append(float(centre))
    return np.array(ks), np.array(centres)


class Prior(nn.Module):
    """Harmonic bonds + harmonic angles + repulsion kT (sigma / r)^n.

    Parameters
    ----------
    bonds
        [n_bonds, 2] bead pairs; with ``bond_k`` (kJ/mol/nm^2) and ``bond_r0`` (nm).
    angles
        [n_angles, 3] bead triples; with ``angle_k`` (kJ/mol/rad^2), ``angle_theta0`` (rad).
    repulsion_pairs
        [n_pairs, 2]; with ``repulsion_sigma`` (nm), ``repulsion_epsilon`` (kJ/mol)
        and the integer ``repulsion_exponent``.
    """

    def __init__(
        self,
        bonds: list[list[int]],
        bond_k: list[float],
        bond_r0: list[float],
        angles: list[list[int]],
        angle_k: list[float],
        angle_theta0: list[float],
        repulsion_pairs: list[list[int]],
        repulsion_sigma: list[float],
        repulsion_epsilon: float,
        repulsion_exponent: int = 6,
    ) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {
            "bonds": [list(map(int, b)) for b in bonds],
            "bond_k": list(map(float, bond_k)),
            "bond_r0": list(map(float, bond_r0)),
            "angles": [list(map(int, a)) for a in angles],
            "angle_k": list(map(float, angle_k)),
            "angle_theta0": list(map(float, angle_theta0)),
            "repulsion_pairs": [list(map(int, p)) for p in repulsion_pairs],
            "repulsion_sigma": list(map(float, repulsion_sigma)),
            "repulsion_epsilon": float(repulsion_epsilon),
            "repulsion_exponent": int(repulsion_exponent),
        }
        h = self.hparams
        self.register_buffer("bonds", torch.tensor(h["bonds"], dtype=torch.long).reshape(-1, 2))
        self.register_buffer("bond_k", torch.tensor(h["bond_k"]))
        self.register_buffer("bond_r0", torch.tensor(h["bond_r0"]))
        self.register_buffer("angles", torch.tensor(h["angles"], dtype=torch.long).reshape(-1, 3))
        self.register_buffer("angle_k", torch.tensor(h["angle_k"]))
        self.register_buffer("angle_theta0", torch.tensor(h["angle_theta0"]))
        self.register_buffer(
            "repulsion_pairs", torch.tensor(h["repulsion_pairs"], dtype=torch.long).reshape(-1, 2)
        )
        self.register_buffer("repulsion_sigma", torch.tensor(h["repulsion_sigma"]))
        self.repulsion_epsilon = h["repulsion_epsilon"]
        self.repulsion_exponent = h["repulsion_exponent"]

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Prior energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        energy = positions.new_zeros(positions.shape[0])
        if len(self.bonds):
            r = pair_distances(positions, self.bonds)
            energy = energy + (0.5 * self.bond_k * (r - self.bond_r0) ** 2).sum(-1)
        if len(self.angles):
            theta = bond_angles(positions, self.angles)
            energy = energy + (0.5 * self.angle_k * (theta - self.angle_theta0) ** 2).sum(-1)
        if len(self.repulsion_pairs):
            r = pair_distances(positions, self.repulsion_pairs)
            ratio = self.repulsion_sigma / r
            energy = energy + self.repulsion_epsilon * (ratio**self.repulsion_exponent).sum(-1)
        return energy


def fit_prior(
    positions: np.ndarray,
    bonds: np.ndarray,
    temperature: float,
    bins: int = 100,
    repulsion_exponent: int = 6,
    repulsion_quantile: float = 0.001,
) -> Prior:
    """Fit the prior to CG positions [n_frames, n_beads, 3] (nm) at ``temperature`` (K)."""
    kT = thermal_energy(temperature)
    x = torch.as_tensor(positions, dtype=torch.float64)
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    angles = angle_triples(bonds)
    pairs = nonbonded_pairs(x.shape[1], bonds)
    bond_k, bond_r0 = (
        boltzmann_inversion(pair_distances(x, torch.as_tensor(bonds)).numpy(), kT, "bond", bins)
        if len(bonds)
        else (np.empty(0), np.empty(0))
    )
    angle_k, angle_theta0 = (
        boltzmann_inversion(bond_angles(x, torch.as_tensor(angles)).numpy(), kT, "angle", bins)
        if len(angles)
        else (np.empty(0), np.empty(0))
    )
    sigma = (
        np.quantile(pair_distances(x, torch.as_tensor(pairs)).numpy(), repulsion_quantile, axis=0)
        if len(pairs)
        else np.empty(0)
    )
    return Prior(
        bonds.tolist(),
        bond_k.tolist(),
        bond_r0.tolist(),
        angles.tolist(),
        angle_k.tolist(),
        angle_theta0.tolist(),
        pairs.tolist(),
        sigma.tolist(),
        kT,
        repulsion_exponent,
    )
