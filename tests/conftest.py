"""Shared fixtures: the alanine-dipeptide structure that openmmtools ships, a short
reference trajectory with forces generated once per test session, and its mapping."""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import pytest

from cgpipe.config import load_config
from cgpipe.reference import generate_trajectory, resolve_structure

ALA2 = "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ala2_structure() -> Path:
    return resolve_structure(ALA2)


@pytest.fixture(scope="session")
def ala2_topology(ala2_structure: Path) -> md.Topology:
    return md.load(str(ala2_structure)).topology


@pytest.fixture(scope="session")
def tiny_reference_params() -> dict:
    params = load_config(None)["reference"]
    params.update(equilibration_steps=50, n_steps=400, save_every=20)
    return params


@pytest.fixture(scope="session")
def ala2_reference(tmp_path_factory, tiny_reference_params) -> list[Path]:
    """Two 20-frame alanine-dipeptide trajectories with forces."""
    folder = tmp_path_factory.mktemp("reference")
    paths = []
    for index in range(2):
        path = folder / f"traj_{index}.h5"
        generate_trajectory(
            ALA2,
            path,
            system="ala2",
            index=index,
            temperature=300.0,
            params=tiny_reference_params,
            master_seed=1,
        )
        paths.append(path)
    return paths
