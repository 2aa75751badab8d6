"""A tiny fold to backmap: ala2 on the backbone map and its CG frames, labelled by
trajectory (standing in for a simulation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgpipe.config import load_config
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.mapping import run as build_mapping
from tests.conftest import REPO


@pytest.fixture(scope="session")
def test_config() -> dict:
    return load_config(REPO / "config/test.yaml")


@pytest.fixture(scope="session")
def backmap_inputs(tmp_path_factory, ala2_reference, test_config) -> dict:
    """The reference paths, a mapping, and a CG trajectory of every reference frame."""
    folder = tmp_path_factory.mktemp("backmap_inputs")
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
    simulation = folder / "simulation.h5"
    write_trajectory(simulation, cg, Provenance("simulate"))
    references: list[Path] = list(ala2_reference)
    return {"references": references, "mapping": mapping_path, "simulation": simulation}
