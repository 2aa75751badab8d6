"""Starting structures for reference simulations: found, built, repaired, solvated.

A system's structure comes from a file shipped with a package, a PDB or mmCIF file,
or a one-letter sequence. A sequence is built as an ACE/NME-capped peptide: its
backbone heavy atoms from internal coordinates (bond lengths and angles of Engh &
Huber, the chosen phi/psi, trans peptide bonds) placed atom by atom with the natural
extension reference frame (NeRF). Side chains, missing heavy atoms and hydrogens are
then added by pdbfixer from its residue templates, for a built peptide and a repaired
PDB alike, and the provenance lists what was added. Explicit water (TIP3P, with
neutralising ions and NaCl) is added by OpenMM's Modeller.

Stereocentres. pdbfixer superimposes its templates without excluding a reflection, and
refines what it added in a soft potential that has no hand (openmm/pdbfixer issue 352):
of the side chains it adds to a bare backbone, many come out D. Built from its sequence,
chignolin had a D Tyr3 and Pro5, and a helical penta-alanine was D throughout. Every
stereocentre whose substituents pdbfixer placed is therefore set to the L amino acid's
hand (:data:`~cgpipe.residues.STEREOCENTRES`) before the hydrogens are added, by
reflecting the atoms beyond it through the plane of its other two substituents; a hand
the input gave is kept and reported. A built peptide whose relaxed structure still has a
centre of the wrong hand is refused.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from cgpipe.errors import InputError
from cgpipe.forcefields import all_files
from cgpipe.geometry import chiral_volumes
from cgpipe.io import Provenance, write_structure
from cgpipe.residues import CAPS, ONE_LETTER, parse_sequence, stereocentres
from cgpipe.sources import resolve_structure

log = logging.getLogger(__name__)

# phi, psi in degrees per secondary-structure letter.
BACKBONE_ANGLES = {
    "H": (-57.0, -47.0),  # right-handed alpha helix
    "E": (-120.0, 130.0),  # beta strand
    "P": (-75.0, 145.0),  # polyproline II
    "C": (180.0, 180.0),  # fully extended
}
_KEYWORDS = {"extended": "C", "helix": "H", "strand": "E", "polyproline": "P"}
# Proline's ring holds phi near -65 degrees whatever the requested structure.
_PROLINE_PHI = -65.0
# Backbone geometry (Engh & Huber 1991), nm and degrees.
_N_CA, _CA_C, _C_N, _C_O, _CH3_C = 0.1458, 0.1525, 0.1329, 0.1231, 0.1520
_N_CA_C, _CA_C_N, _C_N_CA = 111.2, 116.2, 121.7
_OMEGA = 180.0

CONSTRAINTS = {
    "none": None,
    "HBonds": app.HBonds,
    "AllBonds": app.AllBonds,
    "HAngles": app.HAngles,
}

WATER_AND_IONS = {"HOH", "WAT", "TIP3", "SOL", "NA", "CL", "K", "MG", "CA", "ZN", "Na+", "Cl-"}
# Residue names pdbfixer and the Amber/CHARMM templates know, protonation variants too.
KNOWN_RESIDUES = (
    set(ONE_LETTER.values())
    | set(CAPS)
    | {"HID", "HIE", "HIP", "HSD", "HSE", "HSP", "CYX", "ASH", "GLH", "LYN", "CYM"}
)


def load_structure(path: Path) -> tuple[app.Topology, Any]:
    """Topology and positions of a PDB or mmCIF file, refusing one without atoms."""
    is_cif = path.suffix.lower() in (".cif", ".mmcif", ".pdbx")
    if not is_cif and not any(line.startswith(("ATOM", "HETATM")) for line in open(path)):
        raise InputError(f"{path}: the structure holds no atoms (no ATOM or HETATM record)")
    try:
        structure = app.PDBxFile(str(path)) if is_cif else app.PDBFile(str(path))
    except Exception as error:  # OpenMM's parsers raise assorted types on malformed files
        raise InputError(f"{path}: cannot read the structure ({error})") from error
    if structure.topology.getNumAtoms() == 0:
        raise InputError(f"{path}: the structure holds no atoms")
    return structure.topology, structure.positions


def _place(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float):
    """Position of atom d with |cd| = bond, angle bcd and torsion abcd in degrees (NeRF)."""
    angle, torsion = np.radians(angle), np.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    normal = np.cross(b - a, bc)
    normal /= np.linalg.norm(normal)
    frame = np.stack([bc, np.cross(normal, bc), normal], axis=1)
    local = bond * np.array(
        [-np.cos(angle), np.sin(angle) * np.cos(torsion), np.sin(angle) * np.sin(torsion)]
    )
    return c + frame @ local


def backbone_angles(n_residues: int, secondary_structure: str) -> list[tuple[float, float]]:
    """(phi, psi) in degrees of each residue for a keyword or a per-residue letter string."""
    letters = secondary_structure
    if secondary_structure in _KEYWORDS:
        letters = _KEYWORDS[secondary_structure] * n_residues
    if len(letters) != n_residues or any(x not in BACKBONE_ANGLES for x in letters):
        raise InputError(
            f"secondary structure {secondary_structure!r}: give one of {sorted(_KEYWORDS)} or "
            f"one letter of {''.join(BACKBONE_ANGLES)} per residue ({n_residues} residues)"
        )
    return [BACKBONE_ANGLES[x] for x in letters]


def build_backbone(
    sequence: str, secondary_structure: str = "extended"
) -> tuple[app.Topology, np.ndarray]:
    """Heavy backbone atoms of ACE-sequence-NME (N, CA, C, O per residue), nm.

    The side chains and hydrogens are left to :func:`repair`.
    """
    names = parse_sequence(sequence)
    angles = backbone_angles(len(names), secondary_structure)
    # The backbone trace: ACE CH3 and C, then N, CA, C per residue, then NME N and C.
    ch3 = np.zeros(3)
    c_ace = np.array([_CH3_C, 0.0, 0.0])
    n_first = c_ace + _C_N * np.array(
        [-np.cos(np.radians(_CA_C_N)), np.sin(np.radians(_CA_C_N)), 0.0]
    )
    trace = [ch3, c_ace, n_first]
    psi_previous = 180.0  # the ACE "psi" that orients the first N
    for k, (phi, psi) in enumerate(angles):
        if names[k] == "PRO":
            phi = _PROLINE_PHI
        if k > 0:
            trace.append(_place(trace[-3], trace[-2], trace[-1], _C_N, _CA_C_N, psi_previous))
        trace.append(_place(trace[-3], trace[-2], trace[-1], _N_CA, _C_N_CA, _OMEGA))
        trace.append(_place(trace[-3], trace[-2], trace[-1], _CA_C, _N_CA_C, phi))
        psi_previous = psi
    trace.append(_place(trace[-3], trace[-2], trace[-1], _C_N, _CA_C_N, psi_previous))
    trace.append(_place(trace[-3], trace[-2], trace[-1], _N_CA, _C_N_CA, _OMEGA))

    def carbonyl_oxygen(ca: np.ndarray, c: np.ndarray, n_next: np.ndarray) -> np.ndarray:
        # sp2 carbon: O lies opposite the bisector of its bonds to CA and to the next N.
        away = (c - ca) / np.linalg.norm(c - ca) + (c - n_next) / np.linalg.norm(c - n_next)
        return c + _C_O * away / np.linalg.norm(away)

    topology = app.Topology()
    chain = topology.addChain("A")
    positions: list[np.ndarray] = []
    elements = app.element

    def add(residue: app.Residue, name: str, element: app.Element, xyz: np.ndarray) -> None:
        topology.addAtom(name, element, residue)
        positions.append(xyz)

    ace = topology.addResidue("ACE", chain, "1")
    add(ace, "CH3", elements.carbon, trace[0])
    add(ace, "C", elements.carbon, trace[1])
    add(ace, "O", elements.oxygen, carbonyl_oxygen(trace[0], trace[1], trace[2]))
    for k, name in enumerate(names):
        n, ca, c, n_next = trace[2 + 3 * k : 6 + 3 * k]
        residue = topology.addResidue(name, chain, str(k + 2))
        add(residue, "N", elements.nitrogen, n)
        add(residue, "CA", elements.carbon, ca)
        add(residue, "C", elements.carbon, c)
        add(residue, "O", elements.oxygen, carbonyl_oxygen(ca, c, n_next))
    nme = topology.addResidue("NME", chain, str(len(names) + 2))
    add(nme, "N", elements.nitrogen, trace[-2])
    add(nme, "C", elements.carbon, trace[-1])
    return topology, np.array(positions)


# Forces that a doubled force-field file would double: each must appear at most once
# (HarmonicBondForce is left out: CHARMM's Urey-Bradley terms add a second one).
_SINGLE_FORCES = (
    "NonbondedForce",
    "HarmonicAngleForce",
    "PeriodicTorsionForce",
    "CMAPTorsionForce",
)
# The forces an implicit solvent adds: one for obc2/gbn2, none otherwise.
_IMPLICIT_SOLVENT_FORCES = ("GBSAOBCForce", "CustomGBForce", "AmoebaGeneralizedKirkwoodForce")


def load_forcefield(params: dict[str, Any]) -> app.ForceField:
    """The solute's force-field files plus the solvent's, each once."""
    files = forcefield_files(params)
    try:
        return app.ForceField(*files)
    except (ValueError, OSError) as error:
        raise InputError(f"reference.forcefield: cannot load {files}: {error}") from error


def forcefield_files(params: dict[str, Any]) -> list[str]:
    """What :func:`load_forcefield` loads for a ``reference`` section."""
    return all_files(params["forcefield"], params["solvent"])


def force_classes(system: openmm.System) -> list[str]:
    """Class names of a system's forces, in the system's order."""
    return [type(force).__name__ for force in system.getForces()]


def check_system(system: openmm.System, params: dict[str, Any], source: str) -> list[str]:
    """Refuse a system whose forces betray a doubled or missing term; return its force classes.

    An implicit solvent must contribute exactly one generalised-Born force, vacuum and
    explicit water none, and no solute force that a force-field file adds once may
    appear twice.
    """
    classes = force_classes(system)
    counts = collections.Counter(classes)
    implicit = sum(counts[name] for name in _IMPLICIT_SOLVENT_FORCES)
    expected = 1 if params["solvent"] in ("obc2", "gbn2") else 0
    doubled = [name for name in _SINGLE_FORCES if counts[name] > 1]
    if implicit != expected or doubled:
        what = f"{implicit} implicit-solvent forces (expected {expected})"
        if doubled:
            what += f", {', '.join(doubled)} more than once"
        raise InputError(
            f"{source}: the OpenMM system built from {forcefield_files(params)} with solvent "
            f"{params['solvent']} holds {what}; forces: {classes}"
        )
    return classes


def _preparation_platform() -> openmm.Platform:
    """The CPU platform on one thread, for the minimisations of preparation.

    Threads sum forces in a varying order; the minimiser amplifies the last-bit
    differences into a different structure. Preparation is short, so one thread buys a
    structure that is the same on every run of the same seed on the same machine.
    """
    platform = openmm.Platform.getPlatformByName("CPU")
    platform.setPropertyDefaultValue("Threads", "1")
    return platform


@contextlib.contextmanager
def _seeded_random(seed: int) -> Iterator[None]:
    """Python's global ``random`` seeded for the block, its state restored after.

    OpenMM's Modeller draws from it without a seed of its own: new hydrogens start at
    random positions before their minimisation, and ions replace randomly chosen
    waters. Without this a structure built twice from one sequence differs.
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _describe(residue: Any) -> str:
    return f"{residue.name} {residue.id} (chain {residue.chain.id})"


