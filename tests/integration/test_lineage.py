"""The lineage of the report of config/test.yaml reaches every reference trajectory, and
`cgpipe verify` passes on the run as written and names a reference trajectory changed
after it (in a copy of the run's files: the shared run is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from cgpipe import keys
from cgpipe.io import sha256sum
from cgpipe.io.lineage import NodeKind, lineage, verify

pytestmark = pytest.mark.integration

REPORT = "results/report/index.html"


def _cgpipe(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cgpipe", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _references(folder: Path) -> list[str]:
    found = sorted(folder.glob("results/reference/*/traj_*.h5"))
    assert found, "the run wrote no reference trajectory"
    return [str(path.relative_to(folder)) for path in found]


def test_the_report_lineage_reaches_every_reference_trajectory(workdir):
    graph = lineage(workdir / REPORT, root=workdir)
    for reference in _references(workdir):
        assert graph.nodes[reference].kind is NodeKind.ARTIFACT, reference
        assert graph.nodes[reference].provenance["stage"] == "reference"
    assert not [node.path for node in graph.nodes.values() if node.kind is NodeKind.MISSING]
    # Only files from outside the workflow are leaves: a user's map sheet, a package's PDB.
    leaves = [node.path for node in graph.nodes.values() if node.kind is NodeKind.LEAF]
    assert leaves and not [leaf for leaf in leaves if leaf.startswith("results/")], leaves

    printed = _cgpipe(workdir, "provenance", REPORT)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    for reference in _references(workdir):
        # Expanded once (its record follows), referred to wherever else it is reached.
        headings = [line for line in lines if f"── {reference}  sha256 " in line]
        assert sum(not line.endswith("  (above)") for line in headings) == 1, reference


def test_verify_passes_on_the_run_and_names_a_tampered_reference_trajectory(workdir, tmp_path):
    # Relative inputs outside results/ (a user's map sheet) come with the copy of config/.
    for folder in ("results", "config", "resources"):
        if (workdir / folder).exists():
            shutil.copytree(workdir / folder, tmp_path / folder)

    passed = _cgpipe(tmp_path, "verify", REPORT)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith(f"{REPORT}: the ") and passed.stderr == ""

    tampered = _references(tmp_path)[0]
    recorded = sha256sum(tmp_path / tampered)
    with h5py.File(tmp_path / tampered) as handle:
        offset = handle[keys.COORDINATES].id.get_chunk_info(0).byte_offset
    with open(tmp_path / tampered, "r+b") as handle:
        handle.seek(offset + 16)
        byte = handle.read(1)[0]
        handle.seek(offset + 16)
        handle.write(bytes([byte ^ 0x01]))
    found = sha256sum(tmp_path / tampered)

    failed = _cgpipe(tmp_path, "verify", REPORT)
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout == ""
    *named, summary = failed.stderr.splitlines()
    assert len(named) == 1, failed.stderr
    assert named[0].startswith(
        f"cgpipe verify: {tampered} differs from its record: "
        f"recorded sha256 {recorded}, found {found} (recorded by "
    )
    assert summary.startswith(f"cgpipe verify: {REPORT}: 1 of the ")
    assert summary.endswith(" files of its lineage differ from their records or are missing")
    (finding,) = verify(lineage(tmp_path / REPORT, root=tmp_path)).findings
    assert finding.path == tampered and finding.problem == "differs"
