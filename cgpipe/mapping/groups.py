"""Maps from groups of atoms: the one place a :class:`Mapping` table is assembled.

Every mapping method reduces to a list of beads, each a group of atoms with coordinate
weights (its row of Xi), a force weight of 1 on each of its atoms (basic aggregation),
a name, a type and an anchor atom that gives the bead its residue and element.
:func:`assemble` builds the table and the CG topology from that; :func:`group_mapping`
does it for a partition whose beads sit at their groups' centres of mass (or geometry),
as the data-driven maps (k-means, Autograin) and a user's map file produce.

The helpers keep a learned partition physical: :func:`attach_hydrogens` puts every
hydrogen in its heavy atom's bead (so bond constraints to hydrogen never cross a bead
boundary), :func:`make_connected` moves the atoms of a disconnected piece of a bead to
the bonded bead its caller prefers, so that every bead is a bonded group of atoms.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.mapping.base import Mapping

CENTRES = ("mass", "geometry")
"""Where a group's bead sits: its centre of mass or its centre of geometry."""


def neighbours(topology: md.Topology) -> dict[int, list[int]]:
    """Atom index -> the indices of the atoms bonded to it."""
    bonded: dict[int, list[int]] = {atom.index: [] for atom in topology.atoms}
    for bond in topology.bonds:
        bonded[bond.atom1.index].append(bond.atom2.index)
        bonded[bond.atom2.index].append(bond.atom1.index)
    return bonded


def components(bonded: dict[int, list[int]], atoms: Sequence[int]) -> list[list[int]]:
    """The connected pieces of ``atoms`` in the bond graph, largest first (ties: the one
    with the lowest atom), each sorted."""
    inside, seen, pieces = set(atoms), set(), []
    for start in sorted(inside):
        if start in seen:
            continue
        piece, queue = [], collections.deque([start])
        seen.add(start)
        while queue:
            atom = queue.popleft()
            piece.append(atom)
            for other in bonded[atom]:
                if other in inside and other not in seen:
                    seen.add(other)
                    queue.append(other)
        pieces.append(sorted(piece))
    return sorted(pieces, key=lambda piece: (-len(piece), piece[0]))


def atom_masses(topology: md.Topology) -> np.ndarray:
    """[n_atoms] atomic masses in amu."""
    return np.array([atom.element.mass for atom in topology.atoms], dtype=np.float64)


def heavy_atoms(topology: md.Topology) -> np.ndarray:
    """Indices of the atoms that are not hydrogen, in topology order."""
    return np.array(
        [a.index for a in topology.atoms if a.element is not md.element.hydrogen], dtype=np.int64
    )


def attach_hydrogens(topology: md.Topology, heavy_labels: dict[int, int]) -> np.ndarray:
    """[n_atoms] bead labels: each heavy atom's from ``heavy_labels``, each hydrogen its
    bonded heavy atom's.

    A hydrogen bonded to no labelled heavy atom is an input error naming it.
    """
    labels = np.full(topology.n_atoms, -1, dtype=np.int64)
    for atom, label in heavy_labels.items():
        labels[atom] = label
    bonded = neighbours(topology)
    for atom in topology.atoms:
        if atom.element is md.element.hydrogen:
            owners = [labels[other] for other in bonded[atom.index] if labels[other] >= 0]
            if not owners:
                raise InputError(f"hydrogen {atom} is bonded to no heavy atom of the map")
            labels[atom.index] = owners[0]
    return labels


def make_connected(
    topology: md.Topology,
    labels: np.ndarray,
    preference: Callable[[int, list[int]], int],
) -> np.ndarray:
    """Labels in which every bead is a bonded group of atoms.

    Each bead keeps its largest connected piece; every other piece moves, whole, to a bead
    bonded to it (``preference(atom, candidates)`` picks among the candidate labels for
    the piece's first atom: the nearest centroid for k-means, the most probable bead for
    a learned map). Repeats until no bead is split. Atoms labelled -1 are left alone.

    Parameters
    ----------
    topology
        The all-atom topology (bonds included).
    labels
        [n_atoms] bead of each atom (0 … n_beads - 1, or -1 for no bead).
    preference
        Chooses a label from a non-empty list of candidates.

    Returns
    -------
    numpy.ndarray
        [n_atoms] the repaired labels (a copy); a bead that loses every atom is an error.
    """
    labels = labels.copy()
    bonded = neighbours(topology)
    n_beads = int(labels.max()) + 1
    for _ in range(topology.n_atoms):
        moved = False
        for bead in range(n_beads):
            pieces = components(bonded, np.flatnonzero(labels == bead).tolist())
            for piece in pieces[1:]:
                inside = set(piece)
                candidates = sorted(
                    {
                        int(labels[other])
                        for atom in piece
                        for other in bonded[atom]
                        if other not in inside and labels[other] >= 0 and labels[other] != bead
                    }
                )
                if not candidates:  # a separate molecule: it stays
                    continue
                labels[piece] = preference(piece[0], candidates)
                moved = True
        if not moved:
            break
    empty = sorted(set(range(n_beads)) - set(labels[labels >= 0].tolist()))
    if empty:
        raise ValueError(f"beads {empty} lost every atom while being made connected")
    return labels


