"""The ``backbone_cb`` map: the ``backbone`` beads N, CA, C plus a bead on every CB.

A distance-only network cannot tell a structure from its mirror image: with the five
beads C N CA C N of alanine dipeptide, (phi, psi) and (-phi, -psi) (alpha_R and
alpha_L) have the same distances, and only the prior's signed dihedrals see the
difference. A bead on CB keeps the chirality of the C-alpha, which the molecule has
(L-amino acids): the dihedral C-N-CA-CB is fixed near phi - 120 degrees by the
tetrahedral C-alpha (IUPAC-IUB, Biochemistry 9, 3471 (1970)), and a mirror image gives
phi + 120 degrees instead, a geometry no L-residue visits. Glycine has no CB and keeps its
three backbone beads. For capped alanine dipeptide this is 6 beads: C N CA CB C N.
Beads are bonded where their atoms are (CB to its CA); a bead's type is its atom name.
"""

from __future__ import annotations

import mdtraj as md

from cgpipe.mapping.backbone import backbone_atoms
from cgpipe.mapping.base import MAPPINGS
from cgpipe.mapping.fixed import FixedMapping, bonds_between_centres


@MAPPINGS.register("backbone_cb")
class BackboneCB(FixedMapping):
    """N, CA and C of every residue (as ``backbone``) and the CB of every residue that has one."""

    def centres(self, topology: md.Topology) -> list[int]:
        cb = {a.index for a in topology.atoms if a.name == "CB" and a.element is md.element.carbon}
        return sorted(set(backbone_atoms(topology)) | cb)

    def cg_bonds(self, topology: md.Topology, centres: list[int]) -> list[tuple[int, int]]:
        return bonds_between_centres(topology, centres)

    def bead_type_name(self, centre: md.core.topology.Atom) -> str:
        return centre.name
