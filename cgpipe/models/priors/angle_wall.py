"""A flat-bottom wall between the end beads of every angle (1-3 pairs) that no stiff
angle holds apart: U = k/2 (r_on - r)^2 for r < r_on, 0 above.

Why: nothing else keeps an angle's end beads apart. The repulsion skips them (they are
two bonds apart) and the harmonic angle is only ~8 kT high at theta = 0, so on 3-bead
maps of alanine dipeptide (one bead per residue, k-means, Autograin) prior-only
replicas folded shut and collided: the k-means prior lost every replica.

Why this shape: the prior must keep every simulated frame above the data's contact
distance r_c (the ``repulsion_quantile`` quantile of the pair's distance, 0.1 % by
default), at 300 K, over 64 replicas x 1000 frames, i.e. a per-frame probability of
r < r_c well under 1e-5. A frame below r_c costs at least the wall's height h kT there,
so that probability is at most P0 exp(-h), P0 (<= ~0.05) being the prior's without the
wall; h = 20 makes it ~1e-10. An inverse power eps (sigma / r)^n as the repulsion uses
cannot do that without reaching into the bulk of the distribution: with sigma = r_c and
eps = kT, a frame at 0.9 r_c costs only 3.5 kT at n = 12 (1.9 kT at n = 6); raising eps
or sigma until r_c costs 20 kT puts several kT on frames the data visits often. The
flat-bottom wall is zero above its onset r_on (the ``angle_wall_onset_quantile``
quantile, 1 % by default), so the 99 % of the data above it feel nothing, and rises
harmonically to h kT at r_c.

Stiffness: k = 2 h kT / (r_on - r_c)^2, but the rise is counted over at least 0.01 nm,
which bounds k at 2 h kT / (0.01 nm)^2, ~1e6 kJ/mol/nm^2 for h = 20 at 300 K: a period of
0.02 ps for a 10-amu reduced mass, 10 steps of 2 fs (omega dt = 0.63; BAOAB is stable
below 2).

Which pairs: a pair whose tail is narrower than that (r_on - r_c < 0.01 nm) and whose
angle costs at least HELD = 100 kT folded shut is held by its angle and gets no wall. On
backbone_cb every 1-3 pair is such (tails 0.003-0.004 nm wide, angles 570-810 kT folded
shut on the default data): a wall at the bound there put forces of several 1000
kJ/mol/nm on the data's own 1 % tail, force matching taught CGSchNet to cancel them, and
its replicas then collided (stable fraction 0.47-1.0 over the default run's three folds,
1.0 without the wall). Without the wall 309 of backbone_cb's 64 000 prior-only frames fell
below r_c, by at most 2.4 %, and none collided (benchmarks/prior_stability.py). On 3-bead
maps the angles cost 2.5-8 kT folded shut (k-means, one bead per residue): walled.
"""

from __future__ import annotations

import numpy as np
import torch

from cgpipe.bonded import angle_end_pairs, angle_triples
from cgpipe.errors import InputError
from cgpipe.models.neighbours import pair_distances
from cgpipe.models.priors.base import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import bond_angles

MIN_WIDTH = 0.01  # nm: the wall is no stiffer than one rising h kT over this distance
HELD = 100.0  # kT: an angle this costly folded shut holds its end beads apart by itself


def _folded_energy(positions: torch.Tensor, bonds: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """[n_pairs] the energy in kT of each 1-3 pair's harmonic angle folded shut, k theta0^2
    / 2 with the angle's Gaussian estimate k = kT / var(theta), theta0 = mean(theta); the
    largest over the angles whose ends the pair is."""
    triples = angle_triples(bonds)
    folded = np.zeros(len(pairs))
    if not len(pairs) or not len(triples):
        return folded
    theta = bond_angles(positions, torch.as_tensor(triples)).numpy()
    per_kT = 0.5 * theta.mean(axis=0) ** 2 / np.maximum(theta.var(axis=0), 1e-12)
    index = {(int(p[0]), int(p[1])): n for n, p in enumerate(pairs)}
    for (i, _, k), energy in zip(triples.tolist(), per_kT, strict=True):
        n = index.get((min(i, k), max(i, k)))
        if n is not None:
            folded[n] = max(folded[n], energy)
    return folded


@PRIOR_TERMS.register("angle_wall")
class AngleWall(PriorTerm):
    """Flat-bottom harmonic wall on the distance between beads two bonds apart.

    Parameters
    ----------
    pairs
        [n_pairs, 2] bead pairs (i, k) of angles i-j-k (and not bonded themselves).
    onset
        [n_pairs] distances r_on (nm) below which the wall acts.
    k
        [n_pairs] force constants (kJ/mol/nm^2).
    """

    def __init__(self, pairs: list[list[int]], onset: list[float], k: list[float]) -> None:
        super().__init__()
        self.hparams = {
            "pairs": [list(map(int, p)) for p in pairs],
            "onset": list(map(float, onset)),
            "k": list(map(float, k)),
        }
        self.tuples("pairs", self.hparams["pairs"], 2)
        self.parameter("onset", self.hparams["onset"])
        self.parameter("k", self.hparams["k"])

    @classmethod
    def fit(
        cls,
        positions: torch.Tensor,
        bonds: np.ndarray,
        kT: float,
        *,
        repulsion_quantile: float = 0.001,
        angle_wall_onset_quantile: float = 0.01,
        angle_wall_height: float = 20.0,
    ) -> AngleWall:
        """The wall starts at each pair's ``angle_wall_onset_quantile`` distance and is
        ``angle_wall_height`` kT high at its ``repulsion_quantile`` distance (less where
        the two are closer than 0.01 nm: the stiffness bound)."""
        if angle_wall_onset_quantile <= repulsion_quantile:
            raise InputError(
                f"train.prior.angle_wall_onset_quantile={angle_wall_onset_quantile} must "
                f"exceed train.prior.repulsion_quantile={repulsion_quantile}: the angle wall "
                "starts above the contact distance"
            )
        pairs = angle_end_pairs(positions.shape[1], np.asarray(bonds).reshape(-1, 2))
        if not len(pairs):
            return cls([], [], [])
        r = pair_distances(positions, torch.as_tensor(pairs)).numpy()
        contact = np.quantile(r, repulsion_quantile, axis=0)
        onset = np.quantile(r, angle_wall_onset_quantile, axis=0)
        # A pair with a narrow tail whose angle is stiff (HELD kT or more folded shut) is
        # held by that angle: a wall there would only put forces beyond the stiffness bound
        # on the data's own tail.
        held = (onset - contact < MIN_WIDTH) & (_folded_energy(positions, bonds, pairs) >= HELD)
        pairs, onset, contact = pairs[~held], onset[~held], contact[~held]
        k = 2.0 * angle_wall_height * kT / np.maximum(onset - contact, MIN_WIDTH) ** 2
        return cls(pairs.tolist(), onset.tolist(), k.tolist())

    def __len__(self) -> int:
        return len(self.pairs)

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        r = pair_distances(positions, self.pairs)
        overlap = torch.clamp(self.onset - r, min=0.0)
        return (0.5 * self.k * overlap**2).sum(-1)