def bonds_between_groups(
    topology: md.Topology, groups: Sequence[Sequence[int]]
) -> list[tuple[int, int]]:
    """Bead pairs (i < j) joined by at least one atomic bond."""
    bead_of = {atom: bead for bead, group in enumerate(groups) for atom in group}
    pairs = set()
    for bond in topology.bonds:
        i, j = bead_of.get(bond.atom1.index), bead_of.get(bond.atom2.index)
        if i is not None and j is not None and i != j:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def hill_formula(atoms: Sequence[md.core.topology.Atom]) -> str:
    """The Hill formula of a group of atoms (C, then H, then the others alphabetically)."""
    counts = collections.Counter(atom.element.symbol for atom in atoms)
    order = [s for s in ("C", "H") if s in counts] if "C" in counts else []
    order += sorted(s for s in counts if s not in order)
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


def assemble(
    name: str,
    topology: md.Topology,
    groups: Sequence[Sequence[int]],
    weights: Sequence[np.ndarray],
    bead_names: Sequence[str],
    type_names: Sequence[str],
    anchors: Sequence[int],
    bonds: Sequence[tuple[int, int]],
    force_weights: Sequence[np.ndarray] | None = None,
) -> Mapping:
    """The mapping table and CG topology of beads given as groups of atoms.

    Parameters
    ----------
    name
        The mapping's name.
    topology
        The all-atom topology.
    groups
        Per bead, its atoms (no atom in two beads; beads with ascending residues).
    weights
        Per bead, the coordinate weight of each of its atoms (summing to 1).
    bead_names, type_names
        Per bead, its name and the name that decides its type (equal names, one type).
    anchors
        Per bead, the atom whose residue and element the bead takes in the CG topology.
    bonds
        Bonded bead pairs of the CG topology.
    force_weights
        Per bead, the force weight of each of its atoms; ``None``: 1 for every atom of the
        group (aggregation).

    A bead whose residue differs from the previous bead's opens a new CG residue, so the
    CG topology's atom order is the bead order however the beads are ordered.
    """
    atoms = list(topology.atoms)
    types = sorted(set(type_names))
    if force_weights is None:
        force_weights = [np.ones(len(group)) for group in groups]
    rows = []
    cg = md.Topology()
    chain, cg_residue, last = None, None, None
    for bead, group in enumerate(groups):
        anchor = atoms[anchors[bead]]
        residue = anchor.residue
        mass = float(sum(atoms[m].element.mass for m in group))
        for member, w, fw in zip(group, weights[bead], force_weights[bead], strict=True):
            rows.append(
                {
                    keys.BEAD: bead,
                    keys.ATOM: int(member),
                    keys.WEIGHT: float(w),
                    keys.FORCE_WEIGHT: float(fw),
                    keys.BEAD_NAME: bead_names[bead],
                    keys.BEAD_TYPE: types.index(type_names[bead]),
                    keys.BEAD_MASS: mass,
                    keys.RESIDUE_INDEX: residue.index,
                    keys.RESIDUE_NAME: residue.name,
                    keys.RESIDUE_SEQ: residue.resSeq,
                }
            )
        if last is None or residue.chain.index != last.chain.index:
            chain = cg.add_chain(chain_id=residue.chain.chain_id)
        if residue is not last:
            cg_residue = cg.add_residue(residue.name, chain, resSeq=residue.resSeq)
        last = residue
        cg.add_atom(bead_names[bead], anchor.element, cg_residue)
    cg_atoms = list(cg.atoms)
    for i, j in bonds:
        cg.add_bond(cg_atoms[i], cg_atoms[j])
    mapping = Mapping(name=name, n_atoms=topology.n_atoms, table=pd.DataFrame(rows), topology=cg)
    mapping.check()
    return mapping


def group_mapping(
    name: str, topology: md.Topology, labels: np.ndarray, centre: str = "mass"
) -> Mapping:
    """A map whose beads are the groups of equal ``labels``, each at its centre of mass or
    of geometry, its forces aggregated; beads ordered along the sequence.

    A bead is named by its residue and number (``B<n>``), and typed by its Hill formula
    (beads of one composition are one type). The CG bonds are the bead pairs joined by an
    atomic bond.

    Parameters
    ----------
    labels
        [n_atoms] the bead of each atom (any integers; -1: the atom is in no bead).
    centre
        ``"mass"`` or ``"geometry"``.
    """
    if centre not in CENTRES:
        raise InputError(f"mapping {name!r}: centre must be one of {list(CENTRES)}, got {centre!r}")
    labels = np.asarray(labels)
    if labels.shape != (topology.n_atoms,):
        raise ValueError(f"labels have shape {labels.shape}, expected ({topology.n_atoms},)")
    atoms = list(topology.atoms)
    found = [np.flatnonzero(labels == label).tolist() for label in np.unique(labels[labels >= 0])]
    if len(found) < 2:
        raise InputError(f"mapping {name!r}: {len(found)} beads, need at least 2")

    def residue_of(group: list[int]) -> int:
        mass: dict[int, float] = collections.defaultdict(float)
        for atom in group:
            mass[atoms[atom].residue.index] += atoms[atom].element.mass
        return max(sorted(mass), key=lambda r: mass[r])

    groups = sorted(found, key=lambda group: (residue_of(group), group[0]))
    anchors = []
    for group in groups:
        home = residue_of(group)
        inside = [a for a in group if atoms[a].residue.index == home]
        anchors.append(max(inside, key=lambda a: (atoms[a].element.mass, -a)))
    masses = atom_masses(topology) if centre == "mass" else np.ones(topology.n_atoms)
    weights = [masses[group] / masses[group].sum() for group in groups]
    return assemble(
        name,
        topology,
        groups,
        weights,
        [f"B{bead}" for bead in range(len(groups))],
        [hill_formula([atoms[a] for a in group]) for group in groups],
        anchors,
        bonds_between_groups(topology, groups),
    )
