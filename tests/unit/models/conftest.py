"""Alanine dipeptide in GBn2 long enough (40 ps, 2000 frames) for a prior's tails, and
its 3-bead maps."""

from __future__ import annotations

import pytest

from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.reference import generate_trajectory
from tests.conftest import ALA2


@pytest.fixture(scope="session")
def ala2_40ps(tmp_path_factory, tiny_reference_params) -> TrajectoryData:
    """One 40-ps trajectory at 300 K, every 20 fs saved (about 10 s on one core)."""
    params = dict(tiny_reference_params)
    params.update(equilibration_steps=2000, start_steps=1000, n_steps=20_000, save_every=10)
    path = tmp_path_factory.mktemp("ala2_40ps") / "traj_0.h5"
    generate_trajectory(
        ALA2, path, system="ala2", index=0, temperature=300.0, params=params, master_seed=5
    )
    return read_trajectory(path)
