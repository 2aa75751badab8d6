"""The command line reports an error of the user's making in one line, exit status 2, and
keeps the traceback of a bug."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from cgpipe import cli, keys, paths
from cgpipe.errors import InputError
from cgpipe.io import (
    Provenance,
    TrajectoryData,
    read_checkpoint,
    read_provenance,
    write_trajectory,
)
from cgpipe.mapping import MAPPINGS, write_mapping
from cgpipe.models import load_model
from tests.conftest import REPO


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _run_main(args: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``cgpipe`` run in this process."""
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    return exited.value.code, capsys.readouterr().err


def _model_file(tmp_path) -> Path:
    """Where the train stage writes a checkpoint: simulate reads the job from its path."""
    path = tmp_path / paths.fill(
        paths.MODEL, system="ala2", mapping="backbone", model="prior", fold=0
    )
    path.parent.mkdir(parents=True)
    return path


def _simulate_args(model: os.PathLike[str], tmp_path) -> list[str]:
    return [
        "simulate",
        "--model-file",
        str(model),
        "--cg",
        str(tmp_path / paths.fill(paths.CG, system="ala2", mapping="backbone")),
        "--mapping",
        str(tmp_path / "mapping.parquet"),
        "--fold",
        "0",
        "--output-dir",
        str(tmp_path / "out"),
    ]


