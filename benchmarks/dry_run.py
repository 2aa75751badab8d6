"""Dry-run time of the workflow against the number of jobs, beside Snakemake's own floor.

Two cases, each timed as a whole process (``snakemake -n --cores 1``, output discarded)
in a fresh copy of the workflow, ``--repeats`` times after one warm-up, the workflow and
its floor in turn:

- ``dry_run``: nothing done yet, with synthetic systems sheets of N generated systems
  (a sequence each, the ``calpha`` map) on top of the default config, N chosen so that the
  dry run plans about 100, 1 000 and 10 000 jobs (``--jobs``);
- ``noop``: the default config (config/config.yaml and its systems sheet) with every job
  done, where Snakemake checks each job's metadata (params, code, input set) and says
  "Nothing to be done".

The floor is a plain Snakefile of the same jobs: the same rules, path grammar, wildcards,
inputs, outputs and logs, and the same workflow profile, but shell commands that only touch
their outputs and no input functions, params, config or validation: what Snakemake itself
costs for that DAG. Its completed state, like the workflow's, is made honestly: the dry
run's outputs are created empty, then ``snakemake --touch --forceall`` runs every job in
touch mode, which records the same metadata a real run records, and a dry run must then
say that nothing is to be done.

Run: ``python benchmarks/dry_run.py`` (or ``make benchmark``; about 10 minutes on 2 cores);
the table goes to ``benchmarks/dry_run.tsv`` and stdout. Per command: wall seconds and cpu
seconds (user + system of the process), each as the median and the min-max range, and the
peak memory; the ratios are workflow / floor, run by run (median and range). On a shared
machine the wall figures swing with the load; the cpu figures much less.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from cgpipe import paths
from cgpipe.config import load_config, load_systems, system_mappings

REPO = Path(__file__).resolve().parent.parent
OUTPUT = Path(__file__).with_suffix(".tsv")
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "1"]
# The synthetic systems: built from a sequence, with one fixed map.
SEQUENCE, MAPPING = "AAAAA", "calpha"

FLOOR = """\
# Snakemake's floor: the workflow's jobs (rules, paths, wildcards, inputs, outputs, logs)
# with shell commands that only touch their outputs, and nothing else.
SYSTEMS = open("systems.txt").read().split()
MAPPINGS = ["{mapping}"]
MODELS = {models}
FOLDS = {folds}
TRAJECTORIES = {trajectories}

wildcard_constraints:
    system="[A-Za-z0-9_-]+",
    mapping="[A-Za-z0-9_-]+",
    model="|".join(MODELS),
    fold=r"\\d+",
    i=r"\\d+",

rule all:
    input:
        "{REPORT}",
        expand("{METRICS}", system=SYSTEMS, mapping=MAPPINGS, model=MODELS),
        expand("{MAPPING_SCORES}", system=SYSTEMS, mapping=MAPPINGS),

rule prepare_structure:
    output: "{STRUCTURE}"
    log: "{STRUCTURE_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule reference:
    input: "{STRUCTURE}"
    output: "{REFERENCE}"
    log: "{REFERENCE_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule mapping:
    input: expand("{REFERENCE}", i=0, allow_missing=True)
    output: "{MAPPING_FILE}"
    log: "{MAPPING_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule compare_mappings:
    input:
        references=expand("{REFERENCE}", i=TRAJECTORIES, allow_missing=True),
        maps="{MAPPING_FILE}",
    output: "{MAPPING_SCORES}"
    log: "{COMPARE_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule forces:
    input:
        mapping="{MAPPING_FILE}",
        references=expand("{REFERENCE}", i=TRAJECTORIES, allow_missing=True),
    output: "{CG}"
    log: "{FORCES_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule train:
    input: cg="{CG}", mapping="{MAPPING_FILE}"
    output: model="{MODEL}", losses="{LOSSES}"
    log: "{TRAIN_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule simulate:
    input: model="{MODEL}", cg="{CG}", mapping="{MAPPING_FILE}"
    output: traj="{SIMULATION}", health="{HEALTH}"
    log: "{SIMULATE_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule backmap:
    input:
        simulation="{SIMULATION}",
        mapping="{MAPPING_FILE}",
        references=expand("{REFERENCE}", i=TRAJECTORIES, allow_missing=True),
    output: traj="{BACKMAPPED}", table="{BACKMAP_TABLE}"
    log: "{BACKMAP_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule evaluate:
    input:
        model=expand("{MODEL}", fold=FOLDS, allow_missing=True),
        traj=expand("{SIMULATION}", fold=FOLDS, allow_missing=True),
        health=expand("{HEALTH}", fold=FOLDS, allow_missing=True),
        backmap=expand("{BACKMAP_TABLE}", fold=FOLDS, allow_missing=True),
        cg="{CG}",
    output: metrics="{METRICS}", fes="{FES}"
    log: "{EVALUATE_LOG}"
    shell: "touch {{output}} 2> {{log}}"

