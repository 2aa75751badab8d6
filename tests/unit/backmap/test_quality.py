"""Quality metrics on hand-built structures whose answers are known, and on the
alanine-dipeptide structure (L-alanine, no clashes)."""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from cgpipe.backmap import quality
from cgpipe.backmap.quality import Geometry


def chain(elements: str) -> md.Topology:
    """A linear chain of atoms (one letter per element: C or H) bonded in order."""
    topology = md.Topology()
    residue = topology.add_residue("TOY", topology.add_chain())
    atoms = [
        topology.add_atom(f"A{i}", md.element.get_by_symbol(symbol), residue)
        for i, symbol in enumerate(elements)
    ]
    for a, b in zip(atoms[:-1], atoms[1:], strict=True):
        topology.add_bond(a, b)
    return topology


def centre(names: tuple[str, ...] = ("CA", "N", "C", "CB")) -> md.Topology:
    topology = md.Topology()
    residue = topology.add_residue("ALA", topology.add_chain())
    for name in names:
        topology.add_atom(name, md.element.get_by_symbol(name[0]), residue)
    return topology


# CORN rule: seen with H towards the viewer (+z), CO, R (CB), N run clockwise: L.
H = 1.0 / 3.0
L_CENTRE = np.array(
    [[0.0, 0.0, 0.0], [-0.866, -0.5, -H], [0.0, 1.0, -H], [0.866, -0.5, -H]]
)  # CA, N, C, CB


@pytest.fixture(scope="module")
def ala2(ala2_structure: Path, tmp_path_factory) -> md.Trajectory:
    """Alanine dipeptide, written out as PDB by openmm and read back by mdtraj."""
    import openmm.app

    source = openmm.app.PDBFile(str(ala2_structure))
    path = tmp_path_factory.mktemp("ala2") / "ala2.pdb"
    with open(path, "w") as handle:
        openmm.app.PDBFile.writeFile(source.topology, source.positions, handle)
    return md.load(str(path))


def test_geometry_of_a_chain():
    geometry = Geometry.from_topology(chain("CCCCC"))
    np.testing.assert_array_equal(geometry.bonds, [[0, 1], [1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(
        sorted(map(tuple, geometry.angles)), [(0, 1, 2), (1, 2, 3), (2, 3, 4)]
    )
    np.testing.assert_array_equal(geometry.heavy, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(geometry.clash_pairs, [[0, 3], [0, 4], [1, 4]])
    assert geometry.chiral.shape == (0, 4)


def test_hydrogens_are_neither_heavy_nor_clash_pairs():
    geometry = Geometry.from_topology(chain("CCCCH"))
    np.testing.assert_array_equal(geometry.heavy, [0, 1, 2, 3])
    np.testing.assert_array_equal(geometry.clash_pairs, [[0, 3]])


def test_bond_fraction_and_angle_deviation_of_a_right_angle():
    geometry = Geometry.from_topology(chain("CCC"))
    positions = np.array([[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.15, 0.0]]])
    np.testing.assert_allclose(quality.bond_lengths(positions, geometry), [[0.1, 0.15]])
    assert quality.bond_fraction(positions, geometry, [0.1, 0.1]) == pytest.approx([0.5])
    assert quality.bond_fraction(positions, geometry, [0.1, 0.1], tolerance=0.5) == [1.0]
    np.testing.assert_allclose(quality.bond_angles(positions, geometry), [[np.pi / 2]])
    assert quality.angle_deviation(positions, geometry, [np.pi / 2]) == pytest.approx([0.0])
    assert quality.angle_deviation(positions, geometry, [np.pi / 3]) == pytest.approx([30.0])


def test_clash_score_counts_clashing_among_near_pairs():
    geometry = Geometry.from_topology(chain("CCCCC"))
    # pairs (0,3) at 0.1 nm: clash; (0,4) at 0.3 nm: near; (1,4) at 0.9 nm: far
    half = np.array([[0.0, 0, 0], [-0.6, 0, 0], [0.0, 2.0, 0], [0.1, 0, 0], [0.3, 0, 0]])
    apart = np.arange(5)[:, None] * np.array([1.0, 0.0, 0.0])
    close = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.0, 1.0, 0], [0.05, 0, 0], [0.05, 0.05, 0]])
    scores = quality.clash_score(np.stack([half, apart, close]), geometry)
    np.testing.assert_allclose(scores, [50.0, 0.0, 100.0])
    with pytest.raises(ValueError, match="clash < near"):
        quality.clash_score(half[None], geometry, clash=0.6)


