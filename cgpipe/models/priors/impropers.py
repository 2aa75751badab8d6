"""Harmonic impropers at branched beads, U = k/2 (phi - phi0)^2 in the signed dihedral
(a, b, c, j) of a bead j with three bonds, by Boltzmann inversion (Jacobian 1).

A branched bead's handedness (CA with N, C and CB) is held by the improper, which
changes sign under reflection; a distance-only network cannot see it.
"""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.bonded import improper_quadruples
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import dihedral_angles
from cgpipe.models.priors.inversion import boltzmann_inversion


@PRIOR_TERMS.register("impropers")
class Impropers(PriorTerm):
    """Harmonic in the signed dihedral, wrapped to (-pi, pi] around its centre.

    Parameters
    ----------
    quadruples
        [n_impropers, 4] (a, b, c, j): j bonded to a < b < c.
    k
        [n_impropers] force constants (kJ/mol/rad^2).
    phi0
        [n_impropers] centres (rad).
    """

    def __init__(self, quadruples: list[list[int]], k: list[float], phi0: list[float]) -> None:
        super().__init__()
        self.hparams = {
            "quadruples": [list(map(int, q)) for q in quadruples],
            "k": list(map(float, k)),
            "phi0": list(map(float, phi0)),
        }
        self.tuples("quadruples", self.hparams["quadruples"], 4)
        self.parameter("k", self.hparams["k"])
        self.parameter("phi0", self.hparams["phi0"])

    @classmethod
    def fit(
        cls, positions: torch.Tensor, bonds: np.ndarray, kT: float, *, bins: int = 100
    ) -> Impropers:
        quadruples = improper_quadruples(np.asarray(bonds).reshape(-1, 2))
        if not len(quadruples):
            return cls([], [], [])
        phi = dihedral_angles(positions, torch.as_tensor(quadruples)).numpy()
        k, phi0 = boltzmann_inversion(phi, kT, "none", bins)
        return cls(quadruples.tolist(), k.tolist(), phi0.tolist())

    def __len__(self) -> int:
        return len(self.quadruples)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        offset = dihedral_angles(positions, self.quadruples) - self.phi0
        offset = torch.remainder(offset + torch.pi, 2 * torch.pi) - torch.pi
        return (0.5 * self.k * offset**2).sum(-1)
