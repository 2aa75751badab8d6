"""The free-energy surface plot: reference and every fold's CG simulation side by side."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cgpipe import keys  # noqa: E402
from cgpipe.evaluate.statistics import regularised_histogram  # noqa: E402
from cgpipe.io import Provenance, atomic_output  # noqa: E402
from cgpipe.observables import Projection  # noqa: E402

_CMAP = matplotlib.colormaps["viridis_r"].with_extremes(bad="white")


def plot_fes(
    path: str | os.PathLike[str],
    panels: list[tuple[str, np.ndarray]],
    projection: Projection,
    bins: int,
    kT: float,
    title: str,
    provenance: Provenance,
) -> None:
    """Write a PNG of F = -kT ln p (kJ/mol, 0 to 8 kT) of each panel's projected values
    [n, 2] on a ``bins`` x ``bins`` grid, with provenance in the PNG's metadata."""
    figure, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.3), squeeze=False)
    (x0, x1), (y0, y1) = projection.ranges
    extent = tuple(projection.scale * v for v in (x0, x1, y0, y1))
    levels = np.linspace(0, 8 * kT, 17)
    for axis, (label, values) in zip(axes[0], panels, strict=True):
        # No pseudo-count here: bins never visited stay blank instead of looking sampled.
        edges = [np.linspace(low, high, bins + 1) for low, high in projection.ranges]
        histogram = regularised_histogram(values, edges, pseudo_mass=0.0)
        energy = free_energy(histogram, kT)
        image = axis.imshow(
            np.clip(energy, 0, levels[-1]).T,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap=_CMAP,
            vmin=0,
            vmax=levels[-1],
            interpolation="nearest",
        )
        axis.set_title(label, fontsize=9)
        axis.set_xlabel(projection.labels[0])
        if projection.ticks is not None:
            axis.set_xticks(list(projection.ticks))
            axis.set_yticks(list(projection.ticks))
    axes[0][0].set_ylabel(projection.labels[1])
    figure.colorbar(image, ax=axes[0].tolist(), label="free energy (kJ/mol)", shrink=0.8)
    figure.suptitle(title, fontsize=10)
    with atomic_output(path) as tmp:
        figure.savefig(
            tmp,
            format="png",
            dpi=110,
            bbox_inches="tight",
            metadata={keys.PARQUET_PROVENANCE_KEY.decode(): provenance.to_json()},
        )
    plt.close(figure)


def free_energy(histogram: np.ndarray, kT: float) -> np.ndarray:
    """F = -kT ln p (kJ/mol) of a normalised histogram, shifted to a minimum of 0; NaN
    where p = 0 (bins never visited stay blank instead of looking sampled)."""
    with np.errstate(divide="ignore"):
        energy = -kT * np.log(histogram)
    energy[~np.isfinite(energy)] = np.nan
    return energy - np.nanmin(energy)
