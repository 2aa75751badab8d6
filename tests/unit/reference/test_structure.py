"""Starting structures: peptides built from sequence, PDB repair, and bad input."""

from pathlib import Path

import mdtraj as md
import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest

from cgpipe.forcefields import solvent_files
from cgpipe.io import read_provenance
from cgpipe.reference import prepare_structure
from cgpipe.reference.structure import build_backbone
from cgpipe.residues import STEREOCENTRES, parse_sequence
from cgpipe.sources import resolve_structure
from tests.conftest import ALA2


@pytest.fixture
def params(tiny_reference_params):
    return dict(tiny_reference_params)


def _backbone_trajectory(topology: app.Topology, positions: np.ndarray) -> md.Trajectory:
    return md.Trajectory(positions[None], md.Topology.from_openmm(topology))


@pytest.mark.parametrize(
    ("secondary_structure", "phi", "psi"),
    [("helix", -57.0, -47.0), ("strand", -120.0, 130.0), ("extended", 180.0, 180.0)],
)
def test_built_backbone_has_the_requested_dihedrals(secondary_structure, phi, psi):
    topology, positions = build_backbone("AKAAG", secondary_structure)
    trajectory = _backbone_trajectory(topology, positions)
    _, phis = md.compute_phi(trajectory)
    _, psis = md.compute_psi(trajectory)
    # mdtraj finds phi/psi of residues with both neighbours, caps included.
    wrap = lambda a: (np.degrees(a) + 180.0) % 360.0 - 180.0  # noqa: E731
    assert phis.shape[1] == 5 and psis.shape[1] == 5
    np.testing.assert_allclose(wrap(phis[0] - np.radians(phi)), 0.0, atol=0.5)
    np.testing.assert_allclose(wrap(psis[0] - np.radians(psi)), 0.0, atol=0.5)
    # Consecutive atoms of the trace ACE CH3, C, then N, CA, C per residue, then NME N, C.
    trace = [a.index for a in trajectory.topology.atoms if a.name != "O"]
    lengths = md.compute_distances(trajectory, np.stack([trace[:-1], trace[1:]], axis=1))[0]
    expected = [0.1520, *[0.1329, 0.1458, 0.1525] * 5, 0.1329, 0.1458]
    np.testing.assert_allclose(lengths, expected, atol=1e-4)
    oxygens = trajectory.topology.select("name O")
    carbons = [a.index - 1 for a in trajectory.topology.atoms if a.name == "O"]
    carbonyl = md.compute_distances(trajectory, np.stack([carbons, oxygens], axis=1))[0]
    np.testing.assert_allclose(carbonyl, 0.1231, atol=1e-4)


def test_per_residue_secondary_structure_and_proline():
    topology, positions = build_backbone("GPHE", "HPEC")
    _, phis = md.compute_phi(_backbone_trajectory(topology, positions))
    np.testing.assert_allclose(np.degrees(phis[0, :4]), [-57.0, -65.0, -120.0, 180.0], atol=0.5)
    with pytest.raises(ValueError, match="one letter of HEPC per residue"):
        build_backbone("GPHE", "HH")


def test_chignolin_from_its_sequence(tmp_path, params):
    output = tmp_path / "structure.pdb"
    report = prepare_structure(output, system="cln", params=params, seed=1, sequence="GYDPETGTWG")
    pdb = app.PDBFile(str(output))
    names = [r.name for r in pdb.topology.residues()]
    assert names == ["ACE", *parse_sequence("GYDPETGTWG"), "NME"]
    # Side chains come from pdbfixer's templates; glycines have none to add.
    assert report["heavy_atoms_added"]["TRP 10 (chain A)"][0] == "CB"
    assert not any(key.startswith("GLY") for key in report["heavy_atoms_added"])
    assert report["hydrogens_added"] > 60 and "relaxed" in report
    # Every centre L: pdbfixer had placed Tyr3 and Pro5 as D.
    assert _hands(output) == _l_hands("GYDPETGTWG") and len(_hands(output)) == 9
    assert sum(a.element.symbol == "H" for a in pdb.topology.atoms()) == report["hydrogens_added"]
    record = read_provenance(output)
    assert record["config"]["sequence"] == "GYDPETGTWG"
    assert record["extra"]["preparation"] == report