def test_chirality_of_a_tetrahedron_and_its_mirror_image():
    geometry = Geometry.from_topology(centre())
    np.testing.assert_array_equal(geometry.chiral, [[0, 1, 2, 3]])
    mirror = L_CENTRE * np.array([1.0, 1.0, -1.0])
    np.testing.assert_array_equal(
        quality.chirality(np.stack([L_CENTRE, mirror]), geometry), [[1.0], [-1.0]]
    )
    assert Geometry.from_topology(centre(("CA", "N", "C"))).chiral.shape == (0, 4)


def test_signed_dihedrals_agree_with_mdtraj():
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(7, 8, 3))
    quadruples = np.array([rng.permutation(8)[:4] for _ in range(10)])
    ours = quality.signed_dihedrals(positions, quadruples)
    trajectory = md.Trajectory(positions, chain("C" * 8))
    theirs = md.compute_dihedrals(trajectory, quadruples)
    np.testing.assert_allclose(np.angle(np.exp(1j * (ours - theirs))), 0.0, atol=1e-5)
    assert np.all((ours > -np.pi) & (ours <= np.pi))


def test_signed_dihedrals_of_cis_and_trans():
    cis = np.array([[0.0, 1, 0], [0, 0, 0], [1, 0, 0], [1, 1, 0]])
    trans = np.array([[0.0, 1, 0], [0, 0, 0], [1, 0, 0], [1, -1, 0]])
    np.testing.assert_allclose(
        quality.signed_dihedrals(np.stack([cis, trans]), [[0, 1, 2, 3]]), [[0.0], [np.pi]]
    )


