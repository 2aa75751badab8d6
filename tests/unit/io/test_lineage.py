"""Lineage and verification on a few small artifacts written with the project's own
writers: a user's sheet and two reference trajectories, a map built from the sheet and one
trajectory, a CG file from the map and both trajectories, metrics from the CG file; so
that trajectory 0 is reached by two paths and the sheet is a leaf."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import h5py
import mdtraj as md
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from cgpipe import cli, keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, sha256sum, write_table, write_trajectory
from cgpipe.io import lineage as lineage_module
from cgpipe.io.lineage import NodeKind, lineage, lineage_tree, verify

SHEET = "config/maps/sheet.tsv"
TRAJ_0 = "results/reference/sys/traj_0.h5"
TRAJ_1 = "results/reference/sys/traj_1.h5"
MAP = "results/mapping/sys/user.parquet"
CG = "results/cg/sys/user.h5"
METRICS = "results/evaluate/sys/user/metrics.parquet"


def _trajectory(path: str, provenance: Provenance, n_atoms: int = 2) -> None:
    topology = md.Topology()
    residue = topology.add_residue("ALA", topology.add_chain())
    for i in range(n_atoms):
        topology.add_atom(f"C{i}", md.element.carbon, residue)
    xyz = np.random.default_rng(len(path)).normal(size=(4, n_atoms, 3))
    write_trajectory(path, TrajectoryData(topology, xyz, np.arange(4) * 0.1, -xyz), provenance)


@pytest.fixture
def run_folder(tmp_path, monkeypatch) -> Path:
    """A run's working directory, as a workflow job sees it (inputs recorded relative)."""
    monkeypatch.chdir(tmp_path)
    for name in (SHEET, TRAJ_0, MAP, CG, METRICS):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(SHEET).write_text("bead\tatom\nB1\t0\n")
    _trajectory(TRAJ_0, Provenance("reference", {"temperature": 300.0}, seed=11))
    _trajectory(TRAJ_1, Provenance("reference", {"temperature": 300.0}, seed=12))
    beads = pd.DataFrame({"bead": [0], "atom": [0], "weight": [1.0]})
    write_table(MAP, beads, Provenance("mapping", {"mapping": "user"}, [SHEET, TRAJ_0]))
    _trajectory(CG, Provenance("forces", {"force_map": "basic"}, [MAP, TRAJ_0, TRAJ_1]), 1)
    metrics = pd.DataFrame({"metric": ["kl"], "value": [0.1]})
    write_table(METRICS, metrics, Provenance("evaluate", {"n_bins": 40}, [CG], seed=5))
    return tmp_path


def _text(graph) -> str:
    out = io.StringIO()
    Console(file=out, width=1 << 16, highlight=False).print(lineage_tree(graph), crop=False)
    return out.getvalue()


