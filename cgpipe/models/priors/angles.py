"""Harmonic angles, U = k/2 (theta - theta0)^2, by Boltzmann inversion of each angle
(Jacobian sin theta). The angle alone does not keep an angle's end beads apart (on a
3-bead map it is only ~8 kT high at theta = 0): :mod:`.angle_wall` does."""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.bonded import angle_triples
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import bond_angles
from cgpipe.models.priors.inversion import boltzmann_inversion


@PRIOR_TERMS.register("angles")
class Angles(PriorTerm):
    """Harmonic angles at the middle bead of every pair of bonds that share a bead.

    Parameters
    ----------
    triples
        [n_angles, 3] bead triples (i, j, k), bonds i-j and j-k.
    k
        [n_angles] force constants (kJ/mol/rad^2).
    theta0
        [n_angles] rest angles (rad).
    """

    def __init__(self, triples: list[list[int]], k: list[float], theta0: list[float]) -> None:
        super().__init__()
        self.hparams = {
            "triples": [list(map(int, t)) for t in triples],
            "k": list(map(float, k)),
            "theta0": list(map(float, theta0)),
        }
        self.tuples("triples", self.hparams["triples"], 3)
        self.parameter("k", self.hparams["k"])
        self.parameter("theta0", self.hparams["theta0"])

    @classmethod
    def fit(
        cls, positions: torch.Tensor, bonds: np.ndarray, kT: float, *, bins: int = 100
    ) -> Angles:
        triples = angle_triples(np.asarray(bonds).reshape(-1, 2))
        if not len(triples):
            return cls([], [], [])
        theta = bond_angles(positions, torch.as_tensor(triples)).numpy()
        k, theta0 = boltzmann_inversion(theta, kT, "angle", bins)
        return cls(triples.tolist(), k.tolist(), theta0.tolist())

    def __len__(self) -> int:
        return len(self.triples)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        theta = bond_angles(positions, self.triples)
        return (0.5 * self.k * (theta - self.theta0) ** 2).sum(-1)