def test_heavy_rmsd_of_a_translation_ignores_hydrogens():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 5, 3))
    step = rng.normal(size=3)
    b = a + 0.1 * step / np.linalg.norm(step)
    b[:, 4] += 5.0  # a hydrogen, not counted
    np.testing.assert_allclose(quality.heavy_rmsd(a, b, np.arange(4)), [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"\(3, 5, 3\) and \(2, 5, 3\)"):
        quality.heavy_rmsd(a, b[:2], np.arange(4))


def test_sample_rmsds_and_diversity():
    truth = np.random.default_rng(2).normal(size=(2, 4, 3))
    shift = np.array([0.1, 0.0, 0.0])
    samples = np.stack([truth + shift, truth - shift])
    to_truth, among = quality.sample_rmsds(samples, truth, np.arange(4))
    np.testing.assert_allclose(to_truth, np.full((2, 2), 0.1))
    np.testing.assert_allclose(among, [0.2, 0.2])
    np.testing.assert_allclose(quality.diversity(to_truth, among), [-1.0, -1.0])

    identical = np.stack([truth + shift] * 3)
    to_truth, among = quality.sample_rmsds(identical, truth, np.arange(4))
    np.testing.assert_allclose(among, 0.0, atol=1e-12)
    np.testing.assert_allclose(quality.diversity(to_truth, among), [1.0, 1.0])

    to_truth, among = quality.sample_rmsds(samples[:1], truth, np.arange(4))
    assert to_truth.shape == (1, 2)
    np.testing.assert_array_equal(among, [0.0, 0.0])

    spread = np.array([[0.3, 0.2], [0.1, 0.4]])
    np.testing.assert_allclose(quality.diversity(spread, spread.mean(axis=0)), [0.0, 0.0])
    np.testing.assert_array_equal(quality.diversity(np.zeros((2, 1)), np.zeros(1)), [1.0])
    with pytest.raises(ValueError, match=r"\(3, 2, 4, 3\)"):
        quality.sample_rmsds(np.zeros((3, 2, 4, 3)), np.zeros((3, 4, 3)), np.arange(4))


def test_bad_shapes_are_named():
    geometry = Geometry.from_topology(chain("CCC"))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        quality.bond_lengths(np.zeros((2, 3)), geometry)
    with pytest.raises(ValueError, match="too few atoms"):
        quality.bond_lengths(np.zeros((1, 2, 3)), geometry)
    with pytest.raises(ValueError, match=r"\(2,\), got \(3,\)"):
        quality.bond_fraction(np.zeros((1, 3, 3)), geometry, np.ones(3))


def test_geometry_of_alanine_dipeptide(ala2: md.Trajectory):
    topology = ala2.topology
    geometry = Geometry.from_topology(topology)
    pairs = {tuple(p) for p in geometry.clash_pairs}
    bonded = {tuple(sorted((a.index, b.index))) for a, b in topology.bonds}
    across_angles = {(min(i, k), max(i, k)) for i, _, k in geometry.angles}
    assert pairs and not pairs & bonded and not pairs & across_angles
    assert len(geometry.bonds) == topology.n_bonds
    assert all(topology.atom(i).element.symbol != "H" for i in geometry.heavy)
    assert len(geometry.heavy) == sum(a.element.symbol != "H" for a in topology.atoms)
    alanine = next(r for r in topology.residues if r.name == "ALA")
    index = {a.name: a.index for a in alanine.atoms}
    np.testing.assert_array_equal(
        geometry.chiral, [[index["CA"], index["N"], index["C"], index["CB"]]]
    )
    np.testing.assert_array_equal(geometry.phi, md.compute_phi(ala2)[0])
    np.testing.assert_array_equal(geometry.psi, md.compute_psi(ala2)[0])


def test_alanine_dipeptide_is_clean_and_left_handed(ala2: md.Trajectory):
    geometry = Geometry.from_topology(ala2.topology)
    frames = np.concatenate([ala2.xyz, ala2.xyz + 1.0])  # two frames, same structure
    lengths = quality.bond_lengths(ala2.xyz, geometry)[0]
    np.testing.assert_array_equal(quality.clash_score(frames, geometry), [0.0, 0.0])
    np.testing.assert_array_equal(quality.bond_fraction(frames, geometry, lengths), [1.0, 1.0])
    angles = quality.bond_angles(ala2.xyz, geometry)[0]
    np.testing.assert_allclose(quality.angle_deviation(frames, geometry, angles), 0, atol=1e-4)
    # L-alanine carries the sign of the hand-built L centre; its mirror image the other
    hand_built = quality.chirality(L_CENTRE[None], Geometry.from_topology(centre()))
    np.testing.assert_array_equal(quality.chirality(ala2.xyz, geometry), hand_built)
    np.testing.assert_array_equal(hand_built, [[1.0]])
    mirror = ala2.xyz * np.array([1.0, 1.0, -1.0])
    np.testing.assert_array_equal(quality.chirality(mirror, geometry), -hand_built)
    np.testing.assert_allclose(
        quality.signed_dihedrals(ala2.xyz, geometry.phi), md.compute_phi(ala2)[1], atol=1e-5
    )


def test_every_stereocentre_of_pdbfixers_templates_is_l():
    # Independent of our code: pdbfixer's residue templates are L amino acids, THR's CB
    # 3R and ILE's 3S; the metric finds every centre of STEREOCENTRES and calls it +1,
    # and -1 in the mirror image.
    import pdbfixer

    from cgpipe.residues import STEREOCENTRES

    templates = Path(pdbfixer.__file__).parent / "templates"
    for name, centres in STEREOCENTRES.items():
        template = md.load(str(templates / f"{name}.pdb"))
        geometry = Geometry.from_topology(template.topology)
        assert len(geometry.chiral) == len(centres), name
        mirror = template.xyz * np.array([1.0, 1.0, -1.0])
        signs = quality.chirality(np.concatenate([template.xyz, mirror]), geometry)
        np.testing.assert_array_equal(signs, [[1.0] * len(centres), [-1.0] * len(centres)])
