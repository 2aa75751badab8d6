"""Mapping objects, the fixed maps and the mapping artifact (Parquet)."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Callable

import mdtraj as md
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_table
from cgpipe.io.trajectory import topology_from_dict

_CG_TOPOLOGY_KEY = b"cgpipe.cg_topology"
_N_ATOMS_KEY = b"cgpipe.n_atoms"
_NAME_KEY = b"cgpipe.mapping"


@dataclasses.dataclass
class Mapping:
    """A linear CG map.

    Attributes
    ----------
    name
        Mapping name (a value of the ``{mapping}`` wildcard).
    n_atoms
        Atoms in the all-atom system.
    table
        One row per (bead, atom) with nonzero weight: columns ``bead, atom, weight,
        force_weight, bead_name, bead_type, mass, residue_index, residue_name,
        residue_seq``.
    topology
        CG topology: one atom per bead, beads grouped in their residues.
    """

    name: str
    n_atoms: int
    table: pd.DataFrame
    topology: md.Topology

    @property
    def n_beads(self) -> int:
        return self.topology.n_atoms

    def _matrix(self, column: str) -> np.ndarray:
        matrix = np.zeros((self.n_beads, self.n_atoms))
        matrix[self.table[keys.BEAD].to_numpy(), self.table[keys.ATOM].to_numpy()] = self.table[
            column
        ].to_numpy()
        return matrix

    @property
    def coordinate_map(self) -> np.ndarray:
        """Xi, [n_beads, n_atoms]: z = Xi x."""
        return self._matrix(keys.WEIGHT)

    @property
    def force_map(self) -> np.ndarray:
        """Xi_f for basic aggregation, [n_beads, n_atoms]: F_cg = Xi_f f."""
        return self._matrix(keys.FORCE_WEIGHT)

    @property
    def beads(self) -> pd.DataFrame:
        """The bead table, one row per bead."""
        columns = [
            keys.BEAD_NAME,
            keys.BEAD_TYPE,
            keys.BEAD_MASS,
            keys.RESIDUE_INDEX,
            keys.RESIDUE_NAME,
            keys.RESIDUE_SEQ,
        ]
        return self.table.groupby(keys.BEAD, sort=True)[columns].first()

    @property
    def bead_types(self) -> np.ndarray:
        """[n_beads] integer bead types (beads of one type are interchangeable)."""
        return self.beads[keys.BEAD_TYPE].to_numpy(dtype=np.int64)

    @property
    def bead_masses(self) -> np.ndarray:
        """[n_beads] masses in amu."""
        return self.beads[keys.BEAD_MASS].to_numpy(dtype=np.float64)

    @property
    def bonds(self) -> np.ndarray:
        """[n_bonds, 2] bead pairs bonded in the CG topology."""
        pairs = [(b.atom1.index, b.atom2.index) for b in self.topology.bonds]
        return np.array(sorted(tuple(sorted(p)) for p in pairs), dtype=np.int64).reshape(-1, 2)

    def check(self) -> None:
        """Assert the consistency conditions of a linear map and its force map."""
        xi, xi_f = self.coordinate_map, self.force_map
        if not np.allclose(xi.sum(axis=1), 1.0):
            raise ValueError(f"mapping {self.name}: rows of Xi must sum to 1 (translation)")
        if not np.allclose(xi_f @ xi.T, np.eye(self.n_beads)):
            raise ValueError(f"mapping {self.name}: force map violates Xi_f Xi^T = I")
        if (np.count_nonzero(xi_f, axis=0) > 1).any():
            raise ValueError(f"mapping {self.name}: an atom's force goes to more than one bead")


def assign_atoms(topology: md.Topology, centres: list[int]) -> dict[int, list[int]]:
    """Each atom joins the bead whose centre is fewest bonds away (ties: lower bead).

    A breadth-first search from all centres at once; atoms not bonded to any centre
    (ions, solvent) join no bead. A hydrogen has one bond, so it always joins its heavy
    atom's bead and X-H constraint forces cancel inside the bead.
    """
    neighbours: dict[int, list[int]] = {atom.index: [] for atom in topology.atoms}
    for bond in topology.bonds:
        neighbours[bond.atom1.index].append(bond.atom2.index)
        neighbours[bond.atom2.index].append(bond.atom1.index)
    owner = {centre: bead for bead, centre in enumerate(centres)}
    queue = collections.deque(centres)
    while queue:
        atom = queue.popleft()
        for neighbour in sorted(neighbours[atom]):
            if neighbour not in owner:
                owner[neighbour] = owner[atom]
                queue.append(neighbour)
    members: dict[int, list[int]] = {bead: [] for bead in range(len(centres))}
    for atom in sorted(owner):
        members[owner[atom]].append(atom)
    return members


def _select_backbone(topology: md.Topology) -> list[int]:
    # The carbonyl C is told apart from a methyl cap named C (mdtraj renames NME's CH3)
    # by its bonded oxygen.
    carbonyl = {
        atom.index
        for bond in topology.bonds
        for atom, other in ((bond.atom1, bond.atom2), (bond.atom2, bond.atom1))
        if other.element is md.element.oxygen
    }
    return [
        a.index
        for a in topology.atoms
        if (a.name == "N" and a.element is md.element.nitrogen)
        or (a.name == "CA" and a.element is md.element.carbon)
        or (a.name == "C" and a.index in carbonyl)
    ]


def _select_calpha(topology: md.Topology) -> list[int]:
    return [a.index for a in topology.atoms if a.name == "CA" and a.element is md.element.carbon]


def _bonds_from_atoms(topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
    bead_of = {atom: bead for bead, atom in enumerate(centres)}
    bonds = set()
    for bond in topology.bonds:
        i, j = bead_of.get(bond.atom1.index), bead_of.get(bond.atom2.index)
        if i is not None and j is not None:
            bonds.add((min(i, j), max(i, j)))
    return sorted(bonds)


def _bonds_along_chain(topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
    atoms = list(topology.atoms)
    return [
        (i, i + 1)
        for i in range(len(centres) - 1)
        if atoms[centres[i]].residue.chain.index == atoms[centres[i + 1]].residue.chain.index
    ]


_Selector = Callable[[md.Topology], list[int]]
_Bonder = Callable[[md.Topology, list[int]], list[tuple[int, int]]]
FIXED_MAPPINGS: dict[str, tuple[_Selector, _Bonder, str]] = {
    # name: (bead centres, CG bonds, what decides the bead type)
    "backbone": (_select_backbone, _bonds_from_atoms, "atom_name"),
    "calpha": (_select_calpha, _bonds_along_chain, "residue_name"),
}


def build_fixed_mapping(name: str, topology: md.Topology) -> Mapping:
    """Build a fixed map on an all-atom topology.

    The bead sits on its centre atom (coordinate weight 1, a slice map); its force is
    the sum over the atoms assigned to it by :func:`assign_atoms` (force weight 1).
    Summing over a partition of the molecule cancels the forces between atoms of one
    bead (bond vibrations, constraint forces), which lowers the noise that force
    matching averages out, while Xi_f Xi^T = I keeps the mean force exact.
    """
    if name not in FIXED_MAPPINGS:
        raise InputError(f"unknown fixed mapping {name!r}; known: {sorted(FIXED_MAPPINGS)}")
    select, bond, type_by = FIXED_MAPPINGS[name]
    centres = select(topology)
    if len(centres) < 2:
        raise InputError(
            f"mapping {name!r}: the topology yields {len(centres)} beads, need at least 2"
        )
    atoms = list(topology.atoms)
    groups = assign_atoms(topology, centres)
    type_names = sorted(
        {atoms[c].name if type_by == "atom_name" else atoms[c].residue.name for c in centres}
    )
    rows = []
    cg = md.Topology()
    chains: dict[int, md.core.topology.Chain] = {}
    residues: dict[int, md.core.topology.Residue] = {}
    for bead, centre in enumerate(centres):
        atom = atoms[centre]
        residue = atom.residue
        members = groups[bead]
        mass = float(sum(atoms[m].element.mass for m in members))
        type_name = atom.name if type_by == "atom_name" else residue.name
        for member in members:
            rows.append(
                {
                    keys.BEAD: bead,
                    keys.ATOM: member,
                    keys.WEIGHT: 1.0 if member == centre else 0.0,
                    keys.FORCE_WEIGHT: 1.0,
                    keys.BEAD_NAME: atom.name,
                    keys.BEAD_TYPE: type_names.index(type_name),
                    keys.BEAD_MASS: mass,
                    keys.RESIDUE_INDEX: residue.index,
                    keys.RESIDUE_NAME: residue.name,
                    keys.RESIDUE_SEQ: residue.resSeq,
                }
            )
        if residue.chain.index not in chains:
            chains[residue.chain.index] = cg.add_chain(chain_id=residue.chain.chain_id)
        if residue.index not in residues:
            residues[residue.index] = cg.add_residue(
                residue.name, chains[residue.chain.index], resSeq=residue.resSeq
            )
        cg.add_atom(atom.name, atom.element, residues[residue.index])
    cg_atoms = list(cg.atoms)
    for i, j in bond(topology, centres):
        cg.add_bond(cg_atoms[i], cg_atoms[j])
    mapping = Mapping(name=name, n_atoms=topology.n_atoms, table=pd.DataFrame(rows), topology=cg)
    mapping.check()
    return mapping


def write_mapping(path: str | os.PathLike[str], mapping: Mapping, provenance: Provenance) -> None:
    """Write the mapping artifact: Xi rows plus bead columns, CG topology in the metadata."""
    import pyarrow as pa

    from cgpipe.io.atomic import atomic_output

    arrow = pa.Table.from_pandas(mapping.table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata.update(
        {
            keys.PARQUET_PROVENANCE_KEY: provenance.to_json().encode(),
            _CG_TOPOLOGY_KEY: json.dumps(
                md.formats.HDF5TrajectoryFile.convert_topology_to_dict(mapping.topology)
            ).encode(),
            _N_ATOMS_KEY: str(mapping.n_atoms).encode(),
            _NAME_KEY: mapping.name.encode(),
            b"cgpipe.units": json.dumps({keys.BEAD_MASS: "amu"}).encode(),
        }
    )
    with atomic_output(path) as tmp:
        pq.write_table(arrow.replace_schema_metadata(metadata), tmp)


def read_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read a mapping artifact written by :func:`write_mapping`."""
    table = read_table(path)
    metadata = pq.read_schema(path).metadata or {}
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
