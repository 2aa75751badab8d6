"""Centre-atom maps: each bead sits on one atom, and its force is summed over a partition.

The bead's position is its centre atom's (coordinate weight 1: a slice map); its force
is the sum over the atoms assigned to it by :func:`assign_atoms` (force weight 1, basic
aggregation). Summing over a partition of the molecule cancels the forces between atoms
of one bead (bond vibrations), which lowers the noise that force matching averages out,
while Xi_f Xi^T = I keeps the mean force exact. A constraint force inside a bead would
cancel in the sum too, so the reference's forces, which lack them, suffice
(:mod:`cgpipe.constraints`). A concrete map says which atoms are centres, which beads
are bonded and what decides a bead's type.
"""

from __future__ import annotations

import collections

import mdtraj as md
import numpy as np

from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.mapping.base import Mapping, MappingMethod
from cgpipe.mapping.groups import assemble


def assign_atoms(topology: md.Topology, centres: list[int]) -> dict[int, list[int]]:
    """Each atom joins the bead whose centre is fewest bonds away (ties: lower bead).

    A breadth-first search from all centres at once; atoms not bonded to any centre
    (ions, solvent) join no bead. A hydrogen has one bond, so it always joins its heavy
    atom's bead and no X-H constraint crosses a bead boundary (:mod:`cgpipe.constraints`).

    Returns
    -------
    dict
        Bead index (the position of its centre in ``centres``) -> its atoms, sorted.
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


def bonds_between_centres(topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
    """Bead pairs whose centre atoms are bonded in the all-atom topology."""
    bead_of = {atom: bead for bead, atom in enumerate(centres)}
    bonds = set()
    for bond in topology.bonds:
        i, j = bead_of.get(bond.atom1.index), bead_of.get(bond.atom2.index)
        if i is not None and j is not None:
            bonds.add((min(i, j), max(i, j)))
    return sorted(bonds)


def bonds_along_chain(topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
    """Consecutive beads of one chain (a bead per residue, bonded along the sequence)."""
    atoms = list(topology.atoms)
    return [
        (i, i + 1)
        for i in range(len(centres) - 1)
        if atoms[centres[i]].residue.chain.index == atoms[centres[i + 1]].residue.chain.index
    ]


class FixedMapping(MappingMethod):
    """A centre-atom map on the topology alone (not fitted; takes no options).

    Subclasses define :meth:`centres`, :meth:`cg_bonds` and :meth:`bead_type_name`.
    """

    def centres(self, topology: md.Topology) -> list[int]:
        """Atom indices of the bead centres, in bead order."""
        raise NotImplementedError

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        """Bonded bead pairs (i < j) of the CG topology."""
        raise NotImplementedError

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        """The name that decides a bead's type: beads with one name are interchangeable."""
        raise NotImplementedError

    def build(
        self, topology: md.Topology, training: TrajectoryData | None = None, *, seed: int = 0
    ) -> Mapping:
        centres = self.centres(topology)
        if len(centres) < 2:
            raise InputError(
                f"mapping {self.name!r}: the topology yields {len(centres)} beads, need at least 2"
            )
        atoms = list(topology.atoms)
        members = assign_atoms(topology, centres)
        groups = [members[bead] for bead in range(len(centres))]
        return assemble(
            self.name,
            topology,
            groups,
            [
                np.array([1.0 if m == c else 0.0 for m in g])
                for g, c in zip(groups, centres, strict=True)
            ],
            [atoms[c].name for c in centres],
            [self.bead_type_name(atoms[c]) for c in centres],
            centres,
            self.cg_bonds(topology, centres),
        )