def _flip_a_byte_of_coordinates(path: str) -> None:
    """Change one byte inside the compressed coordinates: the record stays readable."""
    with h5py.File(path) as handle:
        offset = handle[keys.COORDINATES].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 8)
        byte = handle.read(1)
        handle.seek(offset + 8)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _cgpipe(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_lineage_reaches_every_file_once(run_folder):
    graph = lineage(METRICS)
    assert graph.artifact == METRICS and graph.root == run_folder
    assert list(graph.nodes) == [METRICS, CG, MAP, SHEET, TRAJ_0, TRAJ_1]
    kinds = {name: node.kind for name, node in graph.nodes.items()}
    assert kinds == {**dict.fromkeys(graph.nodes, NodeKind.ARTIFACT), SHEET: NodeKind.LEAF}
    edges = {(parent, item.path) for parent, item in graph.edges()}
    assert edges == {
        (METRICS, CG),
        (CG, MAP),
        (CG, TRAJ_0),
        (CG, TRAJ_1),
        (MAP, SHEET),
        (MAP, TRAJ_0),
    }
    assert all(item.sha256 == sha256sum(item.path) for _, item in graph.edges())


def test_tree_shows_each_record_and_a_shared_input_once(run_folder):
    text = _text(lineage(METRICS))
    lines = text.splitlines()
    assert lines[0] == METRICS
    assert "stage evaluate | seed 5 | cgpipe " in lines[1] and "| commit " in lines[1]
    assert lines[2] == 'config {"n_bins": 40}'
    assert lines[3].startswith("versions ") and "numpy " in lines[3]
    # Four levels (metrics <- CG <- map <- trajectory 0), then trajectory 0 from the CG file.
    assert f"    ├── {TRAJ_0}  sha256 {sha256sum(TRAJ_0)}  (above)" in lines
    traj_0 = [line for line in lines if TRAJ_0 in line]
    assert len(traj_0) == 2 and traj_0[0].endswith(sha256sum(TRAJ_0))
    assert text.count("stage reference | seed 11 |") == 1
    assert text.count("stage reference | seed 12 |") == 1


def test_a_file_without_a_record_is_a_leaf(run_folder):
    raw = Path("resources/download/sys/raw.h5")
    raw.parent.mkdir(parents=True)
    with h5py.File(raw, "w") as handle:
        handle["coordinates"] = np.zeros((1, 1, 3))
    write_table(MAP, pd.DataFrame({"a": [1]}), Provenance("mapping", {}, [SHEET, raw]))
    graph = lineage(MAP)
    assert graph.nodes[SHEET].kind is NodeKind.LEAF
    assert graph.nodes[SHEET].note == "no provenance reader for files ending in '.tsv'"
    assert graph.nodes[str(raw)].note == "artifact carries no provenance record"
    text = _text(graph)
    assert f"├── {SHEET}  sha256 {sha256sum(SHEET)}  (leaf: no provenance reader" in text
    assert f"└── {raw}  sha256 {sha256sum(raw)}  (leaf: artifact carries no provenance" in text
    assert verify(graph).ok


def test_a_record_that_needs_a_missing_library_is_a_leaf_that_says_so(run_folder, monkeypatch):
    read = lineage_module.read_provenance

    def without_torch(path):
        if str(path).endswith(".parquet"):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return read(path)

    monkeypatch.setattr(lineage_module, "read_provenance", without_torch)
    graph = lineage(CG)
    assert graph.nodes[MAP].kind is NodeKind.LEAF
    assert graph.nodes[MAP].note == "reading its record needs torch"
    assert verify(graph).ok
    with pytest.raises(InputError, match=f"^{METRICS}: reading its record needs torch$"):
        lineage(METRICS)


def test_an_absolute_input_outside_the_root_keeps_its_absolute_name(run_folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("package") / "structure.pdb"
    elsewhere.write_text("END\n")
    write_table(MAP, pd.DataFrame({"a": [1]}), Provenance("mapping", {}, [elsewhere]))
    graph = lineage(MAP)
    assert graph.nodes[str(elsewhere)].kind is NodeKind.LEAF
    assert verify(graph).ok


def test_relative_inputs_resolve_against_the_root_not_the_current_directory(
    run_folder, tmp_path_factory, monkeypatch
):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    graph = lineage(run_folder / METRICS, root=run_folder)
    assert list(graph.nodes)[1:] == [CG, MAP, SHEET, TRAJ_0, TRAJ_1]
    assert verify(graph).ok
    unrooted = lineage(run_folder / METRICS)
    assert [node.kind for node in unrooted.nodes.values()] == [NodeKind.ARTIFACT, NodeKind.MISSING]


def test_verify_hashes_each_file_once(run_folder, monkeypatch):
    hashed = []

    def counting(path):
        hashed.append(os.fspath(path))
        return sha256sum(path)

    monkeypatch.setattr(lineage_module, "sha256sum", counting)
    result = verify(lineage(METRICS))
    assert result.ok and result.files == 5
    assert sorted(hashed) == sorted(
        str(run_folder / name) for name in [CG, MAP, SHEET, TRAJ_0, TRAJ_1]
    )


def test_verify_names_a_tampered_input_with_both_digests(run_folder, capsys):
    recorded = sha256sum(TRAJ_0)
    _flip_a_byte_of_coordinates(TRAJ_0)
    found = sha256sum(TRAJ_0)
    assert found != recorded

    (finding,) = verify(lineage(METRICS)).findings
    assert (finding.path, finding.problem) == (TRAJ_0, "differs")
    assert (finding.recorded, finding.found) == (recorded, found)
    assert finding.recorded_by == (CG, MAP)

    status, out, err = _cgpipe(["verify", METRICS], capsys)
    assert status == cli.EXIT_VERIFY_FAILED == 1 and out == ""
    first, summary = err.splitlines()
    assert first == (
        f"cgpipe verify: {TRAJ_0} differs from its record: recorded sha256 {recorded}, "
        f"found {found} (recorded by {CG} and 1 more)"
    )
    assert summary == (
        f"cgpipe verify: {METRICS}: 1 of the 5 files of its lineage differ from their "
        "records or are missing"
    )


def test_verify_names_a_damaged_input_whose_record_cannot_be_read(run_folder):
    recorded = sha256sum(TRAJ_1)
    with open(TRAJ_1, "r+b") as handle:
        handle.truncate(100)
    graph = lineage(METRICS)
    assert graph.nodes[TRAJ_1].kind is NodeKind.LEAF
    assert f"{TRAJ_1}  sha256 {recorded}  (leaf: " in _text(graph)
    (finding,) = verify(graph).findings
    assert (finding.path, finding.problem, finding.recorded) == (TRAJ_1, "differs", recorded)


def test_verify_names_a_missing_input(run_folder, capsys):
    recorded = sha256sum(TRAJ_1)
    os.remove(TRAJ_1)
    graph = lineage(METRICS)
    assert graph.nodes[TRAJ_1].kind is NodeKind.MISSING
    assert f"└── {TRAJ_1}  sha256 {recorded}  (missing)" in _text(graph)
    (finding,) = verify(graph).findings
    assert (finding.path, finding.problem, finding.found) == (TRAJ_1, "missing", None)

    status, _, err = _cgpipe(["verify", METRICS], capsys)
    assert status == 1
    named, summary = err.splitlines()
    assert named == (
        f"cgpipe verify: {TRAJ_1} is missing: recorded sha256 {recorded} (recorded by {CG})"
    )
    assert summary.endswith(f"(relative paths taken from {run_folder}: see --root)")


def test_verify_command_passes_on_untouched_files(run_folder, capsys):
    status, out, err = _cgpipe(["verify", METRICS], capsys)
    assert (status, err) == (0, "")
    assert out == f"{METRICS}: the 5 files of its lineage match their records\n"


def test_provenance_command_prints_the_tree_and_the_json(run_folder, capsys):
    status, out, _ = _cgpipe(["provenance", METRICS], capsys)
    assert status == 0 and out == _text(lineage(METRICS))

    status, out, _ = _cgpipe(["provenance", "--json", METRICS], capsys)
    document = json.loads(out)
    assert status == 0 and document["artifact"] == METRICS
    nodes = {node["path"]: node for node in document["nodes"]}
    assert nodes[SHEET]["kind"] == "leaf" and nodes[SHEET]["provenance"] is None
    assert nodes[TRAJ_0]["provenance"]["seed"] == 11
    assert {
        "artifact": MAP,
        "input": TRAJ_0,
        "recorded_as": TRAJ_0,
        "sha256": sha256sum(TRAJ_0),
    } in document["edges"]
    assert len(document["edges"]) == 6


@pytest.mark.parametrize("command", ["provenance", "verify"])
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"hello", "no provenance reader for files ending in '.txt'"),
        ("raw.h5", None, "artifact carries no provenance record"),
        ("broken.h5", b"\x89HDF\r\n\x1a\n garbage", "Unable to"),
        ("broken.parquet", b"not parquet", "Parquet"),
        ("absent.h5", "absent", "no such file"),
    ],
)
def test_a_path_that_is_no_artifact_is_one_line_naming_it(
    run_folder, capsys, command, name, content, message
):
    if content is None:
        with h5py.File(name, "w") as handle:
            handle["x"] = [1]
    elif isinstance(content, bytes):
        Path(name).write_bytes(content)
    status, out, err = _cgpipe([command, name], capsys)
    assert status == cli.EXIT_INPUT_ERROR and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"cgpipe {command}: error: {name}: ") and message in line


def test_a_folder_is_not_an_artifact(run_folder):
    with pytest.raises(InputError, match="results: not a file"):
        lineage("results")
