"""Synthetic evaluation inputs: a 4-bead C-alpha-like CG reference of two trajectories
(with forces), and one fold's CG simulation per fold; only the files a test's metrics
read are written."""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd
import pytest

from cgpipe import keys, paths
from cgpipe.config import load_config
from cgpipe.evaluate import EvaluationContext
from cgpipe.io import Provenance, TrajectoryData, write_table, write_trajectory

N_BEADS = 4


def cg_topology() -> md.Topology:
    topology = md.Topology()
    chain = topology.add_chain()
    for _ in range(N_BEADS):
        residue = topology.add_residue("ALA", chain)
        topology.add_atom("CA", md.element.carbon, residue)
    return topology


def chain_frames(rng: np.random.Generator, n_frames: int, spread: float) -> np.ndarray:
    """[n_frames, N_BEADS, 3] nm: a straight chain of 0.38 nm bonds, jiggled."""
    straight = np.zeros((N_BEADS, 3))
    straight[:, 0] = 0.38 * np.arange(N_BEADS)
    return straight + spread * rng.normal(size=(n_frames, N_BEADS, 3))


def reference_data(*, with_forces: bool = True) -> TrajectoryData:
    """Two trajectories of 12 frames each."""
    rng = np.random.default_rng(0)
    coordinates = chain_frames(rng, 24, 0.05)
    return TrajectoryData(
        cg_topology(),
        coordinates,
        np.arange(24, dtype=float),
        forces=rng.normal(size=coordinates.shape) if with_forces else None,
        trajectory_index=np.repeat([0, 1], 12),
    )


def make_context(cfg, folds, reference=None, **options) -> EvaluationContext:
    """The evaluation context of ``folds`` against ``reference`` (default the fixture's)."""
    return EvaluationContext(
        reference if reference is not None else reference_data(),
        folds,
        n_folds=2,
        kT=2.494,
        bins=cfg["evaluate"]["bins"],
        **{"backmappers": ["nearest"], **options},
    )


def metric_rows(metric, context) -> list:
    """``metric``'s rows from ``context``, served as the stage serves them."""
    with context.serving(metric):
        return metric.rows(context)


@pytest.fixture
def cfg() -> dict:
    config = load_config(Path(__file__).resolve().parents[3] / "config/test.yaml")
    config["backmap"]["methods"] = ["nearest"]  # the fixture's folds hold retrieval's tables
    config["backmap"]["models"] = None  # of whatever model a test names
    return config


@pytest.fixture
def evaluation_inputs(tmp_path) -> tuple[Path, list[dict[str, Path]]]:
    """The CG reference file and, per fold, the paths of its files: ``traj`` written,
    ``health`` and ``backmap`` written, ``model`` named but absent."""
    cg = tmp_path / "cg.h5"
    write_trajectory(cg, reference_data(), Provenance("test"))
    rng = np.random.default_rng(1)
    folds = []
    for fold in range(2):
        simulate = tmp_path / f"simulate/fold{fold}"
        backmap = tmp_path / f"backmap/fold{fold}"
        simulation = TrajectoryData(  # 4 replicas of 2 frames
            cg_topology(),
            chain_frames(rng, 8, 0.08),
            np.tile([1.0, 2.0], 4),
            trajectory_index=np.repeat([0, 1, 2, 3], 2),
        )
        write_trajectory(simulate / paths.TRAJECTORY_FILE, simulation, Provenance("test"))
        health = pd.DataFrame(
            {
                keys.REPLICA: [0, 1, 2, 3],
                keys.STABLE: [True, True, fold == 0, False],
                keys.START_FRAME: [0, 5, 12, 20],
                keys.START_STATE: ["tic1_low", "tic1_low", "tic1_high", "tic1_high"],
            }
        )
        write_table(simulate / paths.HEALTH_FILE, health, Provenance("test"))
        table = pd.DataFrame(
            {
                keys.REPLICA: [0, 1],
                keys.SAMPLE: [0, 0],
                keys.CG_RMSD: [0.01, 0.03 + fold],
                "bond_fraction": [1.0, 0.5],
            }
        )
        write_table(backmap / "nearest" / paths.BACKMAP_TABLE_FILE, table, Provenance("test"))
        folds.append(
            {
                "model": tmp_path / f"train/fold{fold}" / paths.MODEL_FILE,
                "traj": simulate / paths.TRAJECTORY_FILE,
                "health": simulate / paths.HEALTH_FILE,
                "backmap": backmap,
            }
        )
    return cg, folds
