"""Force maps: basic aggregation against mean forces known in closed form, the registry,
and the forces stage."""

from pathlib import Path

import h5py
import mdtraj as md
import numpy as np
import pandas as pd
import pytest
import yaml

from cgpipe.data import FoldData
from cgpipe.errors import InputError
from cgpipe.forces import FORCE_MAPS, ForceMap, project, run
from cgpipe.io import Provenance, TrajectoryData, read_provenance, read_trajectory
from cgpipe.mapping import MAPPINGS, Mapping, read_mapping, write_mapping
from cgpipe.paths import resolved_config_path
from tests.conftest import build_mapping_on, shared_force_mapping


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
    force_map = FORCE_MAPS.get("basic")().matrix(mapping, None)
    data = TrajectoryData(topology, positions, np.arange(n), forces=forces)
    cg = project(data, mapping, force_map)
    z, f = cg.coordinates[:, 0].ravel(), cg.forces[:, 0].ravel()
    slope = np.sum(z * f) / np.sum(z * z)  # least-squares fit of f = -k z
    expected = -(a + b * c / (b + c))
    assert abs(slope - expected) < 0.01 * abs(expected)


def test_hydrogen_constraint_forces_cancel_in_the_bead(ala2_topology):
    mapping = build_mapping_on("backbone", ala2_topology)
    atoms = list(ala2_topology.atoms)
    rng = np.random.default_rng(2)
    positions = rng.normal(size=(4, 22, 3)).astype(np.float32)
    forces = rng.normal(size=(4, 22, 3)).astype(np.float32)
    data = TrajectoryData(ala2_topology, positions, np.arange(4), forces=forces)
    # A constraint force acts along the X-H bond, equal and opposite on the two atoms. The
    # reference does not record it; the map is blind to it, so its absence changes nothing.
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


@pytest.mark.parametrize("force_map", FORCE_MAPS.names())
def test_every_registered_force_map_builds_from_the_test_config(
    force_map, test_config, penta_alanine, ala2_topology, ala2_reference
):
    method = FORCE_MAPS.get(force_map)(**test_config["forces"][force_map])
    if method.fitted:
        # A fitted force map needs frames on its mapping's topology: fold 0's training.
        data = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
        training = FoldData.split(data, test_config["train"]["n_folds"], 0).training
        cases = [(build_mapping_on("backbone", ala2_topology), training)]
    else:
        cases = [
            (MAPPINGS.get(name)(**test_config["mapping"][name]).build(penta_alanine, None), None)
            for name in MAPPINGS.names()
            if not MAPPINGS.get(name).fitted
        ]
    for mapping, training in cases:
        xi_f = method.matrix(mapping, training)
        assert xi_f.shape == (mapping.n_beads, mapping.n_atoms)
        np.testing.assert_allclose(xi_f @ mapping.coordinate_map.T, np.eye(mapping.n_beads))
        with_map = Mapping(mapping.name, mapping.n_atoms, mapping.table.copy(), mapping.topology)
        rows = with_map.table
        rows["force_weight"] = xi_f[rows["bead"], rows["atom"]]
        with_map.check()


def test_basic_refuses_an_atom_force_shared_by_two_beads():
    mapping, _ = shared_force_mapping()
    mapping.check()  # a consistent map ...
    with pytest.raises(InputError, match=r"puts the force of atom 2 on beads \[0, 1\]"):
        FORCE_MAPS.get("basic")().matrix(mapping, None)  # ... but not an aggregation


def test_a_shared_force_map_projects_its_share():
    mapping, topology = shared_force_mapping()
    rng = np.random.default_rng(3)
    forces = rng.normal(size=(5, 3, 3))
    data = TrajectoryData(topology, rng.normal(size=(5, 3, 3)), np.arange(5), forces=forces)
    cg = project(data, mapping, mapping.force_map)
    np.testing.assert_allclose(cg.forces[:, 0], forces[:, 0] + 0.5 * forces[:, 2], atol=1e-5)
    np.testing.assert_allclose(cg.forces[:, 1], forces[:, 1] + 0.5 * forces[:, 2], atol=1e-5)
    with pytest.raises(ValueError, match=r"force map has shape \(3, 3\)"):
        project(data, mapping, np.eye(3))


def test_unknown_force_map_is_refused():
    with pytest.raises(InputError, match=r"unknown force map 'optimal'; known: \[.*'basic'"):
        FORCE_MAPS.get("optimal")


