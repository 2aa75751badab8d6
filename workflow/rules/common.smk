# Helpers shared by the rules: configuration and systems sheet (validated against
# workflow/schemas), input functions and the final targets. Logic lives in cgpipe:
# the path grammar in cgpipe.paths, what each job receives in cgpipe.config.job_config.

import json
import os
from pathlib import Path

from cgpipe import paths
from cgpipe.config import (
    job_config,
    load_config,
    load_systems,
    mapping_fitted,
    model_samples,
    system_config,
    system_mappings,
)

# The checkout that the jobs' conda environments (envs/*.yaml, with
# --software-deployment-method conda) install cgpipe from: pip expands ${CGPIPE_SOURCE} in
# their pip section. A path relative to envs/ would not do: Snakemake hands conda a copy of
# the env file under .snakemake/conda.
os.environ.setdefault("CGPIPE_SOURCE", workflow.basedir)

# Validate and fill in defaults; an unknown key, a wrong type or a value out of range
# stops the run here with a message naming the key.
config.update(load_config(dict(config)))
SYSTEMS = load_systems(config["systems"])
# Each system's configuration: the config with the systems sheet's overrides.
SYSTEM_CONFIG = {name: system_config(config, row) for name, row in SYSTEMS.iterrows()}
GENERATED = [name for name, row in SYSTEMS.iterrows() if row["source"] == "openmm"]
DOWNLOADED = [name for name, row in SYSTEMS.iterrows() if row["source"] != "openmm"]
FOLDS = list(range(config["train"]["n_folds"]))
# Each system's models: train.models, or the systems sheet's `models` column.
SYSTEM_MODELS = {name: cfg["train"]["models"] for name, cfg in SYSTEM_CONFIG.items()}
MODELS = list(dict.fromkeys(m for models in SYSTEM_MODELS.values() for m in models))
# The models that also draw i.i.d. configurations (a sample job per fold).
SAMPLES_IID = [model for model in MODELS if "iid" in model_samples(model)]


def backmapped(system, model):
    """Whether ``model``'s CG trajectories of ``system`` are backmapped (backmap.models;
    null: every model; a model named there that a system does not train is no job)."""
    chosen = SYSTEM_CONFIG[system]["backmap"]["models"]
    return chosen is None or model in chosen


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
    backmapper=_one_of(config["backmap"]["methods"]),
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
            backmapper=wildcards.get("backmapper"),
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


def get_structure(wildcards):
    """The prepared structure of a system the reference stage built (none for downloads)."""
    if wildcards.system in GENERATED:
        return [paths.fill(paths.STRUCTURE, system=wildcards.system)]
    return []


def structure_option(wildcards, input):
    """--structure of a job given the prepared structure, else nothing."""
    return options("structure", input.structure)


def get_reference_trajectories(wildcards):
    return expand(
        paths.REFERENCE,
        system=wildcards.system,
        i=range(SYSTEM_CONFIG[wildcards.system]["reference"]["n_trajectories"]),
    )


def _fitted(system, mapping):
    """Whether a mapping of a system is fitted per fold (its artifacts exist per fold)."""
    return mapping_fitted(SYSTEM_CONFIG[system], mapping)


def get_user_map_file(wildcards):
    """A user's map file, where the mapping is one (an input of its mapping job)."""
    files = SYSTEM_CONFIG[wildcards.system]["mapping"]["files"]
    return [files[wildcards.mapping]] if wildcards.mapping in files else []


def _per_fold(system, mapping, fold, fixed, fitted):
    template = fitted if _fitted(system, mapping) else fixed
    return paths.fill(template, system=system, mapping=mapping, fold=fold)


def get_mapping(wildcards):
    """The map a fold's jobs use: the fold's own for a map fitted per fold."""
    return _per_fold(
        wildcards.system,
        wildcards.mapping,
        wildcards.fold,
        paths.MAPPING,
        paths.MAPPING_FOLD,
    )


def get_cg(wildcards):
    """The CG data a fold's jobs use: the fold's own for a map fitted per fold."""
    return _per_fold(
        wildcards.system, wildcards.mapping, wildcards.fold, paths.CG, paths.CG_FOLD
    )


def get_fold_maps(wildcards):
    """Every fold's map, in fold order (one file for a fixed map, repeated)."""
    return [
        _per_fold(
            wildcards.system, wildcards.mapping, fold, paths.MAPPING, paths.MAPPING_FOLD
        )
        for fold in FOLDS
    ]


