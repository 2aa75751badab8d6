"""Holonomic constraints and the force map: a constraint must not cross a bead boundary.

A reference run with bond (or angle) constraints moves under the potential's forces and
the constraint forces: for a constrained pair (i, j) a force lambda (r_i - r_j) on atom i
and its opposite on atom j, lambda set by the constraint solver. The recorded forces are
the potential's alone: OpenMM's ``State.getForces()`` returns the forces of the system's
Force objects, not the constraint forces. Projected, a constraint force gives
(Xi_f[:, i] - Xi_f[:, j]) lambda (r_i - r_j), which vanishes for every lambda only when
atoms i and j send their forces to the same beads with the same weights (the force map is
tangent to the constraint manifold; for an aggregation, ``basic``, both atoms in one
bead). Then the projected recorded forces are the projected total forces and their
conditional mean is the mean force. Otherwise the mean force would need the unrecorded
constraint forces, and force matching on the recorded ones learns a wrong one (Noid et
al., J. Chem. Phys. 128, 244114 (2008); Krämer et al., J. Phys. Chem. Lett. 14, 3970
(2023) treat the constrained case). :func:`check_constraints` refuses such a map: the
mapping stage with the map's own force map, the forces stage with the force map it
projects with, before anything is written.

The constrained pairs follow OpenMM's ``ForceField.createSystem``: ``HBonds`` constrains
every bond with a hydrogen, ``AllBonds`` every bond, and ``HAngles`` every bond plus the
1-3 pair of each angle H-X-H and H-O-X (two hydrogen ends, or one and an oxygen in the
middle).
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import mdtraj as md
import numpy as np

from cgpipe.errors import InputError

if TYPE_CHECKING:
    from cgpipe.mapping.base import Mapping

CONSTRAINTS = ("none", "HBonds", "AllBonds", "HAngles")
"""The values of ``reference.constraints``."""


def constrained_pairs(topology: md.Topology, constraints: str) -> list[tuple[int, int]]:
    """Atom pairs (i < j, sorted) whose distance the constraints ``constraints`` hold fixed.

    Parameters
    ----------
    topology
        The all-atom topology, bonds included.
    constraints
        One of :data:`CONSTRAINTS`.

    Returns
    -------
    list
        The constrained atom pairs, by index.
    """
    if constraints not in CONSTRAINTS:
        raise ValueError(f"unknown constraints {constraints!r}; known: {list(CONSTRAINTS)}")
    hydrogen = md.element.hydrogen
    pairs: set[tuple[int, int]] = set()
    for bond in topology.bonds:
        a, b = bond.atom1, bond.atom2
        if constraints in ("AllBonds", "HAngles") or (
            constraints == "HBonds" and hydrogen in (a.element, b.element)
        ):
            pairs.add((min(a.index, b.index), max(a.index, b.index)))
    if constraints == "HAngles":
        neighbours: dict[int, list[md.core.topology.Atom]] = {a.index: [] for a in topology.atoms}
        for bond in topology.bonds:
            neighbours[bond.atom1.index].append(bond.atom2)
            neighbours[bond.atom2.index].append(bond.atom1)
        for middle in topology.atoms:
            for a, b in itertools.combinations(neighbours[middle.index], 2):
                n_hydrogen = (a.element is hydrogen) + (b.element is hydrogen)
                if n_hydrogen == 2 or (n_hydrogen == 1 and middle.element is md.element.oxygen):
                    pairs.add((min(a.index, b.index), max(a.index, b.index)))
    return sorted(pairs)


def _beads(column: np.ndarray) -> str:
    """Where one atom's force goes: ``"2"`` for all of it to bead 2, else bead: weight."""
    beads = np.flatnonzero(column)
    if len(beads) == 1 and np.isclose(column[beads[0]], 1.0):
        return str(int(beads[0]))
    if not len(beads):
        return "none"
    return "{" + ", ".join(f"{int(b)}: {column[b]:.3g}" for b in beads) + "}"


def check_constraints(
    topology: md.Topology,
    constraints: str | None,
    mapping: Mapping,
    force_map: np.ndarray,
    source: str | os.PathLike[str],
) -> None:
    """Refuse a force map that splits a constrained atom pair between beads.

    Parameters
    ----------
    topology
        The all-atom topology of the reference (bonds included).
    constraints
        What the reference was generated with (one of :data:`CONSTRAINTS`); ``None`` when
        unknown (downloaded data): nothing is checked.
    mapping
        The CG mapping (its name appears in the message).
    force_map
        Xi_f, [n_beads, n_atoms] (dimensionless): the force map that will project.
    source
        The reference trajectory, named in the message.

    Raises
    ------
    InputError
        For the first constrained pair (i < j, sorted) whose atoms do not send their
        forces to the same beads with the same weights, or for constraints this module
        does not know.
    """
    if constraints is None:
        return
    if constraints not in CONSTRAINTS:
        raise InputError(
            f"{source}: the provenance records constraints {constraints!r}; known: "
            f"{list(CONSTRAINTS)}"
        )
    if constraints == "none":
        return
    if topology.n_bonds == 0:
        raise InputError(
            f"{source}: constraints {constraints} were applied, but the topology has no bonds: "
            "cannot tell which atoms they hold together"
        )
    atoms = list(topology.atoms)
    for i, j in constrained_pairs(topology, constraints):
        if not np.allclose(force_map[:, i], force_map[:, j], rtol=0.0, atol=1e-6):
            raise InputError(
                f"{source}: constraints {constraints} hold atoms {i} ({atoms[i]}) and {j} "
                f"({atoms[j]}) together, but mapping {mapping.name!r} puts them in beads "
                f"{_beads(force_map[:, i])} and {_beads(force_map[:, j])}: forces across a "
                "constraint cannot be projected; use constraints HBonds or a map that keeps "
                "constrained atoms in one bead"
            )
