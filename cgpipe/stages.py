"""What every stage does around its work: record the configuration it ran with.

Each stage's ``run`` writes, next to its outputs, the resolved configuration (the
sections it received with every default filled in), so a result folder says how it
was made without reading the provenance inside a binary file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from cgpipe.io import atomic_output
from cgpipe.paths import resolved_config_path


def write_resolved_config(output: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Write ``config`` as YAML beside ``output`` (inside it, if it is a folder)."""
    path = resolved_config_path(output)
    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(dict(config), sort_keys=True))
