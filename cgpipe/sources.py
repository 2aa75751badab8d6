"""Where a system's input files are, found without heavy imports.

The workflow checks the systems sheet when it starts, so this module needs the
standard library only (no OpenMM, no mdtraj).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cgpipe.errors import InputError


def resolve_structure(spec: str, where: str | None = None) -> Path:
    """Path of a structure given as a file path or as ``package:relative/path``.

    The package form finds a file shipped inside an installed package without
    importing the package. A relative file path is taken from the current directory
    (the workflow directory, when Snakemake runs).

    Parameters
    ----------
    spec
        A file path, or ``package:relative/path``.
    where
        What the error messages name first; ``structure '<spec>'`` by default.

    Returns
    -------
    Path
        The structure file.

    Raises
    ------
    InputError
        The package of ``package:relative/path`` is not installed.
    FileNotFoundError
        No file at the resolved path.
    """
    where = where or f"structure {spec!r}"
    # A file whose name holds a colon is taken as a file before anything else.
    if ":" in spec and not Path(spec).exists():
        package, relative = spec.split(":", 1)
        try:
            found = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            # find_spec imports the parents of a dotted name, and refuses empty names.
            found = None
        if found is None or not found.submodule_search_locations:
            raise InputError(f"{where}: package {package!r} is not installed")
        path = Path(next(iter(found.submodule_search_locations))) / relative
    else:
        path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no file at {path}")
    return path
