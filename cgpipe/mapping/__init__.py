"""CG mappings: the linear map Xi (n_beads x n_atoms) and its force map Xi_f.

A :class:`Mapping` holds, per bead, the atoms it is built from with a coordinate
weight (the row of Xi) and a force weight (the row of Xi_f), the bead names, types and
masses, and the CG topology that mdtraj and VMD read. Fixed maps here:

- ``backbone``: the backbone heavy atoms N, CA, C of every residue (for capped
  alanine dipeptide the five atoms C N CA C N that define phi and psi);
- ``calpha``: one bead per residue at its C-alpha.

Every atom of the molecule joins the bead whose centre is fewest bonds away (force
weight 1, coordinate weight 0 unless it is the centre): summing forces over a bead
cancels the forces between its atoms, bond constraints to hydrogens included.
"""

from cgpipe.mapping.core import (
    FIXED_MAPPINGS,
    Mapping,
    assign_atoms,
    build_fixed_mapping,
    read_mapping,
    write_mapping,
)

__all__ = [
    "FIXED_MAPPINGS",
    "Mapping",
    "assign_atoms",
    "build_fixed_mapping",
    "read_mapping",
    "write_mapping",
]
