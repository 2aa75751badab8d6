"""Basic force aggregation against mean forces known in closed form."""

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe.forces import project
from cgpipe.io import TrajectoryData
from cgpipe.mapping import Mapping, build_fixed_mapping


def _two_atom_mapping() -> Mapping:
    """One bead at atom 0; atom 1 belongs to the bead (force weight 1, coordinate weight 0)."""
    topology = md.Topology()
    residue = topology.add_residue("TOY", topology.add_chain())
    topology.add_atom("A", md.element.carbon, residue)
    topology.add_atom("B", md.element.hydrogen, residue)
    cg = md.Topology()
    cg.add_atom("A", md.element.carbon, cg.add_residue("TOY", cg.add_chain()))
    table = pd.DataFrame(
        {
            "bead": [0, 0],
            "atom": [0, 1],
            "weight": [1.0, 0.0],
            "force_weight": [1.0, 1.0],
            "bead_name": "A",
            "bead_type": 0,
            "mass": 13.0,
            "residue_index": 0,
            "residue_name": "TOY",
            "residue_seq": 1,
        }
    )
    return Mapping("toy", 2, table, cg), topology


def test_basic_aggregation_gives_the_exact_mean_force_of_a_gaussian_toy_system():
    # U = a/2 x1^2 + b/2 x2^2 + c/2 (x1 - x2)^2 per Cartesian component. Integrating out
    # x2 leaves A(z) = (a + bc/(b+c)) z^2 / 2, so the mean force is -(a + bc/(b+c)) z.
    a, b, c, kT = 50.0, 80.0, 300.0, 2.494
    precision = np.array([[a + c, -c], [-c, b + c]])
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.multivariate_normal(np.zeros(2), kT * np.linalg.inv(precision), size=(n, 3))
    positions = np.transpose(x, (0, 2, 1))  # [n, atom, xyz]
    forces = -np.einsum("ij,fjd->fid", precision, positions)
    mapping, topology = _two_atom_mapping()
    cg = project(TrajectoryData(topology, positions, np.arange(n), forces=forces), mapping)
    z, f = cg.coordinates[:, 0].ravel(), cg.forces[:, 0].ravel()
    slope = np.sum(z * f) / np.sum(z * z)  # least-squares fit of f = -k z
    expected = -(a + b * c / (b + c))
    assert abs(slope - expected) < 0.01 * abs(expected)


def test_hydrogen_constraint_forces_cancel_in_the_bead(ala2_topology):
    mapping = build_fixed_mapping("backbone", ala2_topology)
    atoms = list(ala2_topology.atoms)
    rng = np.random.default_rng(2)
    positions = rng.normal(size=(4, 22, 3)).astype(np.float32)
    forces = rng.normal(size=(4, 22, 3)).astype(np.float32)
    data = TrajectoryData(ala2_topology, positions, np.arange(4), forces=forces)
    # A constraint force acts along the X-H bond, equal and opposite on the two atoms.
    constrained = forces.copy()
    for bond in ala2_topology.bonds:
        heavy, light = bond.atom1, bond.atom2
        if heavy.element is md.element.hydrogen:
            heavy, light = light, heavy
        if light.element is md.element.hydrogen:
            direction = positions[:, light.index] - positions[:, heavy.index]
            push = rng.normal(size=(4, 1)).astype(np.float32) * 100 * direction
            constrained[:, heavy.index] -= push
            constrained[:, light.index] += push
    with_constraints = TrajectoryData(ala2_topology, positions, np.arange(4), forces=constrained)
    np.testing.assert_allclose(
        project(with_constraints, mapping).forces, project(data, mapping).forces, atol=1e-3
    )
    assert atoms[0].element is md.element.hydrogen  # the fixture really has hydrogens
