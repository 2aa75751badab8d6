"""Configuration: one loader and validator for the workflow and the command line.

The JSON schemas in ``cgpipe/schemas`` (also reachable as ``workflow/schemas``) are
the single source of truth for keys, types, bounds and defaults. Validation fills in
defaults and rejects unknown keys, naming the key at fault.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

SCHEMA_DIR = Path(str(resources.files("cgpipe") / "schemas"))
CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"
SYSTEMS_SCHEMA = SCHEMA_DIR / "systems.schema.yaml"


class ConfigError(ValueError):
    """A configuration or systems sheet that does not satisfy its schema."""


def _load_schema(path: Path) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


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
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
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
        raw, name = json.loads(source), "configuration given as JSON"
    else:
        name = os.fspath(source)
        with open(source) as handle:
            raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the configuration must be a mapping of keys to values")
    return validate(raw, CONFIG_SCHEMA, name)


def load_systems(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load and validate the systems sheet: one row per system, indexed by name."""
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except (OSError, pd.errors.ParserError) as error:
        raise ConfigError(f"{path}: cannot read the systems sheet ({error})") from error
    rows = []
    for number, row in enumerate(sheet.to_dict(orient="records"), start=2):
        row = {k: v for k, v in row.items() if v != ""}
        rows.append(validate(row, SYSTEMS_SCHEMA, f"{path}, line {number}"))
    if not rows:
        raise ConfigError(f"{path}: the systems sheet lists no system")
    table = pd.DataFrame(rows)
    duplicated = table["system"][table["system"].duplicated()]
    if not duplicated.empty:
        raise ConfigError(f"{path}: system {duplicated.iloc[0]!r} is listed twice")
    return table.set_index("system", drop=False)


def system_mappings(row: Mapping[str, Any]) -> list[str]:
    """The mapping names of one systems-sheet row."""
    return [m.strip() for m in str(row["mappings"]).split(",") if m.strip()]
