"""The integration tests' shared run: a copy of the workflow run once on
config/test.yaml, for every module that checks artifacts, reruns, lineage or compares
another executor's run with it."""

from __future__ import annotations

import re
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
    workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 1800
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


Job = tuple[str, tuple[tuple[str, str], ...]]


def job(rule: str, **wildcards: object) -> Job:
    """A job as :func:`planned_jobs` gives it: its rule and sorted wildcards."""
    return rule, tuple(sorted((k, str(v)) for k, v in wildcards.items()))


def planned_jobs(workdir: Path, *configfiles: str) -> set[Job]:
    """Rule and wildcards of every job a dry run would run with ``configfiles`` on top of
    config/test.yaml."""
    result = run_snakemake(workdir, "-n", "--configfile", "config/test.yaml", *configfiles)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            found = re.search(r"^\s+wildcards: (.*)$", block, flags=re.MULTILINE)
            pairs = [item.split("=", 1) for item in found.group(1).split(", ")] if found else []
            jobs.append(job(rule.group(1), **dict(pairs)))
    assert len(jobs) == len(set(jobs)), "a job is planned twice"
    return set(jobs)
