"""Mappings compared on the same held-out frames: what a map keeps and what it averages.

For each fold k, the fold's map (a fitted map's own fold-k map, or the one fixed map) is
scored on the all-atom frames of the trajectories that fold holds out:

- ``reconstruction_rmse`` (nm): the RMS over atoms of x - D Xi x, with D the best linear
  decoder (:func:`cgpipe.mapping.quality.best_linear_decoder`) fitted on the fold's
  training frames: how much atomic detail the beads lose;
- ``mapped_force_ms`` ((kJ/mol/nm)^2): the mean over beads and Cartesian components of
  the squared mapped force (Xi_f f)_b: the instantaneous force a CG model must average
  (large where the map keeps stiff internal modes, small for a smooth CG landscape);
- ``n_beads``.

Each score comes with the same score of a random connected assignment with as many beads
(``<score>_random``, the mean over ``random_maps`` draws, each with its own decoder): the
floor a learned map should beat. Intervals: a bootstrap of the held-out frames (over
trajectories, or circular blocks within each; :func:`cgpipe.evaluate.statistics.choose_resampling`).
The pooled rows (fold ``all``) take every fold's held-out frames together: every
trajectory once, each scored with the map that never saw it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.data import FoldData, evenly, subset
from cgpipe.errors import InputError
from cgpipe.evaluate.statistics import choose_resampling, interval
from cgpipe.io import Provenance, TrajectoryData, write_table
from cgpipe.mapping.artifact import read_mapping
from cgpipe.mapping.base import Mapping
from cgpipe.mapping.groups import group_mapping
from cgpipe.mapping.quality import best_linear_decoder, random_assignment, reconstruction_error
from cgpipe.seeds import stage_seed
from cgpipe.stages import write_resolved_config

RECONSTRUCTION = "reconstruction_rmse"
MAPPED_FORCE = "mapped_force_ms"
N_BEADS = "n_beads"
RANDOM_SUFFIX = "_random"
COLUMNS = (keys.SYSTEM, keys.MAPPING, keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH)
CAPTIONS = {
    RECONSTRUCTION: "RMS over atoms of x - D Xi x (nm), D the best linear decoder fitted on the "
    "fold's training frames, on its held-out frames",
    MAPPED_FORCE: "mean over beads and components of the squared mapped force (kJ/mol/nm)^2 on "
    "the held-out frames",
    N_BEADS: "beads of the map",
}


def _per_frame(mapping: Mapping, training: TrajectoryData, held_out: TrajectoryData) -> dict:
    """Per held-out frame: reconstruction error (nm) and mean squared mapped force."""
    xi = mapping.coordinate_map
    decoder = best_linear_decoder(xi, training.coordinates)
    values = {RECONSTRUCTION: reconstruction_error(xi, decoder, held_out.coordinates)}
    if held_out.forces is not None:
        mapped = np.einsum("ba,fad->fbd", mapping.force_map, held_out.forces.astype(np.float64))
        values[MAPPED_FORCE] = (mapped**2).mean(axis=(1, 2))
    return values


def _random_maps(
    mapping: Mapping, training: TrajectoryData, held_out: TrajectoryData, seeds: list[int]
) -> dict:
    """Per held-out frame, the mean over random connected maps of as many beads."""
    draws = []
    for seed in seeds:
        labels = random_assignment(training.topology, mapping.n_beads, seed)
        random = group_mapping("random", training.topology, labels)
        draws.append(_per_frame(random, training, held_out))
    return {name: np.mean([d[name] for d in draws], axis=0) for name in draws[0]}


def _statistic(name: str, per_frame: np.ndarray) -> float:
    """A score over frames: the RMS of the per-frame RMS reconstruction error (the root of
    the mean squared error), the mean of the mapped force."""
    if name.startswith(RECONSTRUCTION):
        return float(np.sqrt((per_frame**2).mean()))
    return float(per_frame.mean())


def _rows(
    fold: str, values: dict, labels: np.ndarray, rng: np.random.Generator, resamples: int
) -> list[tuple]:
    """(fold, metric, value, low, high) of each score over frames, with its interval."""
    rows = []
    for name, per_frame in values.items():
        resampling = choose_resampling(labels, observable=per_frame)
        draws = [_statistic(name, per_frame[f]) for f in resampling.resamples(rng, resamples)]
        low, high = interval(np.asarray(draws))
        rows.append((fold, name, _statistic(name, per_frame), low, high))
    return rows


def run(
    references: Sequence[str | os.PathLike[str]],
    mapping_paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    system: str,
    name: str,
    cfg: dict[str, Any],
) -> pd.DataFrame:
    """Score one mapping of a system on every fold's held-out frames; write the table.

    Parameters
    ----------
    references
        The system's all-atom reference trajectories (positions nm, forces kJ/mol/nm).
    mapping_paths
        Per fold, in fold order, the map that fold uses (the same file for a fixed map).
    output
        The Parquet table to write (columns :data:`COLUMNS`).
    system, name
        The system and the mapping's name (the table's first columns).
    cfg
        ``train.n_folds``, ``seed`` and ``mapping.compare`` (``max_frames``, ``random_maps``,
        ``resamples``) are read.
    """
    section = cfg["mapping"]["compare"]
    n_folds = cfg["train"]["n_folds"]
    if len(mapping_paths) != n_folds:
        raise InputError(f"train.n_folds={n_folds} but {len(mapping_paths)} maps were given")
    everything = FoldData.read_all(references, n_folds, 0).data
    rng = np.random.default_rng(stage_seed(cfg["seed"], "compare", system, mapping=name))
    rows: list[tuple] = []
    pooled: dict[str, list[np.ndarray]] = {}
    pooled_labels: list[np.ndarray] = []
    for fold, path in enumerate(mapping_paths):
        mapping = read_mapping(path)
        if mapping.n_atoms != everything.topology.n_atoms:
            raise InputError(
                f"{path}: a map of {mapping.n_atoms} atoms, the references have "
                f"{everything.topology.n_atoms}"
            )
        split = FoldData.split(everything, n_folds, fold)
        training = subset(everything, evenly(split.train_frames, section["max_frames"]))
        held_out = subset(everything, evenly(split.heldout_frames, section["max_frames"]))
        seeds = [
            stage_seed(cfg["seed"], "random map", system, mapping=name, fold=fold, index=i)
            for i in range(section["random_maps"])
        ]
        values = _per_frame(mapping, training, held_out)
        values.update(
            {
                metric + RANDOM_SUFFIX: per_frame
                for metric, per_frame in _random_maps(mapping, training, held_out, seeds).items()
            }
        )
        label = f"fold{fold}"
        rows.append((label, N_BEADS, float(mapping.n_beads), np.nan, np.nan))
        rows += _rows(label, values, held_out.trajectory_index, rng, section["resamples"])
        for metric, per_frame in values.items():
            pooled.setdefault(metric, []).append(per_frame)
        pooled_labels.append(held_out.trajectory_index)
    labels = np.concatenate(pooled_labels)
    rows += _rows(
        keys.ALL_FOLDS,
        {metric: np.concatenate(parts) for metric, parts in pooled.items()},
        labels,
        rng,
        section["resamples"],
    )
    table = pd.DataFrame(rows, columns=list(COLUMNS[2:]))
    table.insert(0, keys.MAPPING, name)
    table.insert(0, keys.SYSTEM, system)
    provenance = Provenance(
        "compare",
        {"mapping": name, "n_folds": n_folds, **section},
        [*mapping_paths, *references],
    )
    write_table(output, table, provenance)
    write_resolved_config(output, cfg)
    return table