rule report:
    input:
        expand("{METRICS}", system=SYSTEMS, mapping=MAPPINGS, model=MODELS),
        expand("{FES}", system=SYSTEMS, mapping=MAPPINGS, model=MODELS),
        expand("{MAPPING_SCORES}", system=SYSTEMS, mapping=MAPPINGS),
    output: "{REPORT}"
    log: "{REPORT_LOG}"
    shell: "touch {{output}} 2> {{log}}"
"""


def floor_snakefile(config: dict, mapping: str) -> str:
    """The floor's Snakefile for the config's folds, models and trajectories, and one fixed
    map of every system."""
    return FLOOR.format(
        mapping=mapping,
        models=list(config["train"]["models"]),
        folds=list(range(config["train"]["n_folds"])),
        trajectories=list(range(config["reference"]["n_trajectories"])),
        STRUCTURE=paths.STRUCTURE,
        REFERENCE=paths.REFERENCE,
        MAPPING_FILE=paths.MAPPING,
        MAPPING_SCORES=paths.MAPPING_SCORES,
        CG=paths.CG,
        MODEL=paths.MODEL,
        LOSSES=paths.LOSSES,
        SIMULATION=paths.SIMULATION,
        HEALTH=paths.HEALTH,
        BACKMAPPED=paths.BACKMAPPED,
        BACKMAP_TABLE=paths.BACKMAP_TABLE,
        METRICS=paths.METRICS,
        FES=paths.FES,
        REPORT=paths.REPORT,
        STRUCTURE_LOG=paths.log("reference", paths.STRUCTURE),
        REFERENCE_LOG=paths.log("reference", paths.REFERENCE),
        MAPPING_LOG=paths.log("mapping", paths.MAPPING),
        COMPARE_LOG=paths.log("compare", paths.MAPPING_SCORES),
        FORCES_LOG=paths.log("forces", paths.CG),
        TRAIN_LOG=paths.log("train", paths.TRAIN_DIR),
        SIMULATE_LOG=paths.log("simulate", paths.SIMULATE_DIR),
        BACKMAP_LOG=paths.log("backmap", paths.BACKMAP_DIR),
        EVALUATE_LOG=paths.log("evaluate", paths.EVALUATE_DIR),
        REPORT_LOG=paths.log("report", paths.REPORT),
    )


def workflow_copy(folder: Path) -> Path:
    """The workflow as a user has it (Snakefile, rules, profiles, config, envs)."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", folder)
    for name in ("workflow", "config", "envs"):
        shutil.copytree(REPO / name, folder / name)
    return folder


def floor_copy(folder: Path, config: dict, systems: list[str], mapping: str = MAPPING) -> Path:
    folder.mkdir(parents=True)
    (folder / "Snakefile").write_text(floor_snakefile(config, mapping))
    (folder / "systems.txt").write_text("\n".join(systems) + "\n")
    shutil.copytree(REPO / "workflow/profiles", folder / "workflow/profiles")
    return folder


def synthetic_sheet(folder: Path, n_systems: int) -> list[str]:
    """A systems sheet of ``n_systems`` generated systems and a config file naming it."""
    names = [f"p{k:05d}" for k in range(n_systems)]
    rows = ["system\tsequence\tsecondary_structure\tmappings"]
    rows += [f"{name}\t{SEQUENCE}\thelix\t{MAPPING}" for name in names]
    (folder / "config/synthetic_systems.tsv").write_text("\n".join(rows) + "\n")
    (folder / "config/synthetic.yaml").write_text("systems: config/synthetic_systems.tsv\n")
    return names


def _environment() -> dict[str, str]:
    # The repository's cgpipe, whether or not it is installed.
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*SNAKEMAKE, *args], cwd=folder, capture_output=True, text=True, env=_environment()
    )
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} in {folder}:\n{result.stderr[-3000:]}")
    return result


def planned(folder: Path, *args: str) -> tuple[int, list[str]]:
    """The number of jobs a dry run plans and their output files."""
    result = _run(folder, "-n", *args)
    total = re.search(r"^total\s+(\d+)$", result.stdout, flags=re.MULTILINE)
    outputs = re.findall(r"^\s+output: (.*)$", result.stdout, flags=re.MULTILINE)
    return int(total.group(1)) if total else 0, [f for line in outputs for f in line.split(", ")]


