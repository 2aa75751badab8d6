"""The ``heavy`` map: a bead on every heavy (non-hydrogen) atom, with its hydrogens.

The finest common CG resolution ("united atom"): each hydrogen joins the heavy atom it is
bonded to, so bond constraints to hydrogen stay inside a bead, where the unrecorded
constraint forces would cancel (:mod:`cgpipe.constraints`). Beads are bonded where
their atoms are; a bead's type is its atom name.
"""

from __future__ import annotations

import mdtraj as md

from cgpipe.mapping.base import MAPPINGS
from cgpipe.mapping.fixed import FixedMapping, bonds_between_centres
from cgpipe.mapping.groups import heavy_atoms


@MAPPINGS.register("heavy")
class Heavy(FixedMapping):
    """Every heavy atom is a bead centre."""

    def centres(self, topology: md.Topology) -> list[int]:
        return heavy_atoms(topology).tolist()

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        return bonds_between_centres(topology, centres)

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        return f"{centre.residue.name}:{centre.name}"