def _hands(path) -> dict[str, float]:
    """The sign of (a - centre) x (b - centre) . (c - centre) of every stereocentre of a
    structure, keyed "RES index centre", with the substituents each residue's centre has
    in STEREOCENTRES."""
    trajectory = md.load(str(path))
    x = trajectory.xyz[0].astype(np.float64)
    hands = {}
    for residue in trajectory.topology.residues:
        atoms = {atom.name: atom.index for atom in residue.atoms}
        for centre, a, b, c, _ in STEREOCENTRES.get(residue.name, ()):
            if all(name in atoms for name in (centre, a, b, c)):
                o, i, j, k = (x[atoms[n]] for n in (centre, a, b, c))
                hands[f"{residue.name} {residue.resSeq} {centre}"] = np.sign(
                    np.dot(np.cross(i - o, j - o), k - o)
                )
    return hands


def test_the_l_hands_are_those_of_pdbfixers_templates_and_of_a_real_alanine():
    # Independent of our code: pdbfixer's residue templates and openmmtools' alanine
    # dipeptide are L amino acids (THR 2S,3R; ILE 2S,3S).
    import pdbfixer

    templates = Path(pdbfixer.__file__).parent / "templates"
    for name, centres in STEREOCENTRES.items():
        hands = _hands(templates / f"{name}.pdb")
        assert sorted(hands.values()) == sorted(float(c[-1]) for c in centres), name
        assert len(hands) == len(centres)
    assert list(_hands(resolve_structure(ALA2)).values()) == [1.0]


def _l_hands(sequence: str) -> dict[str, float]:
    return {
        f"{name} {k + 2} {centre}": float(sign)
        for k, name in enumerate(parse_sequence(sequence))
        for centre, *_, sign in STEREOCENTRES.get(name, ())
    }


@pytest.mark.parametrize(
    ("sequence", "secondary_structure"), [("AAAAA", "helix"), ("TIPVC", "extended")]
)
def test_peptides_built_from_sequence_are_l_amino_acids(
    tmp_path, params, sequence, secondary_structure
):
    # pdbfixer places many of the side chains it adds to a bare backbone as D (its
    # superposition admits a reflection): an all-alanine helix came out D throughout.
    output = tmp_path / "structure.pdb"
    report = prepare_structure(
        output,
        system="p",
        params=params,
        seed=1,
        sequence=sequence,
        secondary_structure=secondary_structure,
    )
    expected = _l_hands(sequence)
    assert _hands(output) == expected
    assert report["wrong_hands"] == []
    assert set(report["stereocentres_mended"]) <= {
        f"{k} (chain A) {c}"
        for k, c in ((" ".join(key.split()[:2]), key.split()[2]) for key in expected)
    }


def test_a_hand_the_input_gives_is_kept_and_reported(tmp_path, params):
    # D-alanine dipeptide: the mirror image of a complete L structure. Nothing is added,
    # so nothing is mended; the report names the centre.
    pdb = app.PDBFile(str(resolve_structure(ALA2)))
    mirrored = tmp_path / "d_ala2.pdb"
    positions = np.array(pdb.positions.value_in_unit(unit.nanometer)) * [-1.0, 1.0, 1.0]
    with open(mirrored, "w") as handle:
        app.PDBFile.writeFile(pdb.topology, positions * 10.0, handle)  # Å
    output = tmp_path / "structure.pdb"
    report = prepare_structure(output, system="d", params=params, seed=1, structure=str(mirrored))
    assert report["stereocentres_mended"] == []
    assert report["wrong_hands"] == ["ALA 2 (chain A) CA"]
    assert list(_hands(output).values()) == [-1.0]


def test_repair_adds_missing_atoms_and_says_which(tmp_path, params, ala2_structure):
    pdb = app.PDBFile(str(ala2_structure))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.delete(
        [a for a in modeller.topology.atoms() if a.element.symbol == "H" or a.name == "CB"]
    )
    broken = tmp_path / "broken.cif"  # mmCIF input too
    with open(broken, "w") as handle:
        app.PDBxFile.writeFile(modeller.topology, modeller.positions, handle)
    output = tmp_path / "structure.pdb"
    report = prepare_structure(output, system="ala2", params=params, seed=1, structure=str(broken))
    assert report["heavy_atoms_added"] == {"ALA 2 (chain A)": ["CB"]}
    assert report["hydrogens_added"] == 12 and report["n_atoms"] == 22
    assert list(_hands(output).values()) == [1.0] and report["wrong_hands"] == []


