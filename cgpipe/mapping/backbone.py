"""The ``backbone`` map: a bead on each backbone heavy atom N, CA, C of every residue.

For capped alanine dipeptide these are the five atoms C N CA C N that define the
dihedrals phi and psi, so the CG model keeps the Ramachandran plot that the
alanine-dipeptide CG literature compares (e.g. Wang et al., ACS Cent. Sci. 5, 755
(2019)). Beads are bonded where their atoms are; a bead's type is its atom name.
"""

from __future__ import annotations

import mdtraj as md

from cgpipe.mapping.base import MAPPINGS
from cgpipe.mapping.fixed import FixedMapping, bonds_between_centres


def carbonyl_carbons(topology: md.Topology) -> set[int]:
    """Indices of the carbons bonded to an oxygen.

    They tell a carbonyl C apart from a methyl cap that mdtraj also names C (it renames
    NME's CH3).
    """
    return {
        atom.index
        for bond in topology.bonds
        for atom, other in ((bond.atom1, bond.atom2), (bond.atom2, bond.atom1))
        if atom.element is md.element.carbon and other.element is md.element.oxygen
    }


def backbone_atoms(topology: md.Topology) -> list[int]:
    """Atom indices of every backbone N, CA and carbonyl C, in topology order (ACE's C and
    NME's N included)."""
    carbonyl = carbonyl_carbons(topology)
    return [
        a.index
        for a in topology.atoms
        if (a.name == "N" and a.element is md.element.nitrogen)
        or (a.name == "CA" and a.element is md.element.carbon)
        or (a.name == "C" and a.index in carbonyl)
    ]


@MAPPINGS.register("backbone")
class Backbone(FixedMapping):
    """N, CA and C of every residue, ACE's carbonyl C and NME's N included."""

    def centres(self, topology: md.Topology) -> list[int]:
        return backbone_atoms(topology)

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        return bonds_between_centres(topology, centres)

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        return centre.name
