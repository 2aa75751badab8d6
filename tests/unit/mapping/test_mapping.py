import mdtraj as md
import numpy as np
import pandas as pd
import pytest
import yaml

from cgpipe.data import FoldData
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, read_provenance, read_table, read_trajectory
from cgpipe.mapping import (
    MAPPINGS,
    MappingMethod,
    fit_table_path,
    read_mapping,
    run,
    write_mapping,
)
from cgpipe.paths import resolved_config_path
from tests.conftest import build_mapping_on, shared_force_mapping


def test_backbone_map_of_alanine_dipeptide_is_the_five_phi_psi_atoms(ala2_topology):
    mapping = build_mapping_on("backbone", ala2_topology)
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
    mapping = build_mapping_on("backbone", ala2_topology)
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
    mapping = build_mapping_on("backbone", ala2_topology)
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
    mapping = build_mapping_on("calpha", topology)
    assert mapping.n_beads == 3
    assert mapping.bonds.tolist() == [[0, 1], [1, 2]]
    assert mapping.bead_types[0] == mapping.bead_types[2] != mapping.bead_types[1]


def test_calpha_of_alanine_dipeptide_is_refused(ala2_topology):
    with pytest.raises(InputError, match="'calpha': the topology yields 1 beads, need at least 2"):
        build_mapping_on("calpha", ala2_topology)


@pytest.mark.parametrize("name", MAPPINGS.names())
def test_every_registered_mapping_builds_from_the_test_config(
    name, test_config, penta_alanine, ala2_reference
):
    method = MAPPINGS.get(name).from_config(test_config["mapping"])
    if method.fitted:
        # A fitted map needs frames on its topology: alanine dipeptide's, fold 0's training.
        data = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
        training = FoldData.split(data, test_config["train"]["n_folds"], 0).training
        topology = training.topology
    else:
        training, topology = None, penta_alanine
    mapping = method.build(topology, training)
    mapping.check()
    assert mapping.name == name and mapping.n_atoms == topology.n_atoms
    assert mapping.n_beads >= 2 and len(mapping.bead_types) == mapping.n_beads


def test_a_method_without_options_refuses_one():
    with pytest.raises(InputError, match=r"mapping 'backbone' takes no options; got \['beads'\]"):
        MAPPINGS.get("backbone")(beads=3)


def test_an_atom_force_shared_by_two_beads_is_a_consistent_map():
    mapping = shared_force_mapping()[0]
    mapping.check()  # optimal and soft force maps share atoms among beads
    np.testing.assert_allclose(mapping.force_map[:, 2], [0.5, 0.5])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("weight", 0.5, "rows of Xi must sum to 1"), ("force_weight", 2.0, "Xi_f Xi\\^T = I")],
)
def test_an_inconsistent_map_is_refused(column, value, message):
    mapping = shared_force_mapping()[0]
    mapping.table.loc[0, column] = value
    with pytest.raises(ValueError, match=message):
        mapping.check()


def test_parquet_round_trip(tmp_path, ala2_topology):
    mapping = build_mapping_on("backbone", ala2_topology)
    path = tmp_path / "backbone.parquet"
    write_mapping(path, mapping, Provenance("mapping", {"mapping": "backbone"}))
    back = read_mapping(path)
    assert back.name == "backbone" and back.n_atoms == 22
    np.testing.assert_array_equal(back.coordinate_map, mapping.coordinate_map)
    np.testing.assert_array_equal(back.force_map, mapping.force_map)
    assert [a.name for a in back.topology.atoms] == ["C", "N", "CA", "C", "N"]
    assert back.bonds.tolist() == mapping.bonds.tolist()
    assert read_provenance(path)["stage"] == "mapping"


def test_a_table_without_the_mapping_metadata_is_refused(tmp_path):
    from cgpipe.io import write_table

    path = tmp_path / "plain.parquet"
    write_table(path, pd.DataFrame({"bead": [0]}), Provenance("other"))
    with pytest.raises(InputError, match=r"not a cgpipe mapping \(no cgpipe.cg_topology"):
        read_mapping(path)


