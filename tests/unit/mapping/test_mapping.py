import mdtraj as md
import numpy as np
import pytest

from cgpipe.io import Provenance, read_provenance
from cgpipe.mapping import build_fixed_mapping, read_mapping, write_mapping


def test_backbone_map_of_alanine_dipeptide_is_the_five_phi_psi_atoms(ala2_topology):
    mapping = build_fixed_mapping("backbone", ala2_topology)
    atoms = list(ala2_topology.atoms)
    centres = mapping.table[mapping.table.weight == 1].sort_values("bead").atom.tolist()
    assert [str(atoms[i]) for i in centres] == ["ACE1-C", "ALA2-N", "ALA2-CA", "ALA2-C", "NME3-N"]
    assert mapping.bonds.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    # Beads of one name share a type: the two C and the two N are interchangeable.
    assert mapping.bead_types[0] == mapping.bead_types[3]
    assert mapping.bead_types[1] == mapping.bead_types[4]
    assert len(set(mapping.bead_types.tolist())) == 3
    # Every atom joins the bead whose centre is fewest bonds away: the bead N carries
    # its H (14.007 + 1.008 amu), the carbonyl C its O, CA the side chain, and the beads
    # together carry the whole molecule.
    assert mapping.bead_masses[1] == pytest.approx(15.015, abs=1e-2)
    assert mapping.bead_masses[3] == pytest.approx(28.010, abs=1e-2)
    total = sum(atom.element.mass for atom in ala2_topology.atoms)
    assert mapping.bead_masses.sum() == pytest.approx(total)
    assert sorted(mapping.table.atom) == list(range(22))


def test_cg_phi_psi_equal_all_atom_phi_psi(ala2_structure, ala2_topology):
    mapping = build_fixed_mapping("backbone", ala2_topology)
    trajectory = md.load(str(ala2_structure))
    rng = np.random.default_rng(0)
    trajectory.xyz = trajectory.xyz + rng.normal(scale=0.01, size=trajectory.xyz.shape).astype(
        np.float32
    )
    cg = md.Trajectory(
        np.einsum("ba,fad->fbd", mapping.coordinate_map, trajectory.xyz), mapping.topology
    )
    np.testing.assert_allclose(md.compute_phi(cg)[1], md.compute_phi(trajectory)[1], atol=1e-5)
    np.testing.assert_allclose(md.compute_psi(cg)[1], md.compute_psi(trajectory)[1], atol=1e-5)


def test_force_map_consistency(ala2_topology):
    mapping = build_fixed_mapping("backbone", ala2_topology)
    xi, xi_f = mapping.coordinate_map, mapping.force_map
    np.testing.assert_allclose(xi.sum(axis=1), 1.0)
    np.testing.assert_allclose(xi_f @ xi.T, np.eye(mapping.n_beads))


def test_calpha_map_of_a_peptide():
    topology = md.Topology()
    chain = topology.add_chain()
    for name in ("GLY", "ALA", "GLY"):
        residue = topology.add_residue(name, chain)
        n = topology.add_atom("N", md.element.nitrogen, residue)
        ca = topology.add_atom("CA", md.element.carbon, residue)
        topology.add_bond(n, ca)
    mapping = build_fixed_mapping("calpha", topology)
    assert mapping.n_beads == 3
    assert mapping.bonds.tolist() == [[0, 1], [1, 2]]
    assert mapping.bead_types[0] == mapping.bead_types[2] != mapping.bead_types[1]


def test_parquet_round_trip(tmp_path, ala2_topology):
    mapping = build_fixed_mapping("backbone", ala2_topology)
    path = tmp_path / "backbone.parquet"
    write_mapping(path, mapping, Provenance("mapping", {"mapping": "backbone"}))
    back = read_mapping(path)
    assert back.name == "backbone" and back.n_atoms == 22
    np.testing.assert_array_equal(back.coordinate_map, mapping.coordinate_map)
    np.testing.assert_array_equal(back.force_map, mapping.force_map)
    assert [a.name for a in back.topology.atoms] == ["C", "N", "CA", "C", "N"]
    assert back.bonds.tolist() == mapping.bonds.tolist()
    assert read_provenance(path)["stage"] == "mapping"


def test_unknown_mapping_is_refused(ala2_topology):
    with pytest.raises(ValueError, match="unknown fixed mapping 'beads'"):
        build_fixed_mapping("beads", ala2_topology)