def complete(folder: Path, *args: str) -> int:
    """Make ``folder`` look run to completion; the number of jobs it holds."""
    n_jobs, outputs = planned(folder, *args)
    for output in outputs:
        Path(folder, output).parent.mkdir(parents=True, exist_ok=True)
        Path(folder, output).touch()
    _run(folder, "--touch", "--forceall", *args)
    result = _run(folder, "-n", *args)
    if "Nothing to be done" not in result.stdout + result.stderr:
        raise RuntimeError(f"{folder} is not complete after --touch:\n{result.stdout[-3000:]}")
    return n_jobs


def timed(folder: Path, *args: str) -> tuple[float, float, float]:
    """Wall seconds, cpu seconds and peak MiB of one dry run, as a whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [*SNAKEMAKE, "-n", *args],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"snakemake -n {' '.join(args)} in {folder} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compare(
    workflow: tuple[Path, list[str]], floor: tuple[Path, list[str]], repeats: int
) -> dict[str, object]:
    """The two dry runs in turn, one warm-up each, then ``repeats`` counted pairs."""
    runs: dict[str, list[tuple[float, float, float]]] = {"cgpipe": [], "floor": []}
    for repeat in range(repeats + 1):
        for name, (folder, args) in (("cgpipe", workflow), ("floor", floor)):
            figures = timed(folder, *args)
            if repeat:
                runs[name].append(figures)
    row: dict[str, object] = {}
    for name, figures in runs.items():
        for figure, column in ((0, "wall"), (1, "cpu")):
            values = [f[figure] for f in figures]
            row[f"{name}_{column}_s"] = round(statistics.median(values), 2)
            row[f"{name}_{column}_range"] = f"{min(values):.2f}-{max(values):.2f}"
        row[f"{name}_peak_mib"] = round(max(f[2] for f in figures))
    for figure, column in ((0, "wall"), (1, "cpu")):
        ratios = [a[figure] / b[figure] for a, b in zip(*runs.values(), strict=True)]
        row[f"{column}_ratio"] = round(statistics.median(ratios), 2)
        row[f"{column}_ratio_range"] = f"{min(ratios):.2f}-{max(ratios):.2f}"
    return row


def jobs_per_system(scratch: Path) -> tuple[int, int]:
    """(jobs of the whole run, jobs per system) of the synthetic sheets: from dry runs of
    one and two systems."""
    counts = []
    for n in (1, 2):
        folder = workflow_copy(scratch / f"count{n}")
        synthetic_sheet(folder, n)
        counts.append(planned(folder, "--configfile", "config/synthetic.yaml")[0])
    per_system = counts[1] - counts[0]
    return counts[0] - per_system, per_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=5, help="counted runs of each")
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op rerun")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    config = load_config(REPO / "config/config.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.no_noop:
            workflow = workflow_copy(scratch / "noop")
            n_jobs = complete(workflow)
            sheet = load_systems(workflow / config["systems"])
            (mapping,) = {m for _, row in sheet.iterrows() for m in system_mappings(row)}
            systems = list(sheet.index)
            floor = floor_copy(scratch / "noop_floor", config, systems, mapping)
            if complete(floor) != n_jobs:
                raise RuntimeError("the floor's jobs are not the workflow's")
            row = {"case": "noop", "config": "config/config.yaml", "systems": len(systems)}
            row["jobs"] = n_jobs
            rows.append(row | compare((workflow, []), (floor, []), args.repeats))
            print(rows[-1], flush=True)
        fixed, per_system = jobs_per_system(scratch)
        for target in args.jobs:
            n_systems = max(1, round((target - fixed) / per_system))
            workflow = workflow_copy(scratch / f"jobs{target}")
            systems = synthetic_sheet(workflow, n_systems)
            synthetic = ["--configfile", "config/synthetic.yaml"]
            n_jobs = planned(workflow, *synthetic)[0]
            floor = floor_copy(scratch / f"jobs{target}_floor", config, systems)
            if planned(floor)[0] != n_jobs:
                raise RuntimeError("the floor's jobs are not the workflow's")
            row = {"case": "dry_run", "config": "synthetic", "systems": n_systems}
            row["jobs"] = n_jobs
            rows.append(row | compare((workflow, synthetic), (floor, []), args.repeats))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.insert(len(table.columns), "repeats", args.repeats)
    table.to_csv(args.output, sep="\t", index=False)
    print(table.to_string(index=False))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
