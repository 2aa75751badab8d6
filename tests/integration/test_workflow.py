"""Runs the whole workflow on config/test.yaml with Snakemake and checks its artifacts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from cgpipe import keys
from cgpipe.io import read_provenance, read_table
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--configfile", "config/test.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of the workflow in a fresh folder, run once to completion."""
    folder = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", folder)
    shutil.copytree(REPO / "workflow", folder / "workflow", symlinks=False)
    shutil.copytree(REPO / "config", folder / "config")
    shutil.copytree(REPO / "envs", folder / "envs")
    result = _snakemake(folder)
    assert result.returncode == 0, result.stderr[-5000:]
    return folder


def test_every_artifact_exists_and_opens(workdir):
    for i in range(2):
        trajectory = md.load(str(workdir / f"results/reference/ala2/traj_{i}.h5"))
        assert trajectory.n_atoms == 22 and trajectory.n_frames == 100
    cg = md.load(str(workdir / "results/cg/ala2/backbone.h5"))
    assert cg.n_atoms == 5 and cg.n_frames == 200
    for fold in (0, 1):
        simulation = md.load(
            str(workdir / f"results/simulate/ala2/backbone/cgschnet/fold{fold}/traj.h5")
        )
        assert simulation.n_atoms == 5 and simulation.n_frames > 0
        backmapped = md.load(
            str(workdir / f"results/backmap/ala2/backbone/cgschnet/fold{fold}/traj.h5")
        )
        assert backmapped.n_atoms == 22
        health = read_table(
            workdir / f"results/simulate/ala2/backbone/cgschnet/fold{fold}/health.parquet"
        )
        assert len(health) == 4
    page = (workdir / "results/report/index.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # one FES figure per model
    assert "ala2 · backbone · prior" in page


def test_metric_table_has_every_metric_for_every_fold(workdir):
    metrics = read_table(workdir / "results/evaluate/ala2/backbone/cgschnet/metrics.parquet")
    assert list(metrics.columns) == list(keys.METRIC_COLUMNS)
    for fold in ("fold0", "fold1"):
        names = set(metrics[metrics[keys.FOLD] == fold][keys.METRIC])
        assert {
            keys.JS_PHI_PSI,
            keys.KL_PHI_PSI,
            keys.FORCE_RMSE_HELDOUT,
            keys.STABLE_FRACTION,
        } <= names
    assert keys.JS_PHI_PSI_REFERENCE_HALVES in set(metrics[keys.METRIC])
    assert np.isfinite(metrics[keys.VALUE]).all()
    js = metrics[metrics[keys.METRIC] == keys.JS_PHI_PSI][keys.VALUE]
    assert ((js >= 0) & (js <= np.log(2))).all()


def test_every_artifact_records_its_provenance(workdir):
    artifacts = [
        "results/reference/ala2/traj_0.h5",
        "results/mapping/ala2/backbone.parquet",
        "results/cg/ala2/backbone.h5",
        "results/train/ala2/backbone/cgschnet/fold0/model.pt",
        "results/train/ala2/backbone/cgschnet/fold0/losses.parquet",
        "results/simulate/ala2/backbone/cgschnet/fold1/traj.h5",
        "results/backmap/ala2/backbone/cgschnet/fold1/traj.h5",
        "results/evaluate/ala2/backbone/cgschnet/metrics.parquet",
        "results/evaluate/ala2/backbone/cgschnet/fes.png",
        "results/report/index.html",
    ]
    for artifact in artifacts:
        record = read_provenance(workdir / artifact)
        assert record["cgpipe_version"] and "torch" in record["versions"], artifact
    cg_record = read_provenance(workdir / "results/cg/ala2/backbone.h5")
    assert set(cg_record["inputs"]) == {
        "results/mapping/ala2/backbone.parquet",
        "results/reference/ala2/traj_0.h5",
        "results/reference/ala2/traj_1.h5",
    }


def test_a_second_run_has_nothing_to_do(workdir):
    result = _snakemake(workdir, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_bad_config_value_stops_the_run_naming_the_key(workdir):
    result = _snakemake(workdir, "-n", "--config", "temperature=-5")
    assert result.returncode != 0
    assert (
        "temperature: -5 is less than or equal to the minimum of 0" in result.stdout + result.stderr
    )


def test_changing_the_set_of_models_reruns_only_the_report(workdir):
    # train.models only chooses which jobs exist: the cgschnet jobs stay as they are.
    result = _snakemake(workdir, "-n", "--config", "train={'models': ['cgschnet']}")
    assert result.returncode == 0
    planned = re.findall(r"^(?:local)?rule (\w+):", result.stdout, flags=re.MULTILINE)
    assert set(planned) <= {"report", "all"}, planned
    # ... while a change of science does rerun the jobs that read it.
    (workdir / "more_epochs.yaml").write_text("train:\n  epochs: 3\n")
    result = _snakemake(workdir, "-n", "--configfile", "config/test.yaml", "more_epochs.yaml")
    planned = re.findall(r"^(?:local)?rule (\w+):", result.stdout, flags=re.MULTILINE)
    assert {"train", "simulate", "evaluate"} <= set(planned)
    assert "reference" not in planned
