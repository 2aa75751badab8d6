"""The prior fitted by Boltzmann inversion recovers the potential that made the data."""

import numpy as np
import torch

from cgpipe.models.prior import (
    angle_end_pairs,
    angle_triples,
    bond_angles,
    fit_prior,
    nonbonded_pairs,
)
from cgpipe.units import thermal_energy


def test_boltzmann_inversion_recovers_a_harmonic_bond():
    # Sample the bond length of a 3D harmonic spring from the exact Boltzmann
    # distribution p(r) ~ r^2 exp(-k (r - r0)^2 / 2kT) by rejection.
    k, r0, temperature = 5000.0, 0.38, 300.0
    kT = thermal_energy(temperature)
    rng = np.random.default_rng(0)
    sigma = np.sqrt(kT / k)
    r = rng.normal(r0, sigma, size=800_000)
    r = r[rng.uniform(size=r.size) < (r / (r0 + 5 * sigma)) ** 2]
    direction = rng.normal(size=(r.size, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    positions = np.stack([np.zeros_like(direction), direction * r[:, None]], axis=1)
    prior = fit_prior(positions, np.array([[0, 1]]), temperature, bins=80)
    bonds = prior.hparams["terms"]["bonds"]
    assert abs(bonds["k"][0] - k) < 0.03 * k
    assert abs(bonds["r0"][0] - r0) < 1e-3


def test_prior_topology_of_a_five_bead_chain():
    bonds = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    assert angle_triples(bonds).tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert nonbonded_pairs(5, bonds).tolist() == [[0, 3], [0, 4], [1, 4]]
    # The angles' end beads: excluded from the repulsion, kept apart by the angle wall.
    assert angle_end_pairs(5, bonds).tolist() == [[0, 2], [1, 3], [2, 4]]
    # In a triangle every pair is bonded: no 1-3 pair.
    assert angle_end_pairs(3, np.array([[0, 1], [1, 2], [0, 2]])).shape == (0, 2)


def test_angles_are_smooth_at_a_straight_line():
    x = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]], requires_grad=True)
    theta = bond_angles(x, torch.tensor([[0, 1, 2]]))
    assert torch.isclose(theta, torch.tensor(np.pi)).all()
    (gradient,) = torch.autograd.grad(theta.sum(), x)
    assert torch.isfinite(gradient).all()


def test_dihedral_angles_follow_mdtraj():
    import mdtraj as md

    from cgpipe.models.prior import dihedral_angles, dihedral_quadruples

    rng = np.random.default_rng(3)
    positions = rng.normal(size=(50, 5, 3))
    quadruples = dihedral_quadruples(np.array([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert quadruples.tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]]
    ours = dihedral_angles(torch.as_tensor(positions), torch.as_tensor(quadruples)).numpy()
    topology = md.Topology()
    residue = topology.add_residue("X", topology.add_chain())
    for _ in range(5):
        topology.add_atom("C", md.element.carbon, residue)
    trajectory = md.Trajectory(positions, topology)
    np.testing.assert_allclose(ours, md.compute_dihedrals(trajectory, quadruples), atol=1e-5)


def test_fourier_inversion_recovers_a_dihedral_potential():
    from cgpipe.models.prior import fourier_inversion

    # Sample phi from p ~ exp(-U/kT) with U = 4 cos(phi) + 2 sin(2 phi) kJ/mol on a grid.
    kT = thermal_energy(300.0)
    rng = np.random.default_rng(4)
    grid = np.linspace(-np.pi, np.pi, 20001)[:-1]
    potential = 4 * np.cos(grid) + 2 * np.sin(2 * grid)
    weights = np.exp(-potential / kT)
    phi = rng.choice(grid, size=400_000, p=weights / weights.sum())
    cosines, sines = fourier_inversion(phi[:, None], kT, order=3, bins=72, pseudo_count=1e-3)
    np.testing.assert_allclose(cosines[0], [4, 0, 0], atol=0.15)
    np.testing.assert_allclose(sines[0], [0, 2, 0], atol=0.15)


def test_one_dihedral_per_bond_and_an_improper_at_each_branch():
    from cgpipe.models.prior import dihedral_quadruples, improper_quadruples

    # C(0)-N(1)-CA(2)-C(4)-N(5) with CB(3) on CA: backbone_cb of alanine dipeptide.
    bonds = np.array([[0, 1], [1, 2], [2, 3], [2, 4], [4, 5]])
    # Around N-CA the chain continues through C, not the CB branch; around CA-C through N.
    assert dihedral_quadruples(bonds).tolist() == [[0, 1, 2, 4], [1, 2, 4, 5]]
    assert improper_quadruples(bonds).tolist() == [[1, 3, 4, 2]]
    assert improper_quadruples(np.array([[0, 1], [1, 2]])).shape == (0, 4)


def test_consecutive_dihedrals_are_the_pairs_that_share_three_beads():
    from cgpipe.bonded import consecutive_dihedrals, dihedral_quadruples

    # alanine dipeptide's backbone_cb: phi (0, 1, 2, 4) and psi (1, 2, 4, 5).
    phi_psi = dihedral_quadruples(np.array([[0, 1], [1, 2], [2, 3], [2, 4], [4, 5]]))
    assert consecutive_dihedrals(phi_psi).tolist() == [[0, 1]]
    # A chain of six beads: three dihedrals, two consecutive pairs; the first and the
    # last share only two beads.
    chain = dihedral_quadruples(np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]))
    assert consecutive_dihedrals(chain).tolist() == [[0, 1], [1, 2]]
    assert consecutive_dihedrals(chain[:1]).shape == (0, 2)
