"""The mapping artifact: one Parquet table, one row per (bead, atom) weight.

The rows are the mapping table (coordinate weight = row of Xi, force weight = row of
Xi_f, bead name, type and mass in amu, residue); the schema metadata holds the CG
topology (mdtraj's JSON), the number of atoms of the all-atom system, the mapping's
name and the provenance.
"""

from __future__ import annotations

import json
import os

import mdtraj as md

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_table, write_table
from cgpipe.io.tables import read_table_metadata
from cgpipe.io.trajectory import topology_from_dict
from cgpipe.mapping.base import Mapping

_CG_TOPOLOGY_KEY = b"cgpipe.cg_topology"
_N_ATOMS_KEY = b"cgpipe.n_atoms"
_NAME_KEY = b"cgpipe.mapping"


def write_mapping(path: str | os.PathLike[str], mapping: Mapping, provenance: Provenance) -> None:
    """Write the mapping artifact: Xi rows plus bead columns, CG topology in the metadata."""
    topology = md.formats.HDF5TrajectoryFile.convert_topology_to_dict(mapping.topology)
    write_table(
        path,
        mapping.table,
        provenance,
        units={keys.BEAD_MASS: "amu"},
        metadata={
            _CG_TOPOLOGY_KEY: json.dumps(topology).encode(),
            _N_ATOMS_KEY: str(mapping.n_atoms).encode(),
            _NAME_KEY: mapping.name.encode(),
        },
    )


def read_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read a mapping artifact written by :func:`write_mapping` and check its consistency."""
    table = read_table(path)
    metadata = read_table_metadata(path)
    for key in (_CG_TOPOLOGY_KEY, _N_ATOMS_KEY, _NAME_KEY):
        if key not in metadata:
            raise InputError(f"{path}: not a cgpipe mapping (no {key.decode()} metadata)")
    topology = topology_from_dict(json.loads(metadata[_CG_TOPOLOGY_KEY]))
    mapping = Mapping(
        name=metadata[_NAME_KEY].decode(),
        n_atoms=int(metadata[_N_ATOMS_KEY]),
        table=table,
        topology=topology,
    )
    try:
        mapping.check()
    except ValueError as error:
        raise InputError(f"{path}: {error}") from error
    return mapping
