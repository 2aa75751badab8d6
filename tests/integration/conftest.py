"""The integration tests' shared run: a copy of the workflow run once on
config/test.yaml, for every module that checks artifacts, reruns, lineage or compares
another executor's run with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# Wall time (s) of the shared local run, for comparisons with other executors' runs.
RUN_SECONDS: dict[str, float] = {}


def run_snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--configfile", "config/test.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def copy_workflow(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", folder)
    shutil.copytree(REPO / "workflow", folder / "workflow", symlinks=False)
    shutil.copytree(REPO / "config", folder / "config")
    shutil.copytree(REPO / "envs", folder / "envs")
    return folder


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A copy of the workflow in a fresh folder, run once to completion."""
    folder = copy_workflow(tmp_path_factory.mktemp("workflow"))
    start = time.monotonic()
    result = run_snakemake(folder)
    RUN_SECONDS["local"] = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-5000:]
    return folder
