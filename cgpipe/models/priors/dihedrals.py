"""Fourier dihedrals, U = sum_n a_n cos(n phi) + b_n sin(n phi), one per central bond,
by Boltzmann inversion of each dihedral's histogram with a pseudo-count per bin.

Each term is inverted from its own marginal distribution, so coupled terms would count
one free energy twice: of the dihedrals around a bond only one is kept
(:func:`cgpipe.bonded.dihedral_quadruples`; on the 6-bead backbone_cb map of alanine
dipeptide, keeping both phi and C-N-CA-CB pushed the CG alpha_R share to 0.75-0.82
against the reference's 0.36). Without a dihedral term, a CG alanine dipeptide wanders
into the alpha_L basin, where the reference has almost no frame and force matching
therefore says nothing (CGnet, Wang et al. 2019; CGSchNet, Husic et al. 2020).
"""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.bonded import dihedral_quadruples
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import dihedral_angles
from cgpipe.models.priors.inversion import fourier_inversion


@PRIOR_TERMS.register("dihedrals")
class Dihedrals(PriorTerm):
    """Fourier series in the dihedral of bead paths i-j-k-l.

    Parameters
    ----------
    quadruples
        [n_dihedrals, 4] bead paths.
    cos, sin
        [n_dihedrals, order] coefficients a_n, b_n (kJ/mol) of cos(n phi), sin(n phi),
        n = 1 .. order.
    """

    def __init__(
        self, quadruples: list[list[int]], cos: list[list[float]], sin: list[list[float]]
    ) -> None:
        super().__init__()
        self.hparams = {
            "quadruples": [list(map(int, q)) for q in quadruples],
            "cos": [list(map(float, c)) for c in cos],
            "sin": [list(map(float, s)) for s in sin],
        }
        order = len(self.hparams["cos"][0]) if self.hparams["cos"] else 0
        self.tuples("quadruples", self.hparams["quadruples"], 4)
        self.parameter("cos", self.hparams["cos"], order)
        self.parameter("sin", self.hparams["sin"], order)
        self.parameter("harmonics", list(range(1, order + 1)))

    @classmethod
    def fit(
        cls,
        positions: torch.Tensor,
        bonds: np.ndarray,
        kT: float,
        *,
        bins: int = 100,
        dihedral_order: int = 6,
        dihedral_pseudo_count: float = 1.0,
    ) -> Dihedrals:
        """``dihedral_order`` 0 leaves the term empty."""
        quadruples = dihedral_quadruples(np.asarray(bonds).reshape(-1, 2))
        if not len(quadruples) or dihedral_order == 0:
            return cls([], [], [])
        phi = dihedral_angles(positions, torch.as_tensor(quadruples)).numpy()
        cos, sin = fourier_inversion(phi, kT, dihedral_order, bins, dihedral_pseudo_count)
        return cls(quadruples.tolist(), cos.tolist(), sin.tolist())

    def __len__(self) -> int:
        return len(self.quadruples) if len(self.harmonics) else 0

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        phase = dihedral_angles(positions, self.quadruples).unsqueeze(-1) * self.harmonics
        fourier = self.cos * torch.cos(phase) + self.sin * torch.sin(phase)
        return fourier.sum(dim=(-1, -2))