@pytest.fixture
def backbone_path(tmp_path, ala2_reference) -> Path:
    path = tmp_path / "backbone.parquet"
    topology = read_trajectory(ala2_reference[0], stride=10**9).topology
    write_mapping(path, build_mapping_on("backbone", topology), Provenance("mapping"))
    return path


def test_run_projects_every_trajectory_into_one_file(
    tmp_path, ala2_reference, backbone_path, test_config
):
    output = tmp_path / "cg.h5"
    run(ala2_reference, backbone_path, output, cfg=test_config)
    cg = read_trajectory(output)
    mapping = read_mapping(backbone_path)
    parts = [project(read_trajectory(p), mapping) for p in ala2_reference]
    expected = TrajectoryData.concatenate(parts)
    np.testing.assert_array_equal(cg.coordinates, expected.coordinates)
    np.testing.assert_array_equal(cg.forces, expected.forces)
    np.testing.assert_array_equal(cg.trajectory_index, np.repeat([0, 1], 20))
    record = read_provenance(output)
    assert record["config"] == {
        **test_config["forces"],
        "trajectories": [str(p) for p in ala2_reference],
    }
    assert set(record["inputs"]) == {str(backbone_path), *map(str, ala2_reference)}
    assert yaml.safe_load(resolved_config_path(output).read_text()) == test_config


def test_run_names_the_trajectory_a_mapping_does_not_fit(
    tmp_path, ala2_reference, penta_alanine, test_config
):
    mapping_path = tmp_path / "penta.parquet"
    write_mapping(mapping_path, build_mapping_on("backbone", penta_alanine), Provenance("mapping"))
    with pytest.raises(InputError) as error:
        run(ala2_reference, mapping_path, tmp_path / "cg.h5", cfg=test_config)
    assert str(error.value) == (
        f"{ala2_reference[0]}: mapping 'backbone' is for 25 atoms, the trajectory has 22"
    )
    assert not (tmp_path / "cg.h5").exists()


def test_run_with_basic_refuses_a_shared_force_map(tmp_path, ala2_reference, test_config):
    mapping, _ = shared_force_mapping()
    mapping_path = tmp_path / "shared.parquet"
    write_mapping(mapping_path, mapping, Provenance("mapping"))
    with pytest.raises(InputError, match="force map 'basic': mapping 'shared' puts the force"):
        run(ala2_reference, mapping_path, tmp_path / "cg.h5", cfg=test_config)
    assert not (tmp_path / "cg.h5").exists()


@pytest.fixture
def fitted_force_map():
    """A toy fitted force map (the mapping's own, after looking at its training frames),
    registered for the test and removed after it; ``seen`` records what it was given."""
    seen: list[TrajectoryData | None] = []

    @FORCE_MAPS.register("toy_optimal")
    class ToyOptimal(ForceMap):
        fitted = True

        def matrix(self, mapping, training):
            seen.append(training)
            return mapping.force_map

    yield seen
    FORCE_MAPS.unregister("toy_optimal")


@pytest.mark.parametrize("fold", [0, 1])
def test_a_fitted_force_map_sees_only_the_training_trajectories(
    fold, fitted_force_map, tmp_path, ala2_reference, backbone_path, test_config
):
    cfg = {**test_config, "forces": {"force_map": "toy_optimal"}}
    output = tmp_path / "cg.h5"
    run(ala2_reference, backbone_path, output, cfg=cfg, fold=fold)
    (training,) = fitted_force_map
    assert set(training.trajectory_index.tolist()) == {1 - fold}
    held_out = read_trajectory(ala2_reference[fold])
    trained = {frame.tobytes() for frame in training.coordinates}
    assert not any(frame.tobytes() in trained for frame in held_out.coordinates)
    assert read_provenance(output)["config"]["fold"] == fold
    with h5py.File(output) as handle:  # every trajectory is projected, with that fold's map
        assert handle["coordinates"].shape[0] == 40


def test_a_fitted_force_map_needs_a_fold(
    fitted_force_map, tmp_path, ala2_reference, backbone_path, test_config
):
    cfg = {**test_config, "forces": {"force_map": "toy_optimal"}}
    with pytest.raises(InputError, match="'toy_optimal' is fitted to the training trajectories"):
        run(ala2_reference, backbone_path, tmp_path / "cg.h5", cfg=cfg)
    assert fitted_force_map == [] and not (tmp_path / "cg.h5").exists()
