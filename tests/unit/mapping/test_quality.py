"""The best linear decoder of a map, its reconstruction error, and random connected maps."""

import mdtraj as md
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cgpipe.data import FoldData
from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.mapping import MAPPINGS
from cgpipe.mapping.groups import components, group_mapping, heavy_atoms, neighbours
from cgpipe.mapping.quality import best_linear_decoder, random_assignment, reconstruction_error


@pytest.fixture(scope="module")
def ala2_fold(ala2_reference) -> FoldData:
    """Fold 0 of the two ala2 trajectories: trajectory 1 trains, trajectory 0 is held out."""
    data = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
    return FoldData.split(data, 2, 0)


def errors(xi: np.ndarray, fold: FoldData) -> tuple[float, float]:
    """Mean reconstruction error (nm) on the training and on the held-out frames."""
    train, held_out = fold.training.coordinates, fold.held_out.coordinates
    decoder = best_linear_decoder(xi, train)
    return (
        float(reconstruction_error(xi, decoder, train).mean()),
        float(reconstruction_error(xi, decoder, held_out).mean()),
    )


def test_a_map_that_keeps_every_atom_reconstructs_exactly(ala2_fold):
    xi = np.eye(22)
    decoder = best_linear_decoder(xi, ala2_fold.training.coordinates)
    np.testing.assert_allclose(decoder, np.eye(22), atol=1e-6)
    assert reconstruction_error(xi, decoder, ala2_fold.held_out.coordinates).max() < 1e-6


def test_finer_nested_maps_reconstruct_better(ala2_fold, ala2_topology):
    # Residues (3 beads) ⊂ heavy atoms with their hydrogens (10) ⊂ every atom (22): a finer
    # map's beads determine the coarser one's, so its best decoder can only do better.
    residues = np.array([a.residue.index for a in ala2_topology.atoms])
    maps = [
        group_mapping("residues", ala2_topology, residues).coordinate_map,
        MAPPINGS.get("heavy")().build(ala2_topology, None).coordinate_map,
        np.eye(22),
    ]
    train, held_out = zip(*(errors(xi, ala2_fold) for xi in maps), strict=True)
    assert train[0] > train[1] > train[2] and held_out[0] > held_out[1] > held_out[2]
    assert 0.05 < held_out[0] < 0.2  # nm: three beads lose the atomic detail, not the shape


def test_more_random_beads_reconstruct_better(ala2_fold, ala2_topology):
    mean_error = [
        np.mean([errors(random_map(ala2_topology, n, seed), ala2_fold)[1] for seed in range(10)])
        for n in (2, 4, 7)
    ]
    assert mean_error[0] > mean_error[1] > mean_error[2]


def random_map(topology: md.Topology, n_beads: int, seed: int) -> np.ndarray:
    labels = random_assignment(topology, n_beads, seed)
    return group_mapping("random", topology, labels).coordinate_map


def test_the_decoder_is_equivariant(ala2_fold, ala2_topology):
    """Rows of D sum to 1: a rotated and shifted frame is reconstructed rotated and shifted,
    so frames need no alignment."""
    xi = random_map(ala2_topology, 4, seed=0)
    decoder = best_linear_decoder(xi, ala2_fold.training.coordinates)
    np.testing.assert_allclose(decoder.sum(axis=1), 1.0, atol=1e-10)
    x = ala2_fold.held_out.coordinates.astype(np.float64)
    moved = x @ Rotation.random(random_state=1).as_matrix().T + np.array([3.0, -2.0, 5.0])
    np.testing.assert_allclose(
        reconstruction_error(xi, decoder, moved), reconstruction_error(xi, decoder, x), atol=1e-9
    )


def test_random_assignment_is_a_connected_partition_with_hydrogens_at_home(ala2_topology):
    bonded = neighbours(ala2_topology)
    atoms = list(ala2_topology.atoms)
    draws = []
    for seed in range(20):
        labels = random_assignment(ala2_topology, 4, seed)
        draws.append(tuple(labels))
        assert sorted(set(labels.tolist())) == [0, 1, 2, 3]
        for bead in range(4):
            assert len(components(bonded, np.flatnonzero(labels == bead).tolist())) == 1
        for atom in atoms:
            if atom.element is md.element.hydrogen:
                (heavy,) = bonded[atom.index]
                assert labels[atom.index] == labels[heavy]
    np.testing.assert_array_equal(random_assignment(ala2_topology, 4, 3), draws[3])
    assert len(set(draws)) > 10  # the draws differ


@pytest.mark.parametrize("n_beads", [0, 11])
def test_random_assignment_needs_between_one_bead_and_one_per_heavy_atom(ala2_topology, n_beads):
    assert len(heavy_atoms(ala2_topology)) == 10
    with pytest.raises(ValueError, match="between 1 .* and 10"):
        random_assignment(ala2_topology, n_beads, 0)


def test_frames_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="do not fit a map"):
        best_linear_decoder(np.eye(3), np.zeros((2, 4, 3)))