def repair(
    topology: app.Topology, positions: Any, source: str, *, pH: float, seed: int
) -> tuple[app.Topology, Any, dict[str, Any]]:
    """Add missing heavy atoms and hydrogens with pdbfixer; report what was added or removed.

    Water and ions are removed (explicit water is added afresh). Residues are not added
    where the chain has gaps: the structure must be complete in residues.

    Raises
    ------
    ValueError
        For a residue that is neither a standard amino acid nor a cap, naming it.
    """
    import pdbfixer

    removed = [r for r in topology.residues() if r.name in WATER_AND_IONS]
    for residue in topology.residues():
        if residue.name not in KNOWN_RESIDUES and residue.name not in WATER_AND_IONS:
            raise InputError(
                f"{source}: unknown residue {_describe(residue)}: cgpipe builds the 20 standard "
                f"amino acids and ACE/NME caps; remove or replace it"
            )
    # Not pdbfixer's removeHeterogens: it would take the ACE/NME caps for heterogens.
    modeller = app.Modeller(topology, positions)
    modeller.delete(removed)
    buffer = io.StringIO()
    app.PDBFile.writeFile(modeller.topology, modeller.positions, buffer, keepIds=True)
    buffer.seek(0)
    fixer = pdbfixer.PDBFixer(pdbfile=buffer)
    fixer.platform = _preparation_platform()
    fixer.missingResidues = {}
    fixer.findMissingAtoms()
    heavy = {
        _describe(residue): [atom.name for atom in atoms]
        for residue, atoms in fixer.missingAtoms.items()
    }
    for residue, atoms in fixer.missingTerminals.items():
        heavy.setdefault(_describe(residue), []).extend(atoms)
    added = {
        residue.index: {atom.name for atom in atoms}
        for residue, atoms in fixer.missingAtoms.items()
    }
    fixer.addMissingAtoms(seed=seed)
    fixer.positions, mended = mend_stereocentres(fixer.topology, fixer.positions, added)
    n_before = fixer.topology.getNumAtoms()
    with _seeded_random(seed):
        fixer.addMissingHydrogens(pH)
    report = {
        "heavy_atoms_added": heavy,
        "hydrogens_added": fixer.topology.getNumAtoms() - n_before,
        "residues_removed": [_describe(r) for r in removed],
        "stereocentres_mended": mended,
        "pH": pH,
    }
    return fixer.topology, fixer.positions, report