def test_unknown_mapping_is_refused():
    with pytest.raises(InputError, match=r"unknown mapping 'beads'; known: \[.*'backbone'"):
        MAPPINGS.get("beads")


def test_run_writes_the_mapping_and_the_resolved_config(tmp_path, ala2_reference, test_config):
    output = tmp_path / "backbone.parquet"
    built = run(ala2_reference, output, name="backbone", cfg=test_config)
    back = read_mapping(output)
    pd.testing.assert_frame_equal(back.table, built.table)
    assert back.name == "backbone" and back.n_atoms == 22
    record = read_provenance(output)
    assert record["config"] == {"mapping": "backbone", "fold": None}
    # A fixed map reads the topology of the first reference only.
    assert list(record["inputs"]) == [str(ala2_reference[0])]
    assert yaml.safe_load(resolved_config_path(output).read_text()) == test_config


def test_run_refuses_an_unknown_mapping(tmp_path, ala2_reference, test_config):
    with pytest.raises(InputError, match="unknown mapping 'beads'"):
        run(ala2_reference, tmp_path / "x.parquet", name="beads", cfg=test_config)
    assert not (tmp_path / "x.parquet").exists()


@pytest.fixture
def fitted_mapping():
    """A toy fitted map (the backbone map, built after looking at its training frames),
    registered for the test and removed after it; ``seen`` records what it was given."""
    seen: list[TrajectoryData | None] = []

    @MAPPINGS.register("toy_fitted")
    class ToyFitted(MappingMethod):
        fitted = True

        def build(self, topology, training, *, seed=0):
            seen.append(training)
            mapping = MAPPINGS.get("backbone")().build(topology, None)
            mapping.name = self.name
            self.fit_table = pd.DataFrame({"step": [0], "frames": [training.n_frames]})
            return mapping

    yield seen
    MAPPINGS.unregister("toy_fitted")


@pytest.mark.parametrize("fold", [0, 1])
def test_a_fitted_mapping_sees_only_the_training_trajectories(
    fold, fitted_mapping, tmp_path, ala2_reference, test_config
):
    output = tmp_path / "fold.parquet"
    run(ala2_reference, output, name="toy_fitted", cfg=test_config, fold=fold, seed=1)
    (training,) = fitted_mapping
    everything = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
    held_out = FoldData.split(everything, test_config["train"]["n_folds"], fold).held_out
    # Two trajectories, two folds: fold k holds out trajectory k.
    assert set(held_out.trajectory_index.tolist()) == {fold}
    assert set(training.trajectory_index.tolist()) == {1 - fold}
    np.testing.assert_array_equal(
        training.coordinates, read_trajectory(ala2_reference[1 - fold]).coordinates
    )
    trained = {frame.tobytes() for frame in training.coordinates}
    assert not any(frame.tobytes() in trained for frame in held_out.coordinates)
    record = read_provenance(output)
    assert record["config"]["mapping"] == "toy_fitted" and record["config"]["fold"] == fold
    assert record["extra"]["training_trajectories"] == [str(ala2_reference[1 - fold])]
    assert read_mapping(output).name == "toy_fitted"
    # The fit table beside the artifact, with the same provenance.
    fit = read_table(fit_table_path(output))
    assert fit.frames.tolist() == [training.n_frames]
    fit_record = read_provenance(fit_table_path(output))
    assert (fit_record["config"], fit_record["inputs"]) == (record["config"], record["inputs"])


def test_a_fitted_mapping_needs_a_fold(fitted_mapping, tmp_path, ala2_reference, test_config):
    with pytest.raises(InputError, match="'toy_fitted' is fitted to the training trajectories"):
        run(ala2_reference, tmp_path / "x.parquet", name="toy_fitted", cfg=test_config)
    with pytest.raises(InputError, match="fold 2 is outside 0..1"):
        run(ala2_reference, tmp_path / "x.parquet", name="toy_fitted", cfg=test_config, fold=2)
    assert fitted_mapping == [] and not (tmp_path / "x.parquet").exists()
