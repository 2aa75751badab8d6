import json

import h5py
import mdtraj as md
import numpy as np
import pytest

from cgpipe import keys
from cgpipe.io import (
    Provenance,
    TrajectoryData,
    atomic_output,
    read_provenance,
    read_table,
    read_trajectory,
    sha256sum,
    write_table,
    write_trajectory,
)


def _data(topology, n_frames=3, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n_frames, topology.n_atoms, 3)).astype(np.float32)
    return TrajectoryData(topology, xyz, np.arange(n_frames) * 0.1, forces=-xyz * 10)


def test_round_trip_and_mdtraj_opens_it_as_is(tmp_path, ala2_topology):
    data = _data(ala2_topology)
    path = tmp_path / "traj.h5"
    write_trajectory(path, data, Provenance("test", {"k": 1}, seed=3))

    loaded = md.load(str(path))  # mdtraj's own reader (PyTables)
    assert loaded.n_frames == 3 and loaded.topology == ala2_topology
    np.testing.assert_allclose(loaded.xyz, data.coordinates)
    np.testing.assert_allclose(loaded.time, data.time, rtol=1e-6)

    back = read_trajectory(path)
    assert back.topology == ala2_topology
    np.testing.assert_array_equal(back.forces, data.forces)
    np.testing.assert_array_equal(back.trajectory_index, 0)
    with h5py.File(path) as handle:
        assert handle[keys.FORCES].attrs[keys.UNITS] == keys.UNIT_FORCE
        assert handle[keys.COORDINATES].attrs[keys.UNITS] == keys.UNIT_LENGTH
    assert back.provenance["seed"] == 3 and back.provenance["config"] == {"k": 1}


def test_non_finite_forces_are_refused_naming_the_frame(tmp_path, ala2_topology):
    data = _data(ala2_topology, n_frames=5)
    data.forces[3, 2, 1] = np.nan
    path = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match="frame 3"):
        write_trajectory(path, data, Provenance("test"))
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_reader_refuses_atom_count_mismatch(tmp_path, ala2_topology):
    path = tmp_path / "traj.h5"
    write_trajectory(path, _data(ala2_topology), Provenance("test"))
    with h5py.File(path, "a") as handle:
        del handle[keys.COORDINATES]
        handle[keys.COORDINATES] = np.zeros((3, 5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="22 atoms but coordinates have 5"):
        read_trajectory(path)


def test_shape_mismatch_is_refused(ala2_topology):
    with pytest.raises(ValueError, match="coordinates have shape"):
        TrajectoryData(ala2_topology, np.zeros((2, 5, 3)), np.zeros(2))


def test_atomic_output_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_provenance_records_inputs_versions_and_config(tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("x")
    table_path = tmp_path / "t.parquet"
    import pandas as pd

    write_table(table_path, pd.DataFrame({"a": [1, 2]}), Provenance("stage", {"b": 2}, [source], 5))
    record = read_provenance(table_path)
    assert record["inputs"] == {str(source): sha256sum(source)}
    assert record["seed"] == 5 and record["config"] == {"b": 2} and record["stage"] == "stage"
    for package in ("torch", "openmm", "mdtraj", "cgpipe"):
        assert package in record["versions"]
    assert "git_commit" in record and "created" in record
    assert read_table(table_path)["a"].tolist() == [1, 2]
    json.dumps(record)
