"""Harmonic bonds, U = k/2 (r - r0)^2, by Boltzmann inversion of each bond's length
(Jacobian r^2)."""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.models.neighbours import pair_distances
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.inversion import boltzmann_inversion


@PRIOR_TERMS.register("bonds")
class Bonds(PriorTerm):
    """Harmonic bonds.

    Parameters
    ----------
    pairs
        [n_bonds, 2] bonded bead pairs.
    k
        [n_bonds] force constants (kJ/mol/nm^2).
    r0
        [n_bonds] rest lengths (nm).
    """

    def __init__(self, pairs: list[list[int]], k: list[float], r0: list[float]) -> None:
        super().__init__()
        self.hparams = {
            "pairs": [list(map(int, p)) for p in pairs],
            "k": list(map(float, k)),
            "r0": list(map(float, r0)),
        }
        self.tuples("pairs", self.hparams["pairs"], 2)
        self.parameter("k", self.hparams["k"])
        self.parameter("r0", self.hparams["r0"])

    @classmethod
    def fit(
        cls, positions: torch.Tensor, bonds: np.ndarray, kT: float, *, bins: int = 100
    ) -> Bonds:
        pairs = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        if not len(pairs):
            return cls([], [], [])
        lengths = pair_distances(positions, torch.as_tensor(pairs)).numpy()
        k, r0 = boltzmann_inversion(lengths, kT, "bond", bins)
        return cls(pairs.tolist(), k.tolist(), r0.tolist())

    def __len__(self) -> int:
        return len(self.pairs)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        r = pair_distances(positions, self.pairs)
        return (0.5 * self.k * (r - self.r0) ** 2).sum(-1)