def test_a_complete_structure_gets_nothing_added(tmp_path, params):
    report = prepare_structure(
        tmp_path / "s.pdb", system="ala2", params=params, seed=1, structure=ALA2
    )
    assert report["heavy_atoms_added"] == {} and report["hydrogens_added"] == 0


def test_solvent_files_follow_the_force_field():
    assert solvent_files(["amber14-all.xml"], "gbn2") == ["implicit/gbn2.xml"]
    assert solvent_files(["amber14-all.xml"], "tip3p") == ["amber14/tip3p.xml"]
    assert solvent_files(["charmm36.xml"], "tip3p") == ["charmm36/water.xml"]
    assert solvent_files(["amber99sbildn.xml"], "tip3p") == ["tip3p.xml"]
    assert solvent_files(["amber14-all.xml"], "vacuum") == []


# --- bad input: a clear error naming what is wrong, and nothing written ------------------


def test_letters_that_are_not_amino_acids(tmp_path, params):
    with pytest.raises(ValueError, match=r"'X' at position 3 of 'GYXPE' is not an amino acid"):
        prepare_structure(tmp_path / "s.pdb", system="s", params=params, seed=1, sequence="GYXPE")
    with pytest.raises(ValueError, match="'1' at position 2"):
        parse_sequence("A1")
    assert not (tmp_path / "s.pdb").exists()


def test_a_pdb_with_no_atoms(tmp_path, params):
    empty = tmp_path / "empty.pdb"
    empty.write_text("HEADER    NOTHING\nEND\n")
    with pytest.raises(ValueError, match=f"{empty}: the structure holds no atoms"):
        prepare_structure(
            tmp_path / "s.pdb", system="s", params=params, seed=1, structure=str(empty)
        )
    assert not (tmp_path / "s.pdb").exists()


def test_an_unknown_residue_is_named(tmp_path, params, ala2_structure):
    text = ala2_structure.read_text().replace("NME", "XYZ")
    odd = tmp_path / "odd.pdb"
    odd.write_text(text)
    with pytest.raises(ValueError, match=r"odd.pdb: unknown residue XYZ 3 \(chain"):
        prepare_structure(tmp_path / "s.pdb", system="s", params=params, seed=1, structure=str(odd))
    assert not (tmp_path / "s.pdb").exists()


def test_a_residue_without_a_template_is_named(tmp_path, params, ala2_structure):
    # An extra atom in ALA: pdbfixer keeps it, and no template of the force field matches.
    lines = ala2_structure.read_text().splitlines()
    cb = next(line for line in lines if line[12:16].strip() == "CB")
    extra = cb[:12] + " CX " + cb[16:30] + f"{float(cb[30:38]) + 1.5:8.3f}" + cb[38:]
    at = lines.index(cb) + 1
    bad = tmp_path / "bad.pdb"
    bad.write_text("\n".join([*lines[:at], extra, *lines[at:]]) + "\n")
    with pytest.raises(ValueError, match=r"bad.pdb: force field .* No template found for residue"):
        prepare_structure(tmp_path / "s.pdb", system="s", params=params, seed=1, structure=str(bad))
    assert not (tmp_path / "s.pdb").exists()


def test_a_structure_prepared_twice_from_one_sequence_is_the_same(tmp_path):
    """OpenMM places new hydrogens at random before minimising them: cgpipe seeds that
    draw from the system's seed, so a rerun reproduces the structure, and another seed
    gives another start."""
    from cgpipe.config import load_config
    from cgpipe.reference import prepare_structure

    params = {**load_config(None)["reference"], "solvent": "vacuum"}
    written = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        path = tmp_path / f"{name}.pdb"
        prepare_structure(path, system="x", params=params, seed=seed, sequence="AAA")
        written.append([line for line in path.read_text().splitlines() if line.startswith("ATOM")])
    assert written[0] == written[1]
    assert written[0] != written[2]
