"""Provenance: every artifact says where it came from.

A :class:`Provenance` records the cgpipe version and git commit, the configuration
section that produced the artifact, the SHA-256 of each input artifact, the seed, and
the versions of the libraries that shaped the numbers. It is stored as JSON text in an
HDF5 root attribute, in Parquet schema metadata, or inside a model checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cgpipe
from cgpipe import keys
from cgpipe.errors import InputError

_TRACKED_PACKAGES = ("torch", "openmm", "mdtraj", "numpy", "torch_geometric", "h5py", "pyarrow")


def sha256sum(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _git_commit() -> str | None:
    source = Path(cgpipe.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{out}-dirty" if dirty else out


@functools.cache
def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "cgpipe": cgpipe.__version__}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclasses.dataclass
class Provenance:
    """Where an artifact came from.

    Parameters
    ----------
    stage
        The workflow stage that wrote the artifact (``reference``, ``train``, ...).
    config
        The configuration section that produced it (plain JSON-able values).
    inputs
        Paths of the input artifacts; their SHA-256 digests are recorded.
    seed
        The random seed, where the stage draws random numbers.
    extra
        Stage-specific facts (platform, measured speed, unit conversions, ...).
    """

    stage: str
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: Iterable[str | os.PathLike[str]] = ()
    seed: int | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "cgpipe_version": cgpipe.__version__,
            "git_commit": _git_commit(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "config": dict(self.config),
            "inputs": {str(p): sha256sum(p) for p in self.inputs},
            "seed": self.seed,
            "versions": _versions(),
            "host": platform.node(),
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"provenance value of type {type(value).__name__} is not JSON-serialisable")


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the provenance record of any cgpipe artifact (HDF5, Parquet, PDB, checkpoint...)."""
    path = Path(path)
    suffix = path.suffix
    if suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as handle:
            text = handle.attrs.get(keys.PROVENANCE)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        text = metadata.get(keys.PARQUET_PROVENANCE_KEY)
    elif suffix == ".pt":
        from cgpipe.io.checkpoint import read_checkpoint

        text = read_checkpoint(path).get(keys.PROVENANCE)
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            text = image.text.get(keys.PARQUET_PROVENANCE_KEY.decode())
    elif suffix == ".html":
        import re

        found = re.search(
            r'<script type="application/json" id="provenance">(.*?)</script>',
            path.read_text(),
            re.DOTALL,
        )
        text = found.group(1) if found else None
    elif suffix == ".pdb":
        text = _pdb_provenance_text(path)
    else:
        raise InputError(f"{path}: no provenance reader for files ending in {suffix!r}")
    if text is None:
        raise InputError(f"{path}: artifact carries no provenance record")
    if isinstance(text, bytes):
        text = text.decode()
    return json.loads(text)


# A prepared structure (PDB) carries its provenance in REMARK 999 lines, which PDB
# readers ignore, cut to the 80-column records.
_PDB_REMARK = "REMARK 999 CGPIPE "
_PDB_CHUNK = 80 - len(_PDB_REMARK)


def pdb_remarks(provenance: Provenance) -> list[str]:
    """The REMARK lines (with newlines) that carry ``provenance`` at the top of a PDB."""
    text = provenance.to_json()
    return [
        f"{_PDB_REMARK}{text[start : start + _PDB_CHUNK]}\n"
        for start in range(0, len(text), _PDB_CHUNK)
    ]


def _pdb_provenance_text(path: Path) -> str | None:
    chunks = []
    with open(path) as handle:
        for line in handle:
            if line.startswith(_PDB_REMARK):
                chunks.append(line[len(_PDB_REMARK) :].rstrip("\n"))
            elif chunks:
                break
    return "".join(chunks) or None
