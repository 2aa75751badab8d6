# Helpers shared by the rules: configuration and systems sheet (validated against
# workflow/schemas), input functions and the final targets. Logic lives in cgpipe:
# the path grammar in cgpipe.paths, what each job receives in cgpipe.config.job_config.

import json
from pathlib import Path

from cgpipe import paths
from cgpipe.config import (
    job_config,
    load_config,
    load_systems,
    system_config,
    system_mappings,
)

# Validate and fill in defaults; an unknown key, a wrong type or a value out of range
# stops the run here with a message naming the key.
config.update(load_config(dict(config)))
SYSTEMS = load_systems(config["systems"])
# Each system's configuration: the config with the systems sheet's overrides.
SYSTEM_CONFIG = {name: system_config(config, row) for name, row in SYSTEMS.iterrows()}
GENERATED = [name for name, row in SYSTEMS.iterrows() if row["source"] == "openmm"]
DOWNLOADED = [name for name, row in SYSTEMS.iterrows() if row["source"] != "openmm"]
FOLDS = list(range(config["train"]["n_folds"]))
MODELS = config["train"]["models"]

for _name, _cfg in SYSTEM_CONFIG.items():
    if config["train"]["n_folds"] > _cfg["reference"]["n_trajectories"]:
        raise ValueError(
            f"system {_name}: train.n_folds={config['train']['n_folds']} exceeds "
            f"reference.n_trajectories={_cfg['reference']['n_trajectories']}: folds are "
            "split by trajectory"
        )


def _one_of(names):
    # A regex that matches no name when the list is empty.
    return "|".join(names) if names else "(?!)"


wildcard_constraints:
    system=_one_of(list(SYSTEMS.index)),
    mapping="[A-Za-z0-9_-]+",
    model=_one_of(MODELS),
    fold=r"\d+",
    i=r"\d+",


def config_json(stage):
    """Input function: the configuration a job of ``stage`` receives, as JSON text."""

    def sections_of(wildcards):
        chosen = job_config(
            SYSTEM_CONFIG[wildcards.system],
            stage,
            mapping=wildcards.get("mapping"),
            model=wildcards.get("model"),
        )
        return json.dumps(chosen, sort_keys=True)

    return sections_of


def get_structure_source(wildcards):
    """--structure or --sequence (with its secondary structure) of a generated system."""
    row = SYSTEMS.loc[wildcards.system]
    if isinstance(row.get("sequence"), str):
        return (
            f"--sequence {row['sequence']} "
            f"--secondary-structure {row['secondary_structure']}"
        )
    return f"--structure '{row['structure']}'"


def get_structure_file(wildcards):
    """The structure file of a generated system, where it is a file of the project's."""
    structure = SYSTEMS.loc[wildcards.system].get("structure")
    if isinstance(structure, str) and Path(structure).is_file():
        return [structure]
    return []


def get_source(wildcards):
    return SYSTEMS.loc[wildcards.system, "source"]


def get_downloads(wildcards):
    """The files a downloaded system's trajectory is read from, under resources/download/."""
    from cgpipe.reference.download import mdcath_file, mdshare_files

    row = SYSTEMS.loc[wildcards.system]
    if row["source"] == "mdshare":
        n = SYSTEM_CONFIG[wildcards.system]["reference"]["n_trajectories"]
        topology, *trajectories = mdshare_files(row["dataset"], n)
        names = [topology, trajectories[int(wildcards.i)]]
    else:
        names = [mdcath_file(row["dataset"])]
    return [
        paths.fill(paths.DOWNLOAD, system=wildcards.system, filename=name)
        for name in names
    ]


def get_reference_trajectories(wildcards):
    return expand(
        paths.REFERENCE,
        system=wildcards.system,
        i=range(SYSTEM_CONFIG[wildcards.system]["reference"]["n_trajectories"]),
    )


def get_evaluate_inputs(wildcards):
    """Per-fold artifacts of one model."""
    folds = {
        "model": paths.MODEL,
        "traj": paths.SIMULATION,
        "health": paths.HEALTH,
        "backmap": paths.BACKMAP_TABLE,
    }
    inputs = {
        name: expand(pattern, fold=FOLDS, **wildcards)
        for name, pattern in folds.items()
    }
    inputs["cg"] = paths.fill(paths.CG, **wildcards)
    return inputs


def get_evaluate_fold_args(wildcards):
    """--train-dir/--simulate-dir/--backmap-dir of every fold, in fold order."""
    args = []
    for fold in FOLDS:
        args += [
            f"--train-dir {paths.fill(paths.TRAIN_DIR, fold=fold, **wildcards)}",
            f"--simulate-dir {paths.fill(paths.SIMULATE_DIR, fold=fold, **wildcards)}",
            f"--backmap-dir {paths.fill(paths.BACKMAP_DIR, fold=fold, **wildcards)}",
        ]
    return " ".join(args)


def _evaluated(template):
    return [
        paths.fill(template, system=system, mapping=mapping, model=model)
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
        for model in MODELS
    ]


def get_all_metrics():
    return _evaluated(paths.METRICS)


def get_all_fes():
    return _evaluated(paths.FES)


def get_final_output():
    return [paths.REPORT, *get_all_metrics()]


def get_report_args():
    """--metrics/--fes options of every evaluated model, in the same order, and the
    report section's controls (those among the trained models)."""
    args = [
        f"--metrics {m} --fes {f}" for m, f in zip(get_all_metrics(), get_all_fes())
    ]
    for key in ("negative_control", "baseline"):
        model = config["report"][key]
        if model is not None and model in MODELS:
            args.append(f"--{key.replace('_', '-')} {model}")
    return " ".join(args)
