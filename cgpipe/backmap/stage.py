"""The backmapping stage: a fold's CG simulation back to all atoms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cgpipe import keys
from cgpipe.backmap.base import BACKMAPPERS
from cgpipe.data import FoldData
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table, write_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.paths import BACKMAP_TABLE_FILE, TRAJECTORY_FILE
from cgpipe.stages import write_resolved_config


def run(
    simulation: str | os.PathLike[str],
    references: list[str | os.PathLike[str]],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    cfg: dict[str, Any],
) -> None:
    """Backmap a CG simulation of ``fold`` with a backmapper fitted on its training
    trajectories.

    The backmapper is ``backmap.method``, built with its section and fitted on the
    all-atom frames of the training trajectories of ``fold`` (of ``train.n_folds``)
    only; every ``backmap.stride``-th CG frame is backmapped.

    Parameters
    ----------
    simulation
        CG trajectory (HDF5) of the model of ``fold``, labelled by replica.
    references
        All-atom reference trajectories, in order (trajectory ``i`` is the ``i``-th).
    mapping_path
        The mapping (coordinate map Xi).
    output_dir
        Folder for the all-atom trajectory, the per-frame table (replica, cg_rmsd in
        nm, and the method's own columns) and the resolved configuration.
    fold
        Cross-validation fold.
    cfg
        The validated configuration (``train.n_folds``, ``backmap``).
    """
    params = cfg["backmap"]
    method = params["method"]
    backmapper = BACKMAPPERS.get(method)(**params.get(method, {}))
    mapping = read_mapping(mapping_path)
    folds = FoldData.read_all(references, cfg["train"]["n_folds"], fold)
    reference = folds.data
    cg = read_trajectory(simulation, stride=params["stride"])
    if cg.topology.n_atoms != mapping.n_beads:
        raise InputError(
            f"{simulation} has {cg.topology.n_atoms} beads, {mapping_path} {mapping.n_beads}"
        )
    backmapper.fit(folds.training, mapping)
    positions, table = backmapper.backmap(cg)
    expected = (cg.n_frames, reference.topology.n_atoms, 3)
    if positions.shape != expected or len(table) != cg.n_frames:
        raise ValueError(
            f"backmapper {method!r} gave positions {positions.shape} and {len(table)} rows "
            f"for {cg.n_frames} frames, expected {expected}"
        )
    output_dir = Path(output_dir)
    labels = folds.data.trajectory_index
    provenance = Provenance(
        stage="backmap",
        config={"fold": fold, **params},
        inputs=[simulation, mapping_path, *references],
        extra={
            "fitted_on_trajectories": np.unique(labels[folds.train_frames]).tolist(),
            "held_out_trajectories": np.unique(labels[folds.heldout_frames]).tolist(),
        },
    )
    write_trajectory(
        output_dir / TRAJECTORY_FILE,
        TrajectoryData(
            reference.topology, positions, cg.time, trajectory_index=cg.trajectory_index
        ),
        provenance,
    )
    write_table(output_dir / BACKMAP_TABLE_FILE, table, provenance, units={keys.CG_RMSD: "nm"})
    write_resolved_config(output_dir, cfg)
