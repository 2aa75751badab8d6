"""A tiny fold to simulate: ala2 on the backbone map, its CG frames, and a prior model
fitted to the training trajectories of fold 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgpipe.config import load_config
from cgpipe.data import FoldData
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.mapping import run as build_mapping
from cgpipe.models import MODELS, fit_prior, save_model
from tests.conftest import REPO

FOLD = 1


@pytest.fixture(scope="session")
def test_config() -> dict:
    return load_config(REPO / "config/test.yaml")


@pytest.fixture(scope="session")
def fold_inputs(tmp_path_factory, ala2_reference, test_config) -> dict[str, Path]:
    """Paths of a mapping, the CG frames of both reference trajectories (labelled by
    trajectory) and a prior-only model of fold 1."""
    folder = tmp_path_factory.mktemp("simulate_inputs")
    mapping_path = folder / "backbone.parquet"
    build_mapping(ala2_reference, mapping_path, name="backbone", cfg=test_config)
    mapping = read_mapping(mapping_path)
    reference = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
    cg = TrajectoryData(
        topology=mapping.topology,
        coordinates=np.einsum("ba,fad->fbd", mapping.coordinate_map, reference.coordinates),
        time=reference.time,
        trajectory_index=reference.trajectory_index,
    )
    cg_path = folder / "backbone.h5"
    write_trajectory(cg_path, cg, Provenance("forces"))
    training = FoldData.split(cg, test_config["train"]["n_folds"], FOLD).training
    prior = fit_prior(training.coordinates, mapping.bonds, test_config["temperature"], bins=20)
    model = MODELS.get("prior")(bead_types=[0] * mapping.n_beads, prior=prior.hparams)
    model_path = folder / "model.pt"
    save_model(model_path, model, Provenance("train"))
    return {"mapping": mapping_path, "cg": cg_path, "model": model_path}
