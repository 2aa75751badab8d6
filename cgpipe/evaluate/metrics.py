"""The evaluation stage for one model: metrics table and free-energy surface plot."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mdtraj as md  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from cgpipe import keys  # noqa: E402
from cgpipe.evaluate.divergence import (  # noqa: E402
    ANGLE_RANGE,
    free_energy,
    histogram_2d,
    js_divergence,
    kl_divergence,
)
from cgpipe.io import (  # noqa: E402
    Provenance,
    TrajectoryData,
    atomic_output,
    read_table,
    read_trajectory,
    write_table,
)
from cgpipe.models import CGModel, load_model  # noqa: E402
from cgpipe.train.folds import evenly, split_frames  # noqa: E402
from cgpipe.train.force_matching import force_rmse  # noqa: E402
from cgpipe.units import thermal_energy  # noqa: E402

_HELDOUT_FRAMES = 5000
_CMAP = matplotlib.colormaps["viridis_r"].with_extremes(bad="white")


def phi_psi(data: TrajectoryData) -> np.ndarray:
    """[n_frames, 2] (phi, psi) in rad of the first residue with both angles defined.

    Works on all-atom and on CG topologies that keep the backbone atoms' names.
    """
    trajectory = data.to_mdtraj()
    phi_atoms, phi = md.compute_phi(trajectory)
    psi_atoms, psi = md.compute_psi(trajectory)
    if not len(phi_atoms) or not len(psi_atoms):
        raise ValueError("the topology has no phi/psi dihedral (backbone atoms C, N, CA, C, N)")
    # phi of residue i is (C[i-1], N[i], CA[i], C[i]);
    # psi of residue i is (N[i], CA[i], C[i], N[i+1]).
    phi_by_ca = {int(a[2]): k for k, a in enumerate(phi_atoms)}
    for k, atoms in enumerate(psi_atoms):
        if int(atoms[1]) in phi_by_ca:
            return np.stack([phi[:, phi_by_ca[int(atoms[1])]], psi[:, k]], axis=1)
    raise ValueError("no residue has both phi and psi defined")


def radius_of_gyration_and_end_to_end(data: TrajectoryData) -> np.ndarray:
    """[n_frames, 2]: radius of gyration of the beads (unweighted) and the distance from
    the first bead to the last, both in nm."""
    x = data.coordinates.astype(np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    rg = np.sqrt((centred**2).sum(axis=-1).mean(axis=1))
    end_to_end = np.linalg.norm(x[:, -1] - x[:, 0], axis=-1)
    return np.stack([rg, end_to_end], axis=1)


@dataclasses.dataclass(frozen=True)
class Projection:
    """Two collective variables on which the CG and reference ensembles are compared.

    ``ranges`` are in the variables' units; ``scale`` turns them into plotted units.
    """

    name: str
    compute: Callable[[TrajectoryData], np.ndarray]
    ranges: tuple[tuple[float, float], tuple[float, float]]
    labels: tuple[str, str]
    scale: float
    metrics: tuple[str, str, str, str]  # js, kl, js of reference halves, kl of halves


def choose_projection(reference: TrajectoryData) -> Projection:
    """phi/psi where the CG topology keeps the backbone dihedrals (backbone map), else
    radius of gyration and end-to-end distance over the reference's range plus 25 %."""
    try:
        phi_psi(TrajectoryData(reference.topology, reference.coordinates[:1], [0.0]))
    except ValueError:
        values = radius_of_gyration_and_end_to_end(reference)
        low, high = values.min(axis=0), values.max(axis=0)
        pad = 0.25 * np.maximum(high - low, 1e-3)
        low, high = np.maximum(low - pad, 0.0), high + pad
        ranges = ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))
        return Projection(
            "rg_end_to_end",
            radius_of_gyration_and_end_to_end,
            ranges,
            ("radius of gyration (nm)", "end-to-end distance (nm)"),
            1.0,
            (
                keys.JS_RG_END_TO_END,
                keys.KL_RG_END_TO_END,
                keys.JS_RG_END_TO_END_REFERENCE_HALVES,
                keys.KL_RG_END_TO_END_REFERENCE_HALVES,
            ),
        )
    return Projection(
        "phi_psi",
        phi_psi,
        ANGLE_RANGE,
        ("φ (deg)", "ψ (deg)"),
        180.0 / np.pi,
        (
            keys.JS_PHI_PSI,
            keys.KL_PHI_PSI,
            keys.JS_PHI_PSI_REFERENCE_HALVES,
            keys.KL_PHI_PSI_REFERENCE_HALVES,
        ),
    )


def _heldout_rmse(model: CGModel, reference: TrajectoryData, frames: np.ndarray) -> float:
    positions = torch.as_tensor(reference.coordinates[frames], dtype=torch.float32)
    forces = torch.as_tensor(reference.forces[frames], dtype=torch.float32)
    return force_rmse(model, positions, forces)


