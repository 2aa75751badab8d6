"""Physical prior: harmonic bonds and angles, Fourier dihedrals (one per bond) and
harmonic impropers at branched beads, fitted by Boltzmann inversion, and a short-range
repulsion between beads more than two bonds apart.

Each term is inverted from its own marginal distribution, so coupled terms would count
one free energy twice: of the dihedrals around a bond only one is kept (on the 6-bead
backbone_cb map of alanine dipeptide, keeping both phi and C-N-CA-CB pushed the CG
alpha_R share to 0.75-0.82 against the reference's 0.36). A branched bead's handedness
(CA with N, C and CB) is held by the improper, a signed dihedral that changes sign under
reflection, which a distance-only network cannot see.

The prior keeps simulations in physical regions the network never saw (CGnet, Wang et
al. 2019; CGSchNet, Husic et al. 2020): without a dihedral term, a CG alanine
dipeptide wanders into the alpha_L basin, where the reference has almost no frame and
force matching therefore says nothing. Parameters are buffers and the constructor takes
plain lists, so a checkpoint rebuilds the prior without pickles.

Boltzmann inversion: U(x) = -kT ln[p(x) / J(x)] from a histogram, with the Jacobian
J = r^2 for bonds and sin(theta) for angles (1 for dihedrals). Bonds and angles are fitted
by weighted least squares with a quadratic a x^2 + b x + c, so k = 2a and x0 = -b / 2a
(kJ/mol/nm^2 and nm; kJ/mol/rad^2 and rad). Dihedrals are fitted with a Fourier series
sum_n a_n cos(n phi) + b_n sin(n phi) (kJ/mol) over every bin, with a pseudo-count in each
bin so that angles the data never visited come out high in energy, not arbitrary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cgpipe.bonded import (  # noqa: F401 - re-exported: the prior's terms live on these paths
    angle_triples,
    dihedral_quadruples,
    improper_quadruples,
    nonbonded_pairs,
)
from cgpipe.models.neighbours import pair_distances
from cgpipe.units import thermal_energy


def bond_angles(positions: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
    """Angles [n_frames, n_triples] (rad) at the middle bead of each triple."""
    a = positions[:, triples[:, 0]] - positions[:, triples[:, 1]]
    b = positions[:, triples[:, 2]] - positions[:, triples[:, 1]]
    # atan2 is differentiable at 0 and pi, where acos is not.
    cross = torch.linalg.vector_norm(torch.cross(a, b, dim=-1), dim=-1)
    return torch.atan2(cross, (a * b).sum(-1))


def dihedral_angles(positions: torch.Tensor, quadruples: torch.Tensor) -> torch.Tensor:
    """Dihedrals [n_frames, n_quadruples] (rad, in (-pi, pi]) with mdtraj's sign convention."""
    b1 = positions[:, quadruples[:, 1]] - positions[:, quadruples[:, 0]]
    b2 = positions[:, quadruples[:, 2]] - positions[:, quadruples[:, 1]]
    b3 = positions[:, quadruples[:, 3]] - positions[:, quadruples[:, 2]]
    c1 = torch.cross(b2, b3, dim=-1)
    c2 = torch.cross(b1, b2, dim=-1)
    y = (b1 * c1).sum(-1) * torch.linalg.vector_norm(b2, dim=-1)
    x = (c1 * c2).sum(-1)
    return torch.atan2(y, x)


