"""Short-range repulsion, U = epsilon (sigma / r)^n, between beads more than two bonds
apart (or unconnected), with sigma a low quantile of each pair's distance in the data and
epsilon = kT: it keeps simulations out of overlaps the data never visited (CGnet, Wang
et al. 2019)."""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.bonded import nonbonded_pairs
from cgpipe.models.neighbours import pair_distances
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm


@PRIOR_TERMS.register("repulsion")
class Repulsion(PriorTerm):
    """Inverse-power repulsion between non-bonded pairs.

    Parameters
    ----------
    pairs
        [n_pairs, 2] bead pairs.
    sigma
        [n_pairs] distances (nm) at which each pair's energy is ``epsilon``.
    epsilon
        Energy scale (kJ/mol).
    exponent
        The power n.
    """

    def __init__(
        self, pairs: list[list[int]], sigma: list[float], epsilon: float, exponent: int
    ) -> None:
        super().__init__()
        self.hparams = {
            "pairs": [list(map(int, p)) for p in pairs],
            "sigma": list(map(float, sigma)),
            "epsilon": float(epsilon),
            "exponent": int(exponent),
        }
        self.tuples("pairs", self.hparams["pairs"], 2)
        self.parameter("sigma", self.hparams["sigma"])
        self.epsilon = self.hparams["epsilon"]
        self.exponent = self.hparams["exponent"]

    @classmethod
    def fit(
        cls,
        positions: torch.Tensor,
        bonds: np.ndarray,
        kT: float,
        *,
        repulsion_exponent: int = 6,
        repulsion_quantile: float = 0.001,
    ) -> Repulsion:
        pairs = nonbonded_pairs(positions.shape[1], np.asarray(bonds).reshape(-1, 2))
        if not len(pairs):
            return cls([], [], kT, repulsion_exponent)
        r = pair_distances(positions, torch.as_tensor(pairs)).numpy()
        sigma = np.quantile(r, repulsion_quantile, axis=0)
        return cls(pairs.tolist(), sigma.tolist(), kT, repulsion_exponent)

    def __len__(self) -> int:
        return len(self.pairs)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        r = pair_distances(positions, self.pairs)
        return self.epsilon * ((self.sigma / r) ** self.exponent).sum(-1)
