# Helpers shared by the rules: configuration and systems sheet (validated against
# workflow/schemas), input functions and the final targets. Logic lives in cgpipe.

import json

from cgpipe.config import load_config, load_systems, system_mappings

# Validate and fill in defaults; an unknown key, a wrong type or a value out of range
# stops the run here with a message naming the key.
config.update(load_config(dict(config)))
SYSTEMS = load_systems(config["systems"])
FOLDS = list(range(config["train"]["n_folds"]))
MODELS = config["train"]["models"]

if config["train"]["n_folds"] > config["reference"]["n_trajectories"]:
    raise ValueError(
        f"train.n_folds={config['train']['n_folds']} exceeds reference.n_trajectories="
        f"{config['reference']['n_trajectories']}: folds are split by trajectory"
    )


wildcard_constraints:
    system="|".join(SYSTEMS.index),
    mapping="[A-Za-z0-9_-]+",
    model="|".join(MODELS),
    fold=r"\d+",
    i=r"\d+",


# Keys that only decide which jobs exist. They are kept from the jobs' parameters, so
# that adding a trajectory or a model does not rerun the jobs already done.
JOB_SELECTION_KEYS = {"reference": ("n_trajectories",), "train": ("models",)}


def config_json(*sections):
    """The config sections a rule needs (plus seed and temperature), as JSON text."""
    chosen = {key: config[key] for key in ("seed", "temperature", *sections)}
    for section, selection_keys in JOB_SELECTION_KEYS.items():
        if section in chosen:
            chosen[section] = {
                k: v for k, v in chosen[section].items() if k not in selection_keys
            }
    return json.dumps(chosen, sort_keys=True)


def get_structure(wildcards):
    return SYSTEMS.loc[wildcards.system, "structure"]


def get_reference_trajectories(wildcards):
    return expand(
        "results/reference/{system}/traj_{i}.h5",
        system=wildcards.system,
        i=range(config["reference"]["n_trajectories"]),
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