def _plot_fes(
    path: Path,
    panels: list[tuple[str, np.ndarray]],
    projection: Projection,
    bins: int,
    kT: float,
    title: str,
    provenance: Provenance,
) -> None:
    figure, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.3), squeeze=False)
    (x0, x1), (y0, y1) = projection.ranges
    extent = tuple(projection.scale * v for v in (x0, x1, y0, y1))
    levels = np.linspace(0, 8 * kT, 17)
    for axis, (label, values) in zip(axes[0], panels, strict=True):
        # No pseudo-count here: bins never visited stay blank instead of looking sampled.
        histogram = histogram_2d(values, bins, pseudo_count=0.0, ranges=projection.ranges)
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
        if projection.name == "phi_psi":
            axis.set_xticks([-180, -90, 0, 90, 180])
            axis.set_yticks([-180, -90, 0, 90, 180])
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


def evaluate_model(
    cg_path: str | os.PathLike[str],
    fold_dirs: list[dict[str, str]],
    output_dir: str | os.PathLike[str],
    *,
    system: str,
    mapping: str,
    model_name: str,
    n_folds: int,
    temperature: float,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Score every fold of one model; write ``metrics.parquet`` and ``fes.png``.

    ``fold_dirs[k]`` names fold k's ``model``, ``traj`` (CG simulation), ``health``
    and ``backmap`` artifacts.
    """
    kT = thermal_energy(temperature)
    bins, pseudo = params["bins"], params["pseudo_count"]
    reference = read_trajectory(cg_path)
    projection = choose_projection(reference)
    js_name, kl_name, js_halves, kl_halves = projection.metrics
    reference_values = projection.compute(reference)

    def histogram(values: np.ndarray) -> np.ndarray:
        return histogram_2d(values, bins, pseudo, projection.ranges)

    p_reference = histogram(reference_values)
    labels = reference.trajectories
    first_half = np.isin(reference.trajectory_index, labels[: max(1, len(labels) // 2)])
    p_first = histogram(reference_values[first_half])
    p_second = histogram(reference_values[~first_half])

    rows: list[tuple[str, str, float]] = []
    if (~first_half).any():
        rows.append((keys.ALL_FOLDS, js_halves, js_divergence(p_first, p_second)))
        rows.append((keys.ALL_FOLDS, kl_halves, kl_divergence(p_first, p_second)))
    panels = [(f"reference ({reference.n_frames} frames)", reference_values)]
    inputs: list[str] = [os.fspath(cg_path)]
    for fold, paths in enumerate(fold_dirs):
        name = f"fold{fold}"
        inputs += list(paths.values())
        simulation = read_trajectory(paths["traj"])
        if simulation.n_frames:
            model_values = projection.compute(simulation)
            p_model = histogram(model_values)
            rows.append((name, js_name, js_divergence(p_reference, p_model)))
            rows.append((name, kl_name, kl_divergence(p_reference, p_model)))
            panels.append((f"{model_name} {name}", model_values))
        model = load_model(paths["model"])
        _, held_out = split_frames(reference.trajectory_index, n_folds, fold)
        held_out = evenly(held_out, _HELDOUT_FRAMES)
        if reference.forces is not None:  # positions-only data (mdshare) has no force error
            rmse = _heldout_rmse(model, reference, held_out)
            rows.append((name, keys.FORCE_RMSE_HELDOUT, rmse))
            prior_only = CGModel(model.hparams["bead_types"], model.hparams["prior"], None)
            prior_rmse = _heldout_rmse(prior_only, reference, held_out)
            rows.append((name, keys.FORCE_RMSE_HELDOUT_PRIOR, prior_rmse))
        health = read_table(paths["health"])
        rows.append((name, keys.STABLE_FRACTION, float(health[keys.STABLE].mean())))
        rows.append(
            (name, keys.BACKMAP_CG_RMSD, float(read_table(paths["backmap"])[keys.CG_RMSD].mean()))
        )

    table = pd.DataFrame(rows, columns=[keys.FOLD, keys.METRIC, keys.VALUE])
    table.insert(0, keys.MODEL, model_name)
    table.insert(0, keys.MAPPING, mapping)
    table.insert(0, keys.SYSTEM, system)
    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="evaluate",
        config={"model": model_name, "n_folds": n_folds, "temperature": temperature, **params},
        inputs=inputs,
    )
    write_table(output_dir / "metrics.parquet", table, provenance)
    title = "φ/ψ" if projection.name == "phi_psi" else "radius of gyration / end-to-end"
    _plot_fes(
        output_dir / "fes.png",
        panels,
        projection,
        bins,
        kT,
        f"{system} / {mapping} / {model_name}: {title} free energy",
        provenance,
    )
    return table
