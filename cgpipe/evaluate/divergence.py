"""Histograms and divergences between distributions on a common grid."""

from __future__ import annotations

import numpy as np


def histogram_2d(samples: np.ndarray, bins: int, pseudo_count: float) -> np.ndarray:
    """Normalised [bins, bins] histogram of angle pairs [n, 2] (rad) over [-pi, pi)^2.

    ``pseudo_count`` is added to every bin's count before normalising.
    """
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=(edges, edges))
    counts = counts + pseudo_count
    return counts / counts.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """D_KL(p || q) in nats for normalised histograms with no empty bin in q."""
    p, q = p.ravel(), q.ravel()
    support = p > 0
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in nats (0 <= JS <= ln 2)."""
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def free_energy(histogram: np.ndarray, kT: float) -> np.ndarray:
    """F = -kT ln p (kJ/mol), shifted to a minimum of 0; NaN where p = 0."""
    with np.errstate(divide="ignore"):
        energy = -kT * np.log(histogram)
    energy[~np.isfinite(energy)] = np.nan
    return energy - np.nanmin(energy)
