"""Prepared all-atom structures: PDB files that carry their provenance.

The reference stage prepares one structure per system (built from a sequence or
repaired from a PDB, with hydrogens, and solvated for explicit water) and every
trajectory starts from it. PDB keeps the file readable by OpenMM, VMD and PyMOL; the
provenance record rides along as ``REMARK 999`` lines, which PDB readers ignore.

OpenMM is imported where a structure is read or written, not with :mod:`cgpipe.io`: every
stage imports the artifact I/O, and the torch stages' environment (``envs/torch.yaml``)
has no OpenMM.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cgpipe.io.atomic import atomic_output
from cgpipe.io.provenance import Provenance, pdb_remarks

if TYPE_CHECKING:
    import openmm.app as app


def write_structure(
    path: str | os.PathLike[str],
    topology: app.Topology,
    positions: object,
    provenance: Provenance,
) -> None:
    """Write a PDB (with the box, if the topology has one) and its provenance, atomically."""
    from openmm.app import PDBFile

    body = io.StringIO()
    PDBFile.writeFile(topology, positions, body, keepIds=True)
    with atomic_output(path) as tmp, open(tmp, "w") as handle:
        handle.writelines(pdb_remarks(provenance))
        handle.write(body.getvalue())


def read_structure(path: str | os.PathLike[str]) -> app.PDBFile:
    """The prepared structure (topology, positions and box) as OpenMM reads it."""
    from openmm.app import PDBFile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no prepared structure")
    return PDBFile(str(path))