def _cgpipe(*args: str) -> subprocess.CompletedProcess:
    """``python -m cgpipe.cli``, as a console script runs it: a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "cgpipe.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.fixture
def random_checkpoint(tmp_path):
    path = _model_file(tmp_path)
    path.write_bytes(os.urandom(4096))
    return path


def test_random_bytes_checkpoint_is_refused_in_one_line(random_checkpoint, tmp_path):
    done = _cgpipe(*_simulate_args(random_checkpoint, tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = _lines(done.stderr)
    assert line == f"cgpipe simulate: error: {random_checkpoint}: not a cgpipe checkpoint " + (
        "(not the zip archive of torch.save)"
    )
    # --debug shows where it came from, and still ends in the same line.
    debug = _cgpipe("--debug", *_simulate_args(random_checkpoint, tmp_path))
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "read_checkpoint" in debug.stderr
    assert _lines(debug.stderr)[-1] == line


def test_a_zip_archive_that_is_no_checkpoint_is_refused(tmp_path, capsys):
    other = _model_file(tmp_path)
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("model/data.pkl", b"not a pickle")
    status, err = _run_main(_simulate_args(other, tmp_path), capsys)
    assert status == 2
    (line,) = _lines(err)
    assert line.startswith(f"cgpipe simulate: error: {other}: not a cgpipe checkpoint (")
    # The same refusal from the library, and from the provenance reader.
    for read in (load_model, read_checkpoint, read_provenance):
        with pytest.raises(InputError, match="not a cgpipe checkpoint"):
            read(other)


def test_a_checkpoint_without_the_model_is_refused(tmp_path):
    import torch

    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(InputError, match=r"not a cgpipe checkpoint \(no hparams/state_dict\)"):
        load_model(path)


@pytest.fixture
def reference_and_mapping(tmp_path, ala2_topology):
    """A 10-frame all-atom reference with forces and its backbone mapping."""
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(10, ala2_topology.n_atoms, 3)).astype(np.float32)
    reference = tmp_path / "traj_0.h5"
    data = TrajectoryData(ala2_topology, xyz, np.arange(10) * 0.1, forces=-xyz)
    write_trajectory(reference, data, Provenance("test"))
    mapping = tmp_path / "mapping.parquet"
    write_mapping(
        mapping,
        MAPPINGS.get("backbone")().build(ala2_topology, None),
        Provenance("mapping", {}, []),
    )
    return reference, mapping


def _forces(reference, mapping, tmp_path, *extra: str) -> list[str]:
    return [
        "forces",
        str(reference),
        "--mapping",
        str(mapping),
        "--output",
        str(tmp_path / "cg.h5"),
        *extra,
    ]


def _one_line_naming_once(err: str, command: str, path) -> str:
    (line,) = _lines(err)
    assert line.startswith(f"cgpipe {command}: error: {path}: ")
    assert line.count(str(path)) == 1 and line.count(path.name) == 1
    return line


def test_truncated_reference_is_named_once(reference_and_mapping, tmp_path, capsys):
    reference, mapping = reference_and_mapping
    data = reference.read_bytes()
    reference.write_bytes(data[: len(data) // 2])
    status, err = _run_main(_forces(reference, mapping, tmp_path), capsys)
    assert status == 2
    line = _one_line_naming_once(err, "forces", reference)
    assert "not a readable HDF5 file (" in line and "truncated file" in line
    assert not (tmp_path / "cg.h5").exists()


def test_damaged_reference_data_is_named_once(reference_and_mapping, tmp_path, capsys):
    # A file that opens but whose compressed forces cannot be read back.
    reference, mapping = reference_and_mapping
    with h5py.File(reference, "r") as handle:
        chunk = handle[keys.FORCES].id.get_chunk_info(0)
    with open(reference, "r+b") as handle:
        handle.seek(chunk.byte_offset)
        handle.write(b"\xff" * chunk.size)
    status, err = _run_main(_forces(reference, mapping, tmp_path), capsys)
    assert status == 2
    line = _one_line_naming_once(err, "forces", reference)
    assert "damaged trajectory file, cannot read it (" in line


def test_nan_in_one_force_frame_is_named_once(reference_and_mapping, tmp_path, capsys):
    reference, mapping = reference_and_mapping
    with h5py.File(reference, "a") as handle:
        handle[keys.FORCES][5, 0, 0] = np.nan
    status, err = _run_main(_forces(reference, mapping, tmp_path), capsys)
    assert status == 2
    line = _one_line_naming_once(err, "forces", reference)
    assert line == (
        f"cgpipe forces: error: {reference}: forces hold NaN or infinite values, first at "
        "frame 5 atom 0 (1 frames affected)"
    )


def test_bad_configuration_is_one_line(reference_and_mapping, tmp_path, capsys):
    reference, mapping = reference_and_mapping
    config = '{"no_such_key": 3, "temperature": "hot"}'
    status, err = _run_main(_forces(reference, mapping, tmp_path, "--config", config), capsys)
    assert status == 2 and "Traceback" not in err
    (line,) = _lines(err)
    # The validator's two errors, one per line in the exception, joined.
    assert line == (
        "cgpipe forces: error: configuration given as JSON: invalid configuration; "
        "(top level): Additional properties are not allowed ('no_such_key' was unexpected); "
        "temperature: 'hot' is not of type 'number'"
    )


def test_missing_config_file_is_one_line(reference_and_mapping, tmp_path, capsys):
    reference, mapping = reference_and_mapping
    missing = tmp_path / "missing.yaml"
    status, err = _run_main(_forces(reference, mapping, tmp_path, "--config", str(missing)), capsys)
    assert status == 2
    assert _lines(err) == [f"cgpipe forces: error: {missing}: No such file or directory"]


def test_debug_adds_the_traceback(reference_and_mapping, tmp_path, capsys):
    _, mapping = reference_and_mapping
    status, err = _run_main(
        ["--debug", *_forces(tmp_path / "nowhere.h5", mapping, tmp_path)], capsys
    )
    assert status == 2
    assert "Traceback" in err
    assert _lines(err)[-1] == f"cgpipe forces: error: {tmp_path / 'nowhere.h5'}: no such " + (
        "trajectory file"
    )


@pytest.mark.parametrize("bug", [ZeroDivisionError, RuntimeError, ValueError])
def test_a_bug_keeps_its_traceback(reference_and_mapping, tmp_path, capsys, monkeypatch, bug):
    # Any exception other than an expected one propagates, for Python to print its
    # traceback and exit with status 1; a plain ValueError is a bug too.
    reference, mapping = reference_and_mapping

    def broken(*args, **kwargs):
        raise bug("a bug in cgpipe")

    monkeypatch.setattr("cgpipe.forces.project", broken)
    with pytest.raises(bug, match="a bug in cgpipe"):
        cli.main(_forces(reference, mapping, tmp_path))
    assert "error:" not in capsys.readouterr().err
