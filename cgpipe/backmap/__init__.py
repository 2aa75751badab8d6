"""Backmapping CG frames to all atoms.

``nearest``: for each CG frame, the all-atom reference frame (from the fold's training
trajectories) whose CG image is nearest in internal distances, superimposed on the CG
frame by the Kabsch fit of its mapped positions. Honest and simple: it can only give
conformations the reference visited; the E(3)-equivariant generative model replaces it
in its own issue.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table, write_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.train.folds import evenly, split_frames

_MAX_TEMPLATES = 50000


def internal_distances(positions: np.ndarray) -> np.ndarray:
    """[n_frames, n_pairs] distances of all bead pairs i < j (rotation invariant)."""
    i, j = np.triu_indices(positions.shape[1], k=1)
    return np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)


def backmap_nearest(
    cg_positions: np.ndarray, templates: np.ndarray, xi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-atom positions for CG frames by nearest template.

    Parameters
    ----------
    cg_positions
        [n_frames, n_beads, 3] CG frames (nm).
    templates
        [n_templates, n_atoms, 3] all-atom reference frames (nm).
    xi
        [n_beads, n_atoms] coordinate map.

    Returns
    -------
    positions, template_index, cg_rmsd
        [n_frames, n_atoms, 3] all-atom positions, the template used per frame, and the
        CG-space RMSD (nm) between each CG frame and its superimposed template.
    """
    template_cg = np.einsum("ba,fad->fbd", xi, templates)
    search = NearestNeighbors(n_neighbors=1).fit(internal_distances(template_cg))
    _, nearest = search.kneighbors(internal_distances(cg_positions))
    nearest = nearest[:, 0]
    rotation, translation = kabsch(template_cg[nearest], cg_positions)
    positions = superpose(templates[nearest], rotation, translation)
    fitted = superpose(template_cg[nearest], rotation, translation)
    return positions.astype(np.float32), nearest, rmsd(fitted, cg_positions)


def backmap_fold(
    cg_trajectory_path: str | os.PathLike[str],
    reference_paths: list[str],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    n_folds: int,
    params: dict[str, Any],
) -> None:
    """Backmap a CG simulation of ``fold`` with templates from its training trajectories.

    Writes ``traj.h5`` (all-atom) and ``backmap.parquet`` (per frame: replica, template,
    cg_rmsd in nm) into ``output_dir``.
    """
    mapping = read_mapping(mapping_path)
    reference = TrajectoryData.concatenate([read_trajectory(p) for p in reference_paths])
    train_frames, _ = split_frames(reference.trajectory_index, n_folds, fold)
    templates = reference.coordinates[evenly(train_frames, _MAX_TEMPLATES)]
    cg = read_trajectory(cg_trajectory_path, stride=params["stride"])
    if cg.topology.n_atoms != mapping.n_beads:
        raise InputError(
            f"{cg_trajectory_path} has {cg.topology.n_atoms} beads, "
            f"{mapping_path} {mapping.n_beads}"
        )
    positions, template, cg_rmsd = backmap_nearest(
        cg.coordinates, templates, mapping.coordinate_map
    )
    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="backmap",
        config={"fold": fold, **params},
        inputs=[cg_trajectory_path, mapping_path, *reference_paths],
    )
    write_trajectory(
        output_dir / "traj.h5",
        TrajectoryData(
            reference.topology, positions, cg.time, trajectory_index=cg.trajectory_index
        ),
        provenance,
    )
    write_table(
        output_dir / "backmap.parquet",
        pd.DataFrame(
            {keys.REPLICA: cg.trajectory_index, keys.TEMPLATE: template, keys.CG_RMSD: cg_rmsd}
        ),
        provenance,
        units={keys.CG_RMSD: "nm"},
    )