def _stereocentres(topology: app.Topology) -> list[tuple[Any, str, tuple[int, ...], int]]:
    """(residue, centre name, atom indices (centre, a, b, c), L sign) of every stereocentre
    of :data:`~cgpipe.residues.STEREOCENTRES` whose four atoms the topology has."""
    residues = list(topology.residues())
    named = [(r.name, {atom.name: atom.index for atom in r.atoms()}) for r in residues]
    return [
        (residues[position], name, atoms, sign)
        for position, name, atoms, sign in stereocentres(named)
    ]


def _hand(x: np.ndarray, centre: int, a: int, b: int, c: int) -> float:
    return float(chiral_volumes(x, np.array([[centre, a, b, c]]))[0])


def wrong_hands(topology: app.Topology, positions: Any) -> list[str]:
    """The stereocentres (``"THR 7 (chain A) CB"``) whose hand is not the L amino acid's."""
    x = np.asarray(positions.value_in_unit(unit.nanometer))
    return [
        f"{_describe(residue)} {name}"
        for residue, name, atoms, sign in _stereocentres(topology)
        if _hand(x, *atoms) * sign < 0
    ]


def mend_stereocentres(
    topology: app.Topology, positions: Any, added: dict[int, set[str]]
) -> tuple[Any, list[str]]:
    """Positions with every stereocentre whose moving atoms were all added (``added``:
    residue index -> names of the atoms pdbfixer placed) set to the L hand, and the
    centres mended. A centre's moving atoms are its substituent c and everything bonded
    beyond it (not through the centre, a or b); they are reflected through the plane of
    the centre, a and b, which turns the centre's hand and keeps every distance to those
    three atoms (a proline ring stays bonded to its N). CA comes first: reflecting a side
    chain turns the centres within it too."""
    x = np.array(positions.value_in_unit(unit.nanometer), dtype=np.float64)
    neighbours: dict[int, list[int]] = collections.defaultdict(list)
    for bond in topology.bonds():
        neighbours[bond[0].index].append(bond[1].index)
        neighbours[bond[1].index].append(bond[0].index)
    names = {atom.index: atom.name for atom in topology.atoms()}
    mended = []
    for residue, name, (centre, a, b, c), sign in _stereocentres(topology):
        if _hand(x, centre, a, b, c) * sign >= 0:
            continue
        moving, todo = {c}, [c]
        while todo:
            for other in neighbours[todo.pop()]:
                if other not in moving and other not in (centre, a, b):
                    moving.add(other)
                    todo.append(other)
        if not {names[i] for i in moving} <= added.get(residue.index, set()):
            continue  # a hand the input gave
        normal = np.cross(x[a] - x[centre], x[b] - x[centre])
        normal /= np.linalg.norm(normal)
        rows = sorted(moving)
        x[rows] -= 2.0 * ((x[rows] - x[centre]) @ normal)[:, None] * normal
        mended.append(f"{_describe(residue)} {name}")
    return [openmm.Vec3(*row) for row in x] * unit.nanometer, mended