def boltzmann_inversion(
    values: np.ndarray, kT: float, jacobian: str, bins: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic constants and centres of each column of ``values`` [n_frames, n_terms].

    ``jacobian`` is ``"bond"`` (r^2), ``"angle"`` (sin theta) or ``"none"`` (impropers).
    """
    ks, centres = [], []
    for column in np.atleast_2d(values.T):
        counts, edges = np.histogram(column, bins=bins)
        x = 0.5 * (edges[1:] + edges[:-1])
        keep = counts > 0
        density = counts[keep] / (counts.sum() * np.diff(edges)[keep])
        weight = {"angle": np.sin(x[keep]), "bond": x[keep] ** 2, "none": np.ones(keep.sum())}[
            jacobian
        ]
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


def fourier_inversion(
    angles: np.ndarray, kT: float, order: int, bins: int = 100, pseudo_count: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier coefficients [n_terms, order] (a_n, b_n in kJ/mol) of -kT ln p(phi) per column."""
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    n = np.arange(1, order + 1)
    design = np.concatenate(
        [np.ones((bins, 1)), np.cos(np.outer(centres, n)), np.sin(np.outer(centres, n))], axis=1
    )
    cosines, sines = [], []
    for column in np.atleast_2d(angles.T):
        counts, _ = np.histogram(column, bins=edges)
        potential = -kT * np.log((counts + pseudo_count) / (counts.sum() + bins * pseudo_count))
        coefficients, *_ = np.linalg.lstsq(design, potential, rcond=None)
        cosines.append(coefficients[1 : order + 1])
        sines.append(coefficients[order + 1 :])
    return np.array(cosines).reshape(-1, order), np.array(sines).reshape(-1, order)


class Prior(nn.Module):
    """Harmonic bonds + harmonic angles + Fourier dihedrals + repulsion eps (sigma / r)^n.

    Parameters
    ----------
    bonds
        [n_bonds, 2] bead pairs; with ``bond_k`` (kJ/mol/nm^2) and ``bond_r0`` (nm).
    angles
        [n_angles, 3] bead triples; with ``angle_k`` (kJ/mol/rad^2), ``angle_theta0`` (rad).
    dihedrals
        [n_dihedrals, 4] bead paths; with ``dihedral_cos`` and ``dihedral_sin``
        [n_dihedrals, order] (kJ/mol): U = sum_n cos_n cos(n phi) + sin_n sin(n phi).
    repulsion_pairs
        [n_pairs, 2]; with ``repulsion_sigma`` (nm), ``repulsion_epsilon`` (kJ/mol)
        and the integer ``repulsion_exponent``.
    impropers
        [n_impropers, 4] (a, b, c, j) of beads j with three bonds; with ``improper_k``
        (kJ/mol/rad^2) and ``improper_0`` (rad): harmonic in the signed dihedral, which
        keeps each branched bead's handedness.
    """

    def __init__(
        self,
        bonds: list[list[int]],
        bond_k: list[float],
        bond_r0: list[float],
        angles: list[list[int]],
        angle_k: list[float],
        angle_theta0: list[float],
        dihedrals: list[list[int]],
        dihedral_cos: list[list[float]],
        dihedral_sin: list[list[float]],
        repulsion_pairs: list[list[int]],
        repulsion_sigma: list[float],
        repulsion_epsilon: float,
        repulsion_exponent: int = 6,
        impropers: list[list[int]] | None = None,
        improper_k: list[float] | None = None,
        improper_0: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {
            "bonds": [list(map(int, b)) for b in bonds],
            "bond_k": list(map(float, bond_k)),
            "bond_r0": list(map(float, bond_r0)),
            "angles": [list(map(int, a)) for a in angles],
            "angle_k": list(map(float, angle_k)),
            "angle_theta0": list(map(float, angle_theta0)),
            "dihedrals": [list(map(int, d)) for d in dihedrals],
            "dihedral_cos": [list(map(float, c)) for c in dihedral_cos],
            "dihedral_sin": [list(map(float, s)) for s in dihedral_sin],
            "repulsion_pairs": [list(map(int, p)) for p in repulsion_pairs],
            "repulsion_sigma": list(map(float, repulsion_sigma)),
            "repulsion_epsilon": float(repulsion_epsilon),
            "repulsion_exponent": int(repulsion_exponent),
            "impropers": [list(map(int, q)) for q in impropers or []],
            "improper_k": list(map(float, improper_k or [])),
            "improper_0": list(map(float, improper_0 or [])),
        }
        h = self.hparams
        order = len(h["dihedral_cos"][0]) if h["dihedral_cos"] else 0

        def buffer(name: str, values: Any, dtype: torch.dtype, width: int | None = None) -> None:
            tensor = torch.tensor(values, dtype=dtype)
            if width is not None:  # rows of fixed width, also when there are none
                tensor = tensor.reshape(len(values), width)
            self.register_buffer(name, tensor)

        buffer("bonds", h["bonds"], torch.long, 2)
        buffer("bond_k", h["bond_k"], torch.float32)
        buffer("bond_r0", h["bond_r0"], torch.float32)
        buffer("angles", h["angles"], torch.long, 3)
        buffer("angle_k", h["angle_k"], torch.float32)
        buffer("angle_theta0", h["angle_theta0"], torch.float32)
        buffer("dihedrals", h["dihedrals"], torch.long, 4)
        buffer("dihedral_cos", h["dihedral_cos"], torch.float32, order)
        buffer("dihedral_sin", h["dihedral_sin"], torch.float32, order)
        buffer("harmonics", list(range(1, order + 1)), torch.float32)
        buffer("repulsion_pairs", h["repulsion_pairs"], torch.long, 2)
        buffer("repulsion_sigma", h["repulsion_sigma"], torch.float32)
        buffer("impropers", h["impropers"], torch.long, 4)
        buffer("improper_k", h["improper_k"], torch.float32)
        buffer("improper_0", h["improper_0"], torch.float32)
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
        if len(self.dihedrals) and len(self.harmonics):
            phase = dihedral_angles(positions, self.dihedrals).unsqueeze(-1) * self.harmonics
            fourier = self.dihedral_cos * torch.cos(phase) + self.dihedral_sin * torch.sin(phase)
            energy = energy + fourier.sum(dim=(-1, -2))
        if len(self.impropers):
            offset = dihedral_angles(positions, self.impropers) - self.improper_0
            offset = torch.remainder(offset + torch.pi, 2 * torch.pi) - torch.pi
            energy = energy + (0.5 * self.improper_k * offset**2).sum(-1)
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
    dihedral_order: int = 6,
    dihedral_pseudo_count: float = 1.0,
    repulsion_exponent: int = 6,
    repulsion_quantile: float = 0.001,
) -> Prior:
    """Fit the prior to CG positions [n_frames, n_beads, 3] (nm) at ``temperature`` (K).

    ``dihedral_order`` 0 leaves the dihedral term out.
    """
    kT = thermal_energy(temperature)
    x = torch.as_tensor(positions, dtype=torch.float64)
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    angles = angle_triples(bonds)
    dihedrals = dihedral_quadruples(bonds) if dihedral_order > 0 else np.empty((0, 4), np.int64)
    impropers = improper_quadruples(bonds)
    pairs = nonbonded_pairs(x.shape[1], bonds)
    empty = (np.empty(0), np.empty(0))
    bond_k, bond_r0 = (
        boltzmann_inversion(pair_distances(x, torch.as_tensor(bonds)).numpy(), kT, "bond", bins)
        if len(bonds)
        else empty
    )
    angle_k, angle_theta0 = (
        boltzmann_inversion(bond_angles(x, torch.as_tensor(angles)).numpy(), kT, "angle", bins)
        if len(angles)
        else empty
    )
    dihedral_cos, dihedral_sin = (
        fourier_inversion(
            dihedral_angles(x, torch.as_tensor(dihedrals)).numpy(),
            kT,
            dihedral_order,
            bins,
            dihedral_pseudo_count,
        )
        if len(dihedrals)
        else (np.empty((0, 0)), np.empty((0, 0)))
    )
    improper_k, improper_0 = (
        boltzmann_inversion(
            dihedral_angles(x, torch.as_tensor(impropers)).numpy(), kT, "none", bins
        )
        if len(impropers)
        else empty
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
        dihedrals.tolist(),
        dihedral_cos.tolist(),
        dihedral_sin.tolist(),
        pairs.tolist(),
        sigma.tolist(),
        kT,
        repulsion_exponent,
        impropers.tolist(),
        improper_k.tolist(),
        improper_0.tolist(),
    )
