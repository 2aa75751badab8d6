"""Configuration: one loader and validator for the workflow and the command line.

The JSON schemas in ``cgpipe/schemas`` (also reachable as ``workflow/schemas``) are
the single source of truth for keys, types, bounds and defaults. Validation fills in
defaults and rejects unknown keys, naming the key at fault.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from cgpipe.datasets import MDCATH_REPLICAS, MDCATH_TEMPERATURES, MDSHARE_DATASETS
from cgpipe.errors import InputError
from cgpipe.forcefields import forcefield_problem

SCHEMA_DIR = Path(str(resources.files("cgpipe") / "schemas"))
CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"
SYSTEMS_SCHEMA = SCHEMA_DIR / "systems.schema.yaml"


class ConfigError(InputError):
    """A configuration or systems sheet that does not satisfy its schema."""


# The loader in C where PyYAML has it: the config schema is large, and the workflow reads
# it once per start-up.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _load_schema(path: Path) -> dict[str, Any]:
    """The parsed schema, read once per process: Snakemake asks for facts of the schema in
    every job's input functions, and parsing it each time made a dry run of a few dozen
    jobs take seconds. Shared between callers: read it, never change it."""
    with open(path) as handle:
        return yaml.load(handle, Loader=_SAFE_LOADER)


@functools.cache
def _validator(path: Path) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_load_schema(path))


def _fill_defaults(instance: dict[str, Any], schema: Mapping[str, Any]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(instance[key], sub)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def validate(instance: dict[str, Any], schema_path: Path, source: str) -> dict[str, Any]:
    """Return a validated copy of ``instance`` with defaults filled in."""
    schema = _load_schema(schema_path)
    instance = copy.deepcopy(instance)
    _fill_defaults(instance, schema)
    errors = sorted(
        _validator(schema_path).iter_errors(instance), key=lambda e: list(e.absolute_path)
    )
    if errors:
        lines = [f"  {_where(e)}: {e.message}" for e in errors]
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines))
    return instance


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Load and validate a configuration.

    Parameters
    ----------
    source
        A YAML file path, a JSON object as text (how the workflow passes a rule's
        sections), a mapping, or ``None`` for all defaults.
    """
    if source is None:
        raw: Any = {}
        name = "defaults"
    elif isinstance(source, Mapping):
        raw, name = dict(source), "configuration"
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        name = "configuration given as JSON"
        try:
            raw = json.loads(source)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{name}: not valid JSON ({error})") from None
    else:
        name = os.fspath(source)
        with open(source) as handle:
            try:
                raw = yaml.safe_load(handle) or {}
            except yaml.YAMLError as error:
                raise ConfigError(
                    f"{name}: not valid YAML ({' '.join(str(error).split())})"
                ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the configuration must be a mapping of keys to values")
    return check_config(validate(raw, CONFIG_SCHEMA, name), name)


def check_config(config: dict[str, Any], source: str) -> dict[str, Any]:
    """Checks across keys that a schema cannot express; returns ``config``."""
    reference = config["reference"]
    problem = forcefield_problem(reference["forcefield"], reference["solvent"])
    if problem is not None:
        raise ConfigError(f"{source}: reference.forcefield {reference['forcefield']} {problem}")
    return config


# Systems-sheet columns that override the config's value for that system.
REFERENCE_OVERRIDES = (
    "forcefield",
    "solvent",
    "timestep",
    "friction",
    "constraints",
    "n_trajectories",
    "start_temperature",
    "start_steps",
    "equilibration_steps",
    "n_steps",
    "save_every",
)
# Keys of the `mapping` section that are not mapping methods: users' map files and the
# comparison of a system's mappings.
MAPPING_SETTINGS = ("files", "compare")
# Sources whose data hold positions only.
POSITIONS_ONLY_SOURCES = ("mdshare",)


def needs_forces(config: Mapping[str, Any], model: str) -> bool:
    """Whether ``model`` learns from forces: its trainer's schema says ``x-needs-forces``
    and the model's does not say ``x-trains-nothing``. Facts of the schema, so that the
    check runs at start-up without importing the models."""
    schema = _load_schema(CONFIG_SCHEMA)["properties"]
    trainer = config["models"][model]["trainer"]
    model_schema = schema["models"]["properties"][model]
    trainer_schema = schema["trainers"]["properties"][trainer]
    return trainer_schema.get("x-needs-forces", False) and not model_schema.get(
        "x-trains-nothing", False
    )


def model_samples(model: str) -> tuple[str, ...]:
    """How ``model`` samples: ``dynamics`` (its force field is simulated), ``iid``
    (independent draws, e.g. by reverse diffusion), or both. Its schema section says so in
    ``x-samples`` (default: dynamics only), as its class does in ``samples``, so that the
    workflow learns it without importing the models."""
    section = _load_schema(CONFIG_SCHEMA)["properties"]["models"]["properties"][model]
    return tuple(section.get("x-samples", ["dynamics"]))


def _typed(row: dict[str, str], schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Cells are text in a TSV; numbers become numbers where the schema wants them."""
    typed: dict[str, Any] = {}
    for key, text in row.items():
        kind = schema["properties"].get(key, {}).get("type")
        try:
            if kind == "integer":
                typed[key] = int(text)
            elif kind == "number":
                typed[key] = float(text)
            else:
                typed[key] = text
        except ValueError:
            raise ConfigError(f"{where}: column {key!r} must be a {kind}, got {text!r}") from None
    return typed


def _check_source(row: dict[str, Any], where: str) -> None:
    from cgpipe.residues import parse_sequence
    from cgpipe.sources import resolve_structure

    source = row["source"]
    given = [key for key in ("structure", "sequence", "dataset") if key in row]
    if source == "openmm":
        if given not in (["structure"], ["sequence"]):
            raise ConfigError(
                f"{where}: source openmm needs exactly one of the columns structure and "
                f"sequence (and no dataset); got {given or 'none'}"
            )
        if "structure" in row:
            try:
                resolve_structure(row["structure"], f"{where}, column 'structure'")
            except (InputError, FileNotFoundError) as error:
                raise ConfigError(str(error)) from None
        if "sequence" in row:
            try:
                parse_sequence(row["sequence"], f"{where}, column 'sequence'")
            except ValueError as error:
                raise ConfigError(str(error)) from None
        return
    if given != ["dataset"]:
        raise ConfigError(
            f"{where}: source {source} needs the column dataset (and no structure or "
            f"sequence); got {given or 'none'}"
        )
    if source == "mdshare" and row["dataset"] not in MDSHARE_DATASETS:
        raise ConfigError(
            f"{where}: unknown mdshare dataset {row['dataset']!r}; "
            f"known: {sorted(MDSHARE_DATASETS)}"
        )
    if source == "mdcath" and row.get("temperature") not in MDCATH_TEMPERATURES:
        raise ConfigError(
            f"{where}: an mdcath system needs a temperature column, one of the dataset's "
            f"{list(MDCATH_TEMPERATURES)} K; got {row.get('temperature')}"
        )


def load_systems(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load and validate the systems sheet: one row per system, indexed by name."""
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except (OSError, pd.errors.ParserError) as error:
        raise ConfigError(f"{path}: cannot read the systems sheet ({error})") from error
    schema = _load_schema(SYSTEMS_SCHEMA)
    # The file's own line numbers of the rows, past comment and blank lines (as pandas
    # skips them), so that an error points at the line the user sees.
    with open(path) as handle:
        numbers = [n for n, line in enumerate(handle, 1) if line.split("#", 1)[0].strip()][1:]
    rows = []
    for number, row in zip(numbers, sheet.to_dict(orient="records"), strict=True):
        where = f"{path}, line {number}"
        row = _typed({k: v.strip() for k, v in row.items() if v.strip() != ""}, schema, where)
        row = validate(row, SYSTEMS_SCHEMA, where)
        _check_source(row, where)
        rows.append(row)
    if not rows:
        raise ConfigError(f"{path}: the systems sheet lists no system")
    table = pd.DataFrame(rows)
    duplicated = table["system"][table["system"].duplicated()]
    if not duplicated.empty:
        raise ConfigError(f"{path}: system {duplicated.iloc[0]!r} is listed twice")
    return table.set_index("system", drop=False)


def _given(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    return value is not None and not (isinstance(value, float) and value != value)


def system_config(config: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration of one system: the config with the sheet's overrides applied.

    A sheet read with several systems has NaN where a column is empty for a row; those
    cells keep the config's value. The result is validated again, so an override out of
    range names the system.
    """
    resolved = copy.deepcopy(dict(config))
    name = row["system"]
    reference = resolved.setdefault("reference", {})
    for key in REFERENCE_OVERRIDES:
        if _given(row, key):
            value = row[key]
            if key == "forcefield":
                value = [part.strip() for part in str(value).split(",")]
            elif isinstance(value, float) and key in (
                "n_trajectories",
                "start_steps",
                "equilibration_steps",
                "n_steps",
                "save_every",
            ):
                value = int(value)
            reference[key] = value
    if _given(row, "temperature"):
        resolved["temperature"] = float(row["temperature"])
    if _given(row, "models"):
        resolved.setdefault("train", {})["models"] = system_models(row)
    source = row.get("source", "openmm")
    if source == "mdshare":
        facts = MDSHARE_DATASETS[row["dataset"]]
        if _given(row, "temperature") and resolved["temperature"] != facts.temperature:
            raise ConfigError(
                f"system {name}: the mdshare {row['dataset']} data were simulated at "
                f"{facts.temperature} K, not {resolved['temperature']} K"
            )
        resolved["temperature"] = facts.temperature
        limit = facts.n_trajectories
    elif source == "mdcath":
        limit = MDCATH_REPLICAS
    else:
        limit = None
    if limit is not None and reference.get("n_trajectories", 0) > limit:
        raise ConfigError(
            f"system {name}: reference.n_trajectories={reference['n_trajectories']} but the "
            f"{source} dataset has {limit}: set the sheet's n_trajectories column"
        )
    where = f"configuration of system {name}"
    resolved = check_config(validate(resolved, CONFIG_SCHEMA, where), where)
    files = resolved["mapping"]["files"]
    known = sorted({*resolved["mapping"], *files} - set(MAPPING_SETTINGS))
    unknown = [m for m in system_mappings(row) if m not in known]
    if unknown:
        raise ConfigError(
            f"system {name}: mapping {unknown[0]!r} of the systems sheet has no section under "
            f"`mapping` in the config and no file under `mapping.files`; known: {known}"
        )
    clashes = sorted(set(files) & (set(resolved["mapping"]) - set(MAPPING_SETTINGS)))
    if clashes:
        raise ConfigError(
            f"mapping.files.{clashes[0]}: a user map may not take the name of the registered "
            f"mapping {clashes[0]!r}"
        )
    needing_forces = sorted(m for m in resolved["train"]["models"] if needs_forces(resolved, m))
    if source in POSITIONS_ONLY_SOURCES and needing_forces:
        raise ConfigError(
            f"system {name}: the {source} data hold positions only, but train.models "
            f"{needing_forces} learn from forces; use models that need none"
        )
    return resolved


def _mapping_schema(config: Mapping[str, Any], mapping: str) -> Mapping[str, Any]:
    """The schema of ``mapping``'s section ({} for a user's map file)."""
    if mapping in config["mapping"].get("files", {}):
        return {}
    return _load_schema(CONFIG_SCHEMA)["properties"]["mapping"]["properties"][mapping]


def mapping_fitted(config: Mapping[str, Any], mapping: str) -> bool:
    """Whether ``mapping`` is fitted per fold (its schema says ``x-fitted``; the method's
    class says the same in ``fitted``): its artifacts then exist once per fold."""
    return bool(_mapping_schema(config, mapping).get("x-fitted", False))


def system_mappings(row: Mapping[str, Any]) -> list[str]:
    """The mapping names of one systems-sheet row."""
    return [m.strip() for m in str(row["mappings"]).split(",") if m.strip()]


def system_models(row: Mapping[str, Any]) -> list[str]:
    """The model names of a systems-sheet row's ``models`` column (its override of
    ``train.models``; empty when the row has none)."""
    if not _given(row, "models"):
        return []
    return [m.strip() for m in str(row["models"]).split(",") if m.strip()]


# What each stage's jobs read of a system's configuration, besides `seed` and
# `temperature`: whole stage sections, and for method kinds only the chosen method's
# section. A job sees nothing else, so that editing one method's section reruns that
# method's jobs and nothing upstream or beside them. Keys that only decide which jobs
# exist (`reference.n_trajectories`, `train.models`) are left out for the same reason.
_STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "reference": ("reference",),
    "download": ("download",),
    "mapping": (),
    "compare": ("mapping.compare", "train.n_folds"),
    "forces": ("forces",),
    "train": ("train",),
    "simulate": ("simulate", "train.n_folds", "observables"),
    "sample": ("sample", "train.n_folds"),
    "backmap": ("backmap", "train.n_folds", "reference"),
    "evaluate": ("evaluate", "train.n_folds", "observables", "backmap.methods", "backmap.models"),
}
_JOB_SELECTION_KEYS = {
    "reference": ("n_trajectories",),
    "train": ("models",),
    "backmap": ("methods", "models"),
}
# Section keys that name the chosen method of a kind, and where the methods' sections are.
_CHOICE_KEYS = {"forces": "force_map", "simulate": "integrator"}


def job_config(
    config: Mapping[str, Any],
    stage: str,
    *,
    mapping: str | None = None,
    model: str | None = None,
    backmapper: str | None = None,
) -> dict[str, Any]:
    """The part of a system's configuration that a job of ``stage`` receives.

    Parameters
    ----------
    config
        The system's validated configuration (:func:`system_config`).
    stage
        A workflow stage (``reference``, ``mapping``, ``train``, ...).
    mapping, model, backmapper
        The job's mapping, model and backmapper, for the stages whose method they choose.
    """
    chosen: dict[str, Any] = {"seed": config["seed"], "temperature": config["temperature"]}
    for entry in _STAGE_SECTIONS[stage]:
        section, _, key = entry.partition(".")
        if key:
            chosen.setdefault(section, {})[key] = config[section][key]
            continue
        body = {
            k: v
            for k, v in config[section].items()
            if k not in _JOB_SELECTION_KEYS.get(section, ())
        }
        choice = _CHOICE_KEYS.get(section)
        if choice is not None:  # only the chosen method's section
            methods = {k for k, v in body.items() if isinstance(v, dict)}
            body = {k: v for k, v in body.items() if k not in methods or k == body[choice]}
        if section == "evaluate":
            methods = {k for k, v in body.items() if isinstance(v, dict)}
            body = {k: v for k, v in body.items() if k not in methods or k in body["metrics"]}
        if section == "backmap":  # only the job's backmapper's section
            methods = {k for k, v in body.items() if isinstance(v, dict)}
            body = {k: v for k, v in body.items() if k not in methods or k == backmapper}
        chosen[section] = body
    if stage == "mapping":
        sections = config["mapping"]
        if mapping in sections["files"]:
            chosen["mapping"] = {"files": {mapping: sections["files"][mapping]}}
        else:
            reads = [mapping, *_mapping_schema(config, mapping).get("x-reads", [])]
            chosen["mapping"] = {name: sections[name] for name in reads}
        chosen["train"] = {"n_folds": config["train"]["n_folds"]}
    if stage == "evaluate" and chosen["backmap"]["models"] is not None:
        # Whether this model is backmapped, not the whole list: editing the list reruns
        # only the evaluations whose answer changes.
        chosen["backmap"]["models"] = [model] if model in chosen["backmap"]["models"] else []
    if stage == "train":
        section = config["models"][model]
        chosen["models"] = {model: section}
        trainer = section["trainer"]
        chosen["trainers"] = {trainer: config["trainers"][trainer]}
    return chosen