def get_evaluate_cgs(wildcards):
    """The CG reference of the evaluation: one file, or one per fold for a fitted map."""
    if _fitted(wildcards.system, wildcards.mapping):
        return expand(paths.CG_FOLD, fold=FOLDS, **wildcards)
    return [paths.fill(paths.CG, **wildcards)]


def get_evaluate_inputs(wildcards):
    """Per-fold artifacts of one model."""
    folds = {
        "model": paths.MODEL,
        "traj": paths.SIMULATION,
        "health": paths.HEALTH,
    }
    if wildcards.model in SAMPLES_IID:
        folds["samples"] = paths.SAMPLES
    inputs = {
        name: expand(pattern, fold=FOLDS, **wildcards)
        for name, pattern in folds.items()
    }
    if backmapped(wildcards.system, wildcards.model):
        inputs["backmap"] = expand(
            paths.BACKMAP_TABLE,
            fold=FOLDS,
            backmapper=config["backmap"]["methods"],
            **wildcards,
        )
    inputs["cg"] = get_evaluate_cgs(wildcards)
    return inputs


def options(name, files):
    """``--name file`` for each file, quoted."""
    return " ".join(f"--{name} '{f}'" for f in files)


BACKMAP_FOLD_DIR = str(Path(paths.BACKMAP_DIR).parent)  # a fold's backmappers' folders


def get_evaluate_fold_args(wildcards):
    """--train-dir/--simulate-dir/--backmap-dir (and --sample-dir of a model that samples
    i.i.d.) of every fold, in fold order."""
    args = []
    for fold in FOLDS:
        args += [
            f"--train-dir {paths.fill(paths.TRAIN_DIR, fold=fold, **wildcards)}",
            f"--simulate-dir {paths.fill(paths.SIMULATE_DIR, fold=fold, **wildcards)}",
        ]
        if backmapped(wildcards.system, wildcards.model):
            args.append(
                f"--backmap-dir {paths.fill(BACKMAP_FOLD_DIR, fold=fold, **wildcards)}"
            )
        if wildcards.model in SAMPLES_IID:
            args.append(
                f"--sample-dir {paths.fill(paths.SAMPLE_DIR, fold=fold, **wildcards)}"
            )
    return " ".join(args)


def _evaluated(template):
    return [
        paths.fill(template, system=system, mapping=mapping, model=model)
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
        for model in SYSTEM_MODELS[system]
    ]


def get_all_metrics():
    return _evaluated(paths.METRICS)


def get_all_fes():
    return _evaluated(paths.FES)


def get_all_mapping_scores():
    return [
        paths.fill(paths.MAPPING_SCORES, system=system, mapping=mapping)
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
    ]


def get_all_fit_tables():
    """The fit tables (elbow curves, losses) of every map fitted per fold."""
    return [
        paths.fill(paths.MAPPING_FIT, system=system, mapping=mapping, fold=fold)
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
        if _fitted(system, mapping)
        for fold in FOLDS
    ]


def get_all_backmap_scores():
    """The held-out scores of every backmapper fitted for every fold of every map."""
    return [
        paths.fill(
            paths.BACKMAP_HELDOUT,
            system=system,
            mapping=mapping,
            fold=fold,
            backmapper=backmapper,
        )
        for system, row in SYSTEMS.iterrows()
        for mapping in system_mappings(row)
        for fold in FOLDS
        for backmapper in config["backmap"]["methods"]
    ]


def get_final_output():
    return [paths.REPORT, *get_all_metrics(), *get_all_mapping_scores()]


def get_report_args():
    """--metrics/--fes options of every evaluated model, in the same order, and the
    report section's controls (those among the trained models)."""
    args = [
        f"--metrics {m} --fes {f}" for m, f in zip(get_all_metrics(), get_all_fes())
    ]
    args.append(options("mapping-scores", get_all_mapping_scores()))
    args.append(options("fit", get_all_fit_tables()))
    args.append(options("backmap-scores", get_all_backmap_scores()))
    for key in ("negative_control", "baseline"):
        model = config["report"][key]
        if model is not None and model in MODELS:
            args.append(f"--{key.replace('_', '-')} {model}")
    return " ".join(args)
