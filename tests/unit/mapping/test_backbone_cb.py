"""The ``backbone_cb`` map keeps the chirality of the C-alpha that the 5-bead backbone map
loses to a distance-only network.

Mirror blindness: every distance of a structure equals that of its mirror image, so
SchNet gives both one energy; only signed quantities (dihedrals, chiral volumes) tell
them apart. With a bead on CB the prior's dihedrals C-N-CA-CB and CB-CA-C-N carry the
handedness of L-alanine, which no mirror image of the reference has.
"""

from pathlib import Path

import mdtraj as md
import numpy as np
import pytest
import torch

from cgpipe import forces, mapping
from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.models import Prior, SchNet, fit_prior
from cgpipe.models.prior import dihedral_angles
from cgpipe.observables import phi_psi
from tests.conftest import build_mapping_on

NAMES = ["ACE1-C", "ALA2-N", "ALA2-CA", "ALA2-CB", "ALA2-C", "NME3-N"]
C_PREV, N, CA, CB, C, N_NEXT = range(6)


@pytest.fixture(scope="module")
def ala2_backbone_cb(tmp_path_factory, ala2_reference, test_config) -> dict:
    """The tiny alanine-dipeptide references on the backbone_cb map, as the stages write
    them: {"mapping", "cg"} paths."""
    folder = tmp_path_factory.mktemp("ala2_backbone_cb")
    mapping_path, cg_path = folder / "backbone_cb.parquet", folder / "backbone_cb.h5"
    mapping.run(ala2_reference, mapping_path, name="backbone_cb", cfg=test_config)
    forces.run(ala2_reference, mapping_path, cg_path, cfg=test_config)
    return {"mapping": mapping_path, "cg": cg_path}


def _frames(paths: dict[str, Path]) -> tuple[mapping.Mapping, np.ndarray]:
    """The mapping and its CG positions [n_frames, 6, 3] (nm, float64)."""
    cg = read_trajectory(paths["cg"])
    return mapping.read_mapping(paths["mapping"]), cg.coordinates.astype(np.float64)


def _mirror(z: np.ndarray) -> np.ndarray:
    """Reflection of every frame through a plane through the origin (a general mirror: not
    a sign flip, so that float rounding shows where it may)."""
    normal = np.random.default_rng(5).normal(size=3)
    normal /= np.linalg.norm(normal)
    reflection = np.eye(3) - 2.0 * np.outer(normal, normal)
    assert np.isclose(np.linalg.det(reflection), -1.0)
    return z @ reflection.T


def _degrees(z: np.ndarray, quadruple: list[int]) -> np.ndarray:
    return np.degrees(dihedral_angles(torch.as_tensor(z), torch.tensor([quadruple])).numpy()[:, 0])


def test_backbone_cb_map_of_alanine_dipeptide(ala2_topology):
    cb = build_mapping_on("backbone_cb", ala2_topology)
    assert [str(atom) for atom in cb.topology.atoms] == NAMES
    assert cb.bonds.tolist() == [[0, 1], [1, 2], [2, 3], [2, 4], [4, 5]]
    # Beads of one atom name share a type: C, N, CA, CB.
    assert len(set(cb.bead_types.tolist())) == 4
    assert cb.bead_types[C_PREV] == cb.bead_types[C] and cb.bead_types[N] == cb.bead_types[N_NEXT]
    # CB carries its three hydrogens, CA keeps HA only (12.011 + 3 x 1.008, 12.011 + 1.008).
    assert cb.bead_masses[CB] == pytest.approx(15.035, abs=1e-2)
    assert cb.bead_masses[CA] == pytest.approx(13.019, abs=1e-2)
    assert cb.bead_masses.sum() == pytest.approx(sum(a.element.mass for a in ala2_topology.atoms))
    # Its backbone beads are the backbone map's atoms: the carbonyl C selection is shared
    # (NME's methyl, which mdtraj names C, is not a bead).
    backbone = build_mapping_on("backbone", ala2_topology)
    centres = {
        name: m.table[m.table.weight == 1].sort_values("bead").atom.tolist()
        for name, m in (("cb", cb), ("backbone", backbone))
    }
    assert [a for k, a in enumerate(centres["cb"]) if k != CB] == centres["backbone"]


def test_glycine_has_no_cb_bead():
    topology = md.Topology()
    chain = topology.add_chain()
    previous = None
    for name in ("GLY", "ALA"):
        residue = topology.add_residue(name, chain)
        n = topology.add_atom("N", md.element.nitrogen, residue)
        ca = topology.add_atom("CA", md.element.carbon, residue)
        c = topology.add_atom("C", md.element.carbon, residue)
        o = topology.add_atom("O", md.element.oxygen, residue)
        for a, b in ((n, ca), (ca, c), (c, o)) + (((previous, n),) if previous else ()):
            topology.add_bond(a, b)
        if name == "ALA":
            topology.add_bond(ca, topology.add_atom("CB", md.element.carbon, residue))
        previous = c
    cg = build_mapping_on("backbone_cb", topology)
    assert [str(atom) for atom in cg.topology.atoms] == [
        "GLY0-N", "GLY0-CA", "GLY0-C", "ALA1-N", "ALA1-CA", "ALA1-C", "ALA1-CB",
    ]  # fmt: skip
    assert cg.bonds.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [4, 6]]


