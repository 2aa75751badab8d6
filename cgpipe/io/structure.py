"""Prepared all-atom structures: PDB files that carry their provenance.

The reference stage prepares one structure per system (built from a sequence or
repaired from a PDB, with hydrogens, and solvated for explicit water) and every
trajectory starts from it. PDB keeps the file readable by OpenMM, VMD and PyMOL; the
provenance record rides along as ``REMARK 999`` lines, which PDB readers ignore.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import openmm.app as app

from cgpipe.io.atomic import atomic_output
from cgpipe.io.provenance import Provenance, pdb_remarks


def write_structure(
    path: str | os.PathLike[str],
    topology: app.Topology,
    positions: object,
    provenance: Provenance,
) -> None:
    """Write a PDB (with the box, if the topology has one) and its provenance, atomically."""
    body = io.StringIO()
    app.PDBFile.writeFile(topology, positions, body, keepIds=True)
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.writelines(pdb_remarks(provenance))
        handle.write(body.getvalue())


def read_structure(path: str | os.PathLike[str]) -> app.PDBFile:
    """The prepared structure (topology, positions and box) as OpenMM reads it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no prepared structure")
    return app.PDBFile(str(path))
