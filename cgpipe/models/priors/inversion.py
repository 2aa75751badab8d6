"""Boltzmann inversion, U(x) = -kT ln[p(x) / J(x)], of histograms of CG frames.

The Jacobian J is r^2 for bond lengths and sin(theta) for angles (1 for dihedrals and
impropers). Harmonic terms are fitted by weighted least squares with a quadratic
a x^2 + b x + c, so k = 2a and x0 = -b / 2a; periodic ones with a Fourier series
sum_n a_n cos(n phi) + b_n sin(n phi) over every bin, with a pseudo-count in each bin so
that angles the data never visited come out high in energy, not arbitrary.
"""

from __future__ import annotations

import numpy as np


def boltzmann_inversion(
    values: np.ndarray, kT: float, jacobian: str, bins: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic constants and centres of each column of ``values`` [n_frames, n_terms].

    ``jacobian`` is ``"bond"`` (r^2), ``"angle"`` (sin theta) or ``"none"`` (impropers);
    ``kT`` in kJ/mol. Returns k [n_terms] (kJ/mol per unit of x squared) and x0 [n_terms].
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
    """Fourier coefficients [n_terms, order] (a_n, b_n in kJ/mol) of -kT ln p(phi) per
    column of ``angles`` [n_frames, n_terms] (rad)."""
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
