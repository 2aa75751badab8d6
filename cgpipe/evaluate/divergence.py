"""Histograms and divergences between distributions on a common grid."""

from __future__ import annotations

import numpy as np

from cgpipe.observables import ANGLE_RANGE


def histogram_2d(
    samples: np.ndarray,
    bins: int,
    pseudo_count: float,
    ranges: tuple[tuple[float, float], tuple[float, float]] = ANGLE_RANGE,
) -> np.ndarray:
    """Normalised [bins, bins] histogram of pairs [n, 2] over ``ranges`` (default: angles
    in rad over [-pi, pi)^2).

    Samples outside the ranges count in the edge bins. ``pseudo_count`` is added to
    every bin's count before normalising.
    """
    low = np.array([r[0] for r in ranges])
    high = np.array([r[1] for r in ranges])
    # Clipped just inside the upper edge, so that nothing falls off the grid.
    samples = np.clip(samples, low, np.nextafter(high, low))
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in ranges]
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=edges)
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
