"""The ``calpha`` map: one bead per residue at its C-alpha.

The common one-bead-per-residue resolution of protein CG force fields (e.g. Majewski et
al., Nat. Commun. 14, 5739 (2023)). Consecutive beads of a chain are bonded; a bead's
type is its residue name.
"""

from __future__ import annotations

import mdtraj as md

from cgpipe.mapping.base import MAPPINGS
from cgpipe.mapping.fixed import FixedMapping, bonds_along_chain


@MAPPINGS.register("calpha")
class CAlpha(FixedMapping):
    """The CA of every residue, bonded along the chain."""

    def centres(self, topology: md.Topology) -> list[int]:
        return [
            a.index for a in topology.atoms if a.name == "CA" and a.element is md.element.carbon
        ]

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        return bonds_along_chain(topology, centres)

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        return centre.residue.name
