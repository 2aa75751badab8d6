# Helpers shared by the rules: configuration and systems sheet (validated against
# workflow/schemas), input functions and the final targets. Logic lives in cgpipe.

import json
from pathlib import Path

from cgpipe.config import load_config, load_systems, system_config, system_mappings

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


# Keys that only decide which jobs exist. They are kept from the jobs' parameters, so
# that adding a trajectory or a model does not rerun the jobs already done.
JOB_SELECTION_KEYS = {"reference": ("n_trajectories",), "train": ("models",)}


def config_json(*sections):
    """Input function: the config sections a rule needs (plus seed and temperature) for
    the job's system, as JSON text."""

    def sections_of(wildcards):
        resolved = SYSTEM_CONFIG[wildcards.system]
        chosen = {key: resolved[key] for key in ("seed", "temperature", *sections)}
        for section, selection_keys in JOB_SELECTION_KEYS.items():
            if section in chosen:
                chosen[section] = {
                    k: v for k, v in chosen[section].items() if k not in selection_keys
                }
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
    return [f"resources/download/{wildcards.system}/{name}" for name in names]


def get_download_args(wildcards):
    """--url, --known-hash and --size of one file: the publisher's hash where it gives one."""
    from cgpipe.reference.download import MDSHARE_CATALOGUE

    row = SYSTEMS.loc[wildcards.system]
    urls = SYSTEM_CONFIG[wildcards.system]["download"]
    if row["source"] == "mdshare":
        md5, size = MDSHARE_CATALOGUE[wildcards.filename]
        base = urls["mdshare_url"]
        checks = f" --known-hash md5:{md5} --size {size}"
    else:
        base, checks = urls["mdcath_url"], ""
    return f"--url {base.rstrip('/')}/{wildcards.filename}{checks}"


def get_reference_trajectories(wildcards):
    return expand(
        "results/reference/{system}/traj_{i}.h5",
        system=wildcards.system,
        i=range(SYSTEM_CONFIG[wildcards.system]["reference"]["n_trajectories"]),
    )


def get_evaluate_inputs(wildcards):
    """Per-fold artifacts of one model."""
    folds = {
        "model": "results/train/{system}/{mapping}/{model}/fold{fold}/model.pt",
        "traj": "results/simulate/{system}/{mapping}/{model}/fold{fold}/traj.h5",
        "health": "results/simulate/{system}/{mapping}/{model}/fold{fold}/health.parquet",
        "backmap": "results/backmap/{system}/{mapping}/{model}/fold{fold}/backmap.parquet",
    }
    inputs = {
        name: expand(pattern, fold=FOLDS, **wildcards)
        for name, pattern in folds.items()
    }
    inputs["cg"] = "results/cg/{system}/{mapping}.h5".format(**wildcards)
    return inputs


def get_evaluate_fold_args(wildcards):
    """--train-dir/--simulate-dir/--backmap-dir of every fold, in fold order."""
    args = []
    for fold in FOLDS:
        tail = f"{wildcards.system}/{wildcards.mapping}/{wildcards.model}/fold{fold}"
        args += [
            f"--train-dir results/train/{tail}",
            f"--simulate-dir results/simulate/{tail}",
            f"--backmap-dir results/backmap/{tail}",
        ]
    return " ".join(args)


def _evaluated(name):
    return [
        f"results/evaluate/{system}/{mapping}/{model}/{name}"
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
        for model in MODELS
    ]


def get_all_metrics():
    return _evaluated("metrics.parquet")


def get_all_fes():
    return _evaluated("fes.png")


def get_final_output():
    return ["results/report/index.html", *get_all_metrics()]


def get_report_args():
    """--metrics/--fes options of every evaluated model, in the same order."""
    return " ".join(
        f"--metrics {m} --fes {f}" for m, f in zip(get_all_metrics(), get_all_fes())
    )