def _minimise(topology: app.Topology, positions: Any, forcefield: app.ForceField) -> Any:
    """Relax a built structure: no constraints (bond lengths relax too), to 10 kJ/mol/nm."""
    system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), _preparation_platform())
    context.setPositions(positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 5000)
    return context.getState(getPositions=True).getPositions()


def create_system(
    topology: app.Topology, forcefield: app.ForceField, params: dict[str, Any], source: str
) -> openmm.System:
    """The OpenMM system of a prepared structure, naming a residue without a template."""
    explicit = params["solvent"] == "tip3p"
    try:
        system = forcefield.createSystem(
            topology,
            nonbondedMethod=app.PME if explicit else app.NoCutoff,
            nonbondedCutoff=params["nonbonded_cutoff"] * unit.nanometer,
            constraints=CONSTRAINTS[params["constraints"]],
            rigidWater=True,
        )
    except ValueError as error:
        # OpenMM names the residue ("No template found for residue 3 (XYZ) ...").
        raise InputError(
            f"{source}: force field {params['forcefield']} + {params['solvent']} cannot "
            f"parametrise it: {error}"
        ) from error
    check_system(system, params, source)
    return system


def prepare_structure(
    output: str | os.PathLike[str],
    *,
    system: str,
    params: dict[str, Any],
    seed: int,
    structure: str | None = None,
    sequence: str | None = None,
    secondary_structure: str = "extended",
) -> dict[str, Any]:
    """Build or repair, protonate, relax (built peptides) and solvate one system's structure.

    Writes ``output`` (PDB with provenance) and returns the preparation report.
    """
    if (structure is None) == (sequence is None):
        raise InputError(f"system {system}: give exactly one of a structure and a sequence")
    forcefield = load_forcefield(params)
    inputs: list[Path] = []
    if sequence is not None:
        source = f"system {system}, sequence {sequence}"
        topology, positions = build_backbone(sequence, secondary_structure)
        positions = positions * unit.nanometer
        origin = {"sequence": sequence.upper(), "secondary_structure": secondary_structure}
    else:
        path = resolve_structure(structure)
        source = str(path)
        topology, positions = load_structure(path)
        inputs.append(path)
        origin = {"structure": structure}
    topology, positions, report = repair(topology, positions, source, pH=params["pH"], seed=seed)
    # A parametrisation check before any water is added, so an error names solute residues.
    in_vacuum = {**params, "solvent": "vacuum"}
    create_system(topology, load_forcefield(in_vacuum), in_vacuum, source)
    if sequence is not None:
        # In implicit solvent where there is one: vacuum would collapse charged side chains.
        relax_in = "vacuum" if params["solvent"] == "tip3p" else params["solvent"]
        positions = _minimise(topology, positions, load_forcefield({**params, "solvent": relax_in}))
        report["relaxed"] = f"energy minimised in {relax_in}, no constraints"
    report["wrong_hands"] = wrong_hands(topology, positions)
    if report["wrong_hands"] and sequence is not None:
        raise RuntimeError(
            f"{source}: built with the wrong hand at {', '.join(report['wrong_hands'])}"
        )
    if report["wrong_hands"]:
        log.warning(
            "%s: stereocentres of the D hand, as the input gives them: %s",
            source,
            ", ".join(report["wrong_hands"]),
        )
    if params["solvent"] == "tip3p":
        modeller = app.Modeller(topology, positions)
        with _seeded_random(seed):
            modeller.addSolvent(
                forcefield,
                model="tip3p",
                padding=params["solvent_padding"] * unit.nanometer,
                ionicStrength=params["ionic_strength"] * unit.molar,
                neutralize=True,
            )
        n_water = sum(1 for r in modeller.topology.residues() if r.name == "HOH")
        report["water_molecules"] = n_water
        report["ions"] = sum(
            1 for r in modeller.topology.residues() if r.name in WATER_AND_IONS - {"HOH"}
        )
        topology, positions = modeller.topology, modeller.positions
    report["n_atoms"] = topology.getNumAtoms()
    log.info("system %s prepared: %s", system, report)
    keys = ("forcefield", "solvent", "pH", "solvent_padding", "ionic_strength")
    provenance = Provenance(
        stage="reference",
        config={"system": system, **origin, **{k: params[k] for k in keys}},
        inputs=inputs,
        seed=seed,
        extra={"preparation": report, "forcefield_files": forcefield_files(params)},
    )
    write_structure(output, topology, positions, provenance)
    return report
