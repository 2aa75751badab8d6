"""A study of config/test.yaml through workflow/profiles/slurm on a real single-node Slurm
cluster (tests/integration/slurm_cluster.py), compared in content with the local run.

The study is the shared run's cut to what tells executors apart: ala2 with a fixed map
from a file and a map fitted per fold, and CGSchNet; every rule of the workflow runs in
it, as 22 Slurm jobs. The whole test config (95 jobs) took 1.9 times the local run's
wall time on Slurm (every job starts Snakemake and polls sacct), a third of the suite.

Every job is an sbatch job, scheduled by slurmctld, launched by slurmd and polled through
sacct (slurmdbd on MariaDB); the GPU rules' ``gpu=1`` requests are scheduled against
the node's declared GPUs. The jobs use one thread each, as the local run's do
(``--max-threads 1``), so that the numbers can be compared bit for bit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from cgpipe import keys
from cgpipe.io import read_table
from cgpipe.io.checkpoint import read_checkpoint
from tests.integration.conftest import RUN_SECONDS, copy_workflow, run_snakemake
from tests.integration.slurm_cluster import PACKAGES, SlurmCluster, missing_programs

pytestmark = pytest.mark.integration

SLURM_MAPPINGS = ("residues", "kmeans")  # a fixed map (mapping, forces), a fitted one
SLURM_MODELS = ("cgschnet",)


def _skip_reason() -> str | None:
    missing = missing_programs()
    if missing:
        return (
            f"Slurm test: {', '.join(missing)} not installed (Debian: apt-get install "
            f"{PACKAGES}; `make cluster-packages` does it as root)"
        )
    if os.geteuid() != 0:
        return "Slurm test: slurmd launches jobs only when started as root"
    return None


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, workdir):
    """(folder, seconds, accounting): the test config run through the Slurm profile on the
    cluster, its wall time and sacct's table of its jobs."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    folder = copy_workflow(tmp_path_factory.mktemp("slurm-workflow"))
    sheet = (folder / "config/test_systems.tsv").read_text().splitlines()
    columns = sheet[0].split("\t")
    row = next(r for r in sheet if r.startswith("ala2\t")).split("\t")
    ala2 = dict(zip(columns, row, strict=True))
    ala2["mappings"] = ",".join(SLURM_MAPPINGS)
    (folder / "slurm_systems.tsv").write_text(
        "\n".join([sheet[0], "\t".join(ala2[c] for c in columns)]) + "\n"
    )
    (folder / "slurm_study.yaml").write_text(
        f"systems: slurm_systems.tsv\ntrain:\n  models: [{', '.join(SLURM_MODELS)}]\n"
    )
    with SlurmCluster(tmp_path_factory.mktemp("slurm-cluster")) as cluster:
        start = time.monotonic()
        result = run_snakemake(
            folder,
            "--workflow-profile",
            "workflow/profiles/slurm",
            "--max-threads",
            "1",
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--seconds-between-status-checks",
            "2",
            "--latency-wait",
            "5",
            "--configfile",
            "config/test.yaml",
            "slurm_study.yaml",
            env=cluster.environment(),
            timeout=3600,
        )
        seconds = time.monotonic() - start
        accounting = cluster.accounting()
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    return folder, seconds, accounting


def test_every_job_ran_as_a_slurm_job_with_its_gpu(slurm_run, capsys):
    _, seconds, accounting = slurm_run
    local = RUN_SECONDS.get("local", float("nan"))
    with capsys.disabled():  # the wall times belong in CI's log
        print(
            f"\nconfig/test.yaml: Slurm run {seconds:.0f} s ({len(accounting)} Slurm jobs), "
            f"local run {local:.0f} s, ratio {seconds / local:.2f}"
        )
    assert (accounting["State"] == "COMPLETED").all(), accounting[
        accounting["State"] != "COMPLETED"
    ]
    # A group job's name is the group's and its rules': fold_backmap_simulate_train.
    assert set(accounting["rule"]) == {
        "prepare_structure",
        "reference",
        "mapping",
        "mapping_fold",
        "compare_mappings",
        "forces",
        "forces_fold",
        "fold_backmap_simulate_train",
        "backmap_fit",
        "evaluate",
        "report",
    }
    # 2 maps x 1 model x 2 folds: one Slurm job per fold's chain.
    chains = len(SLURM_MAPPINGS) * len(SLURM_MODELS) * 2
    assert (accounting["rule"] == "fold_backmap_simulate_train").sum() == chains
    # One fitted backmapper per map and fold, each a job of its own.
    assert (accounting["rule"] == "backmap_fit").sum() == len(SLURM_MAPPINGS) * 2
    assert len(accounting) == 22
    gpu = accounting["AllocTRES"].str.contains("gres/gpu=1", regex=False)
    # The reference jobs, the fold chains and the backmapper fits asked for a GPU and were
    # given one.
    assert set(accounting[gpu]["rule"]) == {
        "reference",
        "fold_backmap_simulate_train",
        "backmap_fit",
    }


def test_slurm_artifacts_equal_the_local_run_in_content(slurm_run, workdir):
    """Every artifact of the Slurm study is in the local run with the same numbers, but
    the report, which summarises the study (here of fewer maps and models)."""
    folder, *_ = slurm_run
    remote = sorted(p.relative_to(folder) for p in (folder / "results").rglob("*") if p.is_file())
    report = [p for p in remote if p.parts[1] == "report"]
    assert report
    compared = 0
    for relative in sorted(set(remote) - set(report)):
        assert (workdir / relative).is_file(), f"{relative}: not in the local run"
        compared += _same_content(workdir / relative, folder / relative)
    assert compared > 30


def _same_content(a: Path, b: Path) -> bool:
    """Assert two artifacts hold the same numbers (their provenance differs: time, host,
    input paths); True where the content was compared, False for pictures and pages."""
    if a.suffix == ".h5":
        with h5py.File(a, "r") as left, h5py.File(b, "r") as right:
            _same_group(left, right, str(a))
        return True
    if a.suffix == ".parquet":
        pd.testing.assert_frame_equal(read_table(a), read_table(b), check_exact=True, obj=str(a))
        return True
    if a.suffix == ".pt":
        left, right = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
        assert left.keys() == right.keys(), a
        for name, tensor in left.items():
            assert tensor.equal(right[name]), f"{a}: {name}"
        return True
    if a.suffix == ".pdb":
        # OpenMM stamps the date it wrote a PDB (REMARK 1): two runs either side of
        # midnight differ there alone.
        lines = [
            [
                x
                for x in p.read_text().splitlines()
                if not x.startswith(("REMARK 999", "REMARK   1 CREATED WITH OPENMM"))
            ]
            for p in (a, b)
        ]
        assert lines[0] == lines[1], a
        return True
    return False


def _same_group(left: h5py.Group, right: h5py.Group, where: str) -> None:
    assert set(left) == set(right), where
    for name in left:
        if isinstance(left[name], h5py.Group):
            _same_group(left[name], right[name], f"{where}:{name}")
        else:
            assert _equal(left[name][()], right[name][()]), f"{where}:{name}"
    attributes = set(left.attrs) - {keys.PROVENANCE}
    assert attributes == set(right.attrs) - {keys.PROVENANCE}, where
    for name in attributes:
        assert _equal(left.attrs[name], right.attrs[name]), f"{where}@{name}"


def _equal(left, right) -> bool:
    left, right = np.asarray(left), np.asarray(right)
    return np.array_equal(left, right, equal_nan=left.dtype.kind in "fc")
