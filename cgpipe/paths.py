"""The path grammar of ``../shared/DESIGN.md``, spelled once.

The Snakemake rules build their inputs and outputs from these templates and the
command line takes its file names from them, so a path is never written twice.
Templates use Snakemake's ``{wildcard}`` syntax; :func:`fill` fills them in Python.

Wildcards: ``system`` (a row of the systems sheet), ``mapping`` (a registered mapping
or a user's map), ``model`` (a registered model), ``fold`` (0 … n_folds - 1), ``backmapper`` (a
registered backmapper), ``i`` (a reference trajectory), ``filename`` (a downloaded file).

Units everywhere: nm, ps, kJ/mol, kJ/mol/nm, K, amu.
"""

from __future__ import annotations

import re
from pathlib import Path

from cgpipe.errors import InputError

# --- file names inside a stage's folder ---------------------------------------------------
MODEL_FILE = "model.pt"  # train: checkpoint
LOSSES_FILE = "losses.parquet"  # train: loss per epoch and split
TRAJECTORY_FILE = "traj.h5"  # simulate (CG) and backmap (all-atom) trajectories
HEALTH_FILE = "health.parquet"  # simulate: one row per replica
EXCHANGES_FILE = "exchanges.parquet"  # simulate, parallel tempering: one row per rung pair
BACKMAP_TABLE_FILE = "backmap.parquet"  # backmap: one row per backmapped structure
BACKMAPPER_FILE = "backmapper.pt"  # backmap fit: the fitted backmapper
BACKMAP_HELDOUT_FILE = "heldout.parquet"  # backmap fit: scores on held-out frames
BACKMAP_LOSSES_FILE = "losses.parquet"  # backmap fit: loss per epoch (methods with epochs)
METRICS_FILE = "metrics.parquet"  # evaluate: tidy metric rows
FES_FILE = "fes.png"  # evaluate: free-energy surfaces
RESOLVED_CONFIG_FILE = "config.yaml"  # every stage folder: the configuration the job ran with

# --- the grammar ----------------------------------------------------------------------------
DOWNLOAD = "resources/download/{system}/{filename}"
STRUCTURE = "results/reference/{system}/structure.pdb"
REFERENCE = "results/reference/{system}/traj_{i}.h5"
MAPPING = "results/mapping/{system}/{mapping}.parquet"
MAPPING_FOLD = "results/mapping/{system}/{mapping}/fold{fold}.parquet"  # fitted maps
MAPPING_FIT = "results/mapping/{system}/{mapping}/fold{fold}.fit.parquet"  # elbow, losses
MAPPING_SCORES = "results/mapping/{system}/{mapping}/scores.parquet"  # held-out comparison
CG = "results/cg/{system}/{mapping}.h5"
CG_FOLD = "results/cg/{system}/{mapping}/fold{fold}.h5"  # of a map fitted per fold
TRAIN_DIR = "results/train/{system}/{mapping}/{model}/fold{fold}"
SIMULATE_DIR = "results/simulate/{system}/{mapping}/{model}/fold{fold}"
SAMPLE_DIR = "results/sample/{system}/{mapping}/{model}/fold{fold}"  # i.i.d. samplers
BACKMAPPER_DIR = "results/backmap/{system}/{mapping}/fold{fold}/{backmapper}"  # fitted once
BACKMAP_DIR = "results/backmap/{system}/{mapping}/{model}/fold{fold}/{backmapper}"
EVALUATE_DIR = "results/evaluate/{system}/{mapping}/{model}"
REPORT = "results/report/index.html"

MODEL = f"{TRAIN_DIR}/{MODEL_FILE}"
LOSSES = f"{TRAIN_DIR}/{LOSSES_FILE}"
SIMULATION = f"{SIMULATE_DIR}/{TRAJECTORY_FILE}"
HEALTH = f"{SIMULATE_DIR}/{HEALTH_FILE}"
SAMPLES = f"{SAMPLE_DIR}/{TRAJECTORY_FILE}"
BACKMAPPER = f"{BACKMAPPER_DIR}/{BACKMAPPER_FILE}"
BACKMAP_HELDOUT = f"{BACKMAPPER_DIR}/{BACKMAP_HELDOUT_FILE}"
BACKMAPPED = f"{BACKMAP_DIR}/{TRAJECTORY_FILE}"
BACKMAP_TABLE = f"{BACKMAP_DIR}/{BACKMAP_TABLE_FILE}"
METRICS = f"{EVALUATE_DIR}/{METRICS_FILE}"
FES = f"{EVALUATE_DIR}/{FES_FILE}"


def log(stage: str, template: str) -> str:
    """The log file of a job: ``logs/<stage>/<the output's wildcards>.log``."""
    return f"logs/{stage}/{_tail(template)}.log"


def benchmark(stage: str, template: str) -> str:
    """The Snakemake benchmark file of a job: ``benchmarks/<stage>/<wildcards>.tsv``."""
    return f"benchmarks/{stage}/{_tail(template)}.tsv"


def _tail(template: str) -> str:
    # results/train/{system}/{mapping}/{model}/fold{fold} -> {system}/{mapping}/{model}/fold{fold}
    parts = Path(template).with_suffix("").parts
    return "/".join(parts[2:])


def parse(template: str, path: str | Path) -> dict[str, str]:
    """The wildcards of ``path`` read back with ``template`` (each matches no ``/``); a path
    the template does not describe is a ValueError."""
    pattern, last = "", 0
    for match in re.finditer(r"\{(\w+)\}", template):
        pattern += re.escape(template[last : match.start()]) + f"(?P<{match.group(1)}>[^/]+?)"
        last = match.end()
    pattern += re.escape(template[last:])
    found = re.fullmatch(pattern, Path(path).as_posix())
    if found is None:
        found = re.search("(?:^|/)" + pattern + "$", Path(path).as_posix())
    if found is None:
        raise ValueError(f"{path} is not a path of the form {template}")
    return found.groupdict()


def identify(path: str | Path, *templates: str) -> dict[str, str]:
    """The wildcards of ``path`` read with the first of ``templates`` that describes it:
    how a command learns the system, mapping, model and fold of its job from a file name.

    Raises
    ------
    InputError
        No template describes ``path``, or its ``fold`` is not a number.
    """
    for template in templates:
        try:
            found = parse(template, path)
        except ValueError:
            continue
        if not found.get("fold", "0").isdigit():
            raise InputError(f"{path}: fold{found['fold']} is not a fold (fold0, fold1, ...)")
        return found
    raise InputError(
        f"{path}: cannot tell the job's system and mapping from this path; expected "
        + " or ".join(templates)
    )


def fill(template: str, **wildcards: object) -> str:
    """A template with its wildcards filled in."""
    return template.format(**wildcards)


def resolved_config_path(output: str | Path) -> Path:
    """Where a stage writes the configuration it ran with, next to its output: inside an
    output folder, or beside an output file as ``<stem>.config.yaml``."""
    output = Path(output)
    if output.suffix == "":
        return output / RESOLVED_CONFIG_FILE
    return output.with_name(f"{output.stem}.{RESOLVED_CONFIG_FILE}")
