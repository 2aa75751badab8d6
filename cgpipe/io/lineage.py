"""Lineage: the artifacts behind an artifact, and a check that they are still the files
that were used.

Every cgpipe artifact records the SHA-256 of each of its inputs
(:mod:`cgpipe.io.provenance`). Following those inputs record by record gives a directed
acyclic graph from an artifact (the report, say) down to files that carry no record: a
user's map sheet, a structure shipped with a package, a raw download. :func:`lineage`
builds that graph with one node per file, however many artifacts name it (a report
reaches each reference trajectory by dozens of paths); :func:`verify` hashes each file of
it once and names those whose digest is not the one recorded, and those that are gone.

An input path is recorded as the job saw it: relative to the workflow's working
directory (``results/reference/ala2/traj_0.h5``) or absolute (a package's PDB). Relative
paths are resolved against a root, the working directory of the run.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpipe.errors import InputError
from cgpipe.io.provenance import read_provenance, sha256sum

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree


class NodeKind(enum.StrEnum):
    """What a file of a lineage is."""

    ARTIFACT = "artifact"  # carries a provenance record: its inputs are followed
    LEAF = "leaf"  # exists but carries no (readable) record: the lineage stops there
    MISSING = "missing"  # named by a record, not found


@dataclasses.dataclass(frozen=True)
class Input:
    """One input of an artifact, as the artifact recorded it.

    Parameters
    ----------
    path
        The key of the input's node in :attr:`Lineage.nodes`.
    sha256
        The digest the artifact recorded when it was written.
    recorded_as
        The path exactly as the record gives it (relative or absolute).
    """

    path: str
    sha256: str
    recorded_as: str


@dataclasses.dataclass
class LineageNode:
    """One file of a lineage.

    Parameters
    ----------
    path
        Its name: relative to the lineage's root where it lies inside it, else absolute.
    location
        Its absolute path.
    kind
        Artifact (with a record), leaf (without one) or missing.
    provenance
        Its provenance record, for an artifact.
    inputs
        Its recorded inputs, for an artifact, in the record's order.
    note
        Why a leaf has no record (the reader's message).
    """

    path: str
    location: Path
    kind: NodeKind
    provenance: dict[str, Any] | None = None
    inputs: list[Input] = dataclasses.field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "location": str(self.location),
            "kind": str(self.kind),
            "provenance": self.provenance,
            "note": self.note,
        }


@dataclasses.dataclass
class Lineage:
    """The graph of files behind an artifact, one node per file.

    Parameters
    ----------
    root
        The absolute folder that relative input paths were resolved against.
    artifact
        The key of the artifact whose lineage this is.
    nodes
        Every file reached, by :attr:`LineageNode.path`, in depth-first order from
        ``artifact`` (inputs in the order of their records).
    """

    root: Path
    artifact: str
    nodes: dict[str, LineageNode]

    def edges(self) -> Iterator[tuple[str, Input]]:
        """Every (artifact, input) pair: one per line of every record."""
        for node in self.nodes.values():
            for item in node.inputs:
                yield node.path, item

    def to_dict(self) -> dict[str, Any]:
        """The lineage as one JSON-able document: nodes with their records, then edges."""
        return {
            "root": str(self.root),
            "artifact": self.artifact,
            "nodes": [node.to_dict() for node in self.nodes.values()],
            "edges": [
                {
                    "artifact": parent,
                    "input": item.path,
                    "recorded_as": item.recorded_as,
                    "sha256": item.sha256,
                }
                for parent, item in self.edges()
            ],
        }


# Errors of reading a record: no reader for the suffix or no record (InputError), a file
# that is not what its suffix says (OSError from h5py or Pillow, ArrowInvalid and JSON
# errors, which are ValueErrors).
_UNREADABLE = (InputError, OSError, ValueError)


def _read_record(location: Path, name: str) -> dict[str, Any]:
    """The provenance record of ``location``; :class:`InputError` naming ``name`` if none."""
    try:
        record = read_provenance(location)
    except ImportError as error:
        # The core install reads HDF5, Parquet, PDB and HTML; checkpoints need torch and
        # figures Pillow, which an environment of the reference stage lacks.
        raise InputError(f"{name}: reading its record needs {error.name or error}") from error
    except _UNREADABLE as error:
        lines = str(error).strip().splitlines()
        message = (lines[0] if lines else "").removeprefix(f"{location}: ")
        if not isinstance(error, InputError):
            message = f"not readable as a cgpipe artifact ({message or type(error).__name__})"
        raise InputError(f"{name}: {message}") from error
    inputs = record.get("inputs") if isinstance(record, dict) else None
    if (
        not isinstance(inputs, dict)
        or not isinstance(record.get("stage"), str)
        or not all(isinstance(digest, str) for digest in inputs.values())
    ):
        raise InputError(f"{name}: its provenance record is not a cgpipe record")
    return record


def lineage(path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> Lineage:
    """Follow the provenance records from ``path`` down to files without one.

    Parameters
    ----------
    path
        A cgpipe artifact (HDF5, Parquet, checkpoint, PDB, PNG or HTML report); a relative
        path is taken from the current directory, as a command-line argument is.
    root
        The folder that relative input paths of the records are resolved against: the
        working directory of the workflow run that wrote them.

    Returns
    -------
    Lineage
        One node per file; an input that cannot be read as an artifact is a leaf, one
        that does not exist is missing (neither is an error: :func:`verify` judges).

    Raises
    ------
    InputError
        ``path`` does not exist, is not a file, or carries no readable provenance record.
    """
    root = Path(os.path.abspath(root))
    top = Path(os.path.abspath(path))
    if not top.exists():
        raise InputError(f"{path}: no such file")
    if not top.is_file():
        raise InputError(f"{path}: not a file")
    nodes: dict[str, LineageNode] = {}

    def name_of(location: Path) -> str:
        inside = location.is_relative_to(root)
        return os.path.relpath(location, root) if inside else str(location)

    def visit(location: Path, record: dict[str, Any] | None) -> str:
        name = name_of(location)
        if name in nodes:
            return name
        if not location.exists():
            nodes[name] = LineageNode(name, location, NodeKind.MISSING)
            return name
        if not location.is_file():
            nodes[name] = LineageNode(name, location, NodeKind.LEAF, note="not a file")
            return name
        if record is None:
            try:
                record = _read_record(location, name)
            except InputError as error:
                note = str(error).removeprefix(f"{name}: ")
                nodes[name] = LineageNode(name, location, NodeKind.LEAF, note=note)
                return name
        node = LineageNode(name, location, NodeKind.ARTIFACT, provenance=record)
        nodes[name] = node  # before its inputs: a record naming itself ends here
        for recorded_as, digest in record["inputs"].items():
            where = Path(recorded_as)
            where = Path(os.path.normpath(where if where.is_absolute() else root / where))
            node.inputs.append(Input(visit(where, None), digest, recorded_as))
        return name

    return Lineage(root, visit(top, _read_record(top, str(path))), nodes)


def lineage_tree(graph: Lineage) -> Tree:
    """The lineage as a tree for the terminal (:mod:`rich`).

    Each artifact shows its stage, seed, cgpipe version, commit and creation time, its
    configuration section and library versions, then its inputs with the recorded
    SHA-256, each expanded in turn. A file reached a second time is shown once more
    without its inputs, marked "(above)"; a file without a record is marked as a leaf.
    """
    from rich.tree import Tree

    top = graph.nodes[graph.artifact]
    tree = Tree(_heading(top, None, again=False))
    shown = {top.path}

    def grow(branch: Tree, node: LineageNode) -> None:
        for item in node.inputs:
            child = graph.nodes[item.path]
            again = child.kind is NodeKind.ARTIFACT and child.path in shown
            shown.add(child.path)
            twig = branch.add(_heading(child, item.sha256, again))
            if child.kind is NodeKind.ARTIFACT and not again:
                grow(twig, child)

    grow(tree, top)
    return tree


def _heading(node: LineageNode, digest: str | None, again: bool) -> Text:
    from rich.text import Text

    text = Text(node.path, style="bold" if node.kind is NodeKind.ARTIFACT else "")
    if digest is not None:
        text.append(f"  sha256 {digest}", style="dim")
    if node.kind is NodeKind.MISSING:
        return text.append("  (missing)", style="bold red")
    if node.kind is NodeKind.LEAF:
        return text.append(f"  (leaf: {node.note})", style="yellow")
    if again:
        return text.append("  (above)", style="cyan")
    record = node.provenance or {}
    facts = [
        f"stage {record.get('stage')}",
        f"seed {'none' if record.get('seed') is None else record['seed']}",
        f"cgpipe {record.get('cgpipe_version')}",
        f"commit {record.get('git_commit')}",
        f"created {record.get('created')}",
    ]
    versions = record.get("versions") or {}
    text.append("\n" + " | ".join(facts), style="green")
    text.append("\nconfig " + json.dumps(record.get("config"), sort_keys=True))
    text.append("\nversions " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return text


@dataclasses.dataclass(frozen=True)
class Finding:
    """A recorded input that is no longer the file that was used.

    Parameters
    ----------
    path
        The input's name in the lineage.
    problem
        ``differs`` (another SHA-256), ``missing`` or ``unreadable``.
    recorded
        The SHA-256 the artifacts recorded.
    found
        The SHA-256 of the file now (``None`` when missing or unreadable).
    recorded_by
        The artifacts whose records name the file with that digest.
    """

    path: str
    problem: str
    recorded: str
    found: str | None
    recorded_by: tuple[str, ...]

    def describe(self) -> str:
        """One line: the file, what is wrong, both digests and who recorded it."""
        what = {
            "differs": f"differs from its record: recorded sha256 {self.recorded}, "
            f"found {self.found}",
            "missing": f"is missing: recorded sha256 {self.recorded}",
            "unreadable": f"cannot be read: recorded sha256 {self.recorded}",
        }[self.problem]
        first, *others = self.recorded_by
        by = f"{first} and {len(others)} more" if others else first
        return f"{self.path} {what} (recorded by {by})"


@dataclasses.dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: the number of input files along the lineage (each
    checked once) and every finding."""

    files: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(graph: Lineage) -> Verification:
    """Hash every input along ``graph`` (each file once) against its recorded SHA-256.

    A file recorded with one digest by many artifacts is one finding that names them
    all; recorded with two digests (an artifact built from an older version of it), the
    digest it no longer has is a finding of its own.
    """
    found: dict[str, str | None] = {}
    recorded_by: dict[tuple[str, str], list[str]] = defaultdict(list)
    for parent, item in graph.edges():
        recorded_by[item.path, item.sha256].append(parent)
        node = graph.nodes[item.path]
        if item.path not in found and node.kind is not NodeKind.MISSING:
            try:
                found[item.path] = sha256sum(node.location)
            except OSError:
                found[item.path] = None
    findings = []
    for (name, digest), parents in recorded_by.items():
        if graph.nodes[name].kind is NodeKind.MISSING:
            problem, now = "missing", None
        elif (now := found[name]) is None:
            problem = "unreadable"
        elif now != digest:
            problem = "differs"
        else:
            continue
        findings.append(Finding(name, problem, digest, now, tuple(parents)))
    files = {name for name, _ in recorded_by}
    return Verification(len(files), tuple(findings))