def test_phi_psi_of_the_cg_trajectory_are_the_all_atom_ones(ala2_backbone_cb, ala2_reference):
    cg = read_trajectory(ala2_backbone_cb["cg"])
    all_atom = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
    np.testing.assert_allclose(phi_psi(cg), phi_psi(all_atom), atol=1e-5)
    # The same, directly from the dihedral definitions (IUPAC: C-N-CA-C, N-CA-C-N).
    z = cg.coordinates.astype(np.float64)
    for quadruple, column in (([C_PREV, N, CA, C], 0), ([N, CA, C, N_NEXT], 1)):
        ours = np.radians(_degrees(z, quadruple))
        np.testing.assert_allclose(ours, phi_psi(cg)[:, column], atol=1e-5)


def test_the_cb_bead_carries_the_handedness_of_l_alanine(ala2_backbone_cb):
    # The tetrahedral C-alpha of an L-amino acid puts CB at C-N-CA-CB = phi - 120 degrees
    # (IUPAC-IUB conventions, Biochemistry 9, 3471 (1970)) and gives a positive chiral
    # volume (N - CA) . [(C - CA) x (CB - CA)] (the CCP4 monomer library's "positiv";
    # about 2.5 A^3 = 0.0025 nm^3). A mirror image is D-alanine: phi + 120 and negative.
    _, z = _frames(ala2_backbone_cb)
    for frames, handedness in ((z, -1.0), (_mirror(z), 1.0)):
        offset = _degrees(frames, [C_PREV, N, CA, CB]) - _degrees(frames, [C_PREV, N, CA, C])
        offset = (offset + 180.0) % 360.0 - 180.0
        assert np.all(np.abs(offset - handedness * 120.0) < 30.0)
        n, ca, c, cb = frames[:, N], frames[:, CA], frames[:, C], frames[:, CB]
        volume = np.einsum("fi,fi->f", n - ca, np.cross(c - ca, cb - ca))
        assert np.all(-handedness * volume > 0.001)


def test_the_prior_tells_a_frame_from_its_mirror_through_its_signed_terms(ala2_backbone_cb):
    cg_map, z = _frames(ala2_backbone_cb)
    prior = fit_prior(z, cg_map.bonds, 300.0)
    # One dihedral per backbone bond (phi, psi): C-N-CA-CB is phi plus a near-constant
    # offset, and inverting both would count phi's free energy twice. CA's handedness is
    # the improper (N, CB, C, CA) instead.
    assert prior.terms["dihedrals"].quadruples.tolist() == [[C_PREV, N, CA, C], [N, CA, C, N_NEXT]]
    assert prior.terms["impropers"].quadruples.tolist() == [[N, CB, C, CA]]
    frames = torch.as_tensor(z, dtype=torch.float32)
    mirrored = torch.as_tensor(_mirror(z), dtype=torch.float32)
    with torch.no_grad():
        difference = (prior(mirrored) - prior(frames)).numpy()
    assert (difference > 10.0).all()  # kJ/mol: the mirror has CA's other hand
    # Bonds, angles, walls and repulsion alone cannot tell them apart.
    signed = ("dihedrals", "impropers")
    terms = {name: h for name, h in prior.hparams["terms"].items() if name not in signed}
    achiral = Prior(terms, prior.temperature)
    with torch.no_grad():
        np.testing.assert_allclose(achiral(mirrored).numpy(), achiral(frames).numpy(), rtol=1e-4)


def test_a_distance_only_network_cannot_tell_a_frame_from_its_mirror(ala2_backbone_cb):
    cg_map, z = _frames(ala2_backbone_cb)
    torch.manual_seed(0)
    network = SchNet(
        int(cg_map.bead_types.max()) + 1,
        hidden_channels=16,
        num_filters=16,
        num_interactions=2,
        num_gaussians=16,
        cutoff=1.0,
    )
    types = torch.tensor(cg_map.bead_types)
    with torch.no_grad():
        energy = network(types, torch.as_tensor(z, dtype=torch.float32)).numpy()
        mirrored = network(types, torch.as_tensor(_mirror(z), dtype=torch.float32)).numpy()
    assert energy.std() > 1e-4 * np.abs(energy).mean()  # it does see the frames differ
    np.testing.assert_allclose(mirrored, energy, rtol=1e-5, atol=1e-6)
