"""The toy CG data set of the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.train.toy import CHAIN, TYPES, WELL, write_cg


@pytest.fixture(scope="session")
def toy_cg(tmp_path_factory) -> tuple[Path, Path]:
    """240 frames of a 5-bead chain in 4 trajectories; forces of a harmonic well around the
    chain's centroid (:data:`WELL`) plus noise."""
    rng = np.random.default_rng(5)
    positions = CHAIN + rng.normal(scale=0.02, size=(240, 5, 3))
    mean_forces = -WELL * (positions - positions.mean(axis=1, keepdims=True))
    forces = mean_forces + rng.normal(scale=5.0, size=positions.shape)
    index = np.arange(240) * 4 // 240
    return write_cg(tmp_path_factory.mktemp("toy"), positions, forces, index, TYPES)
