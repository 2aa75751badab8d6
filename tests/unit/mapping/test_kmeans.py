import mdtraj as md
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sklearn.cluster import KMeans

from cgpipe.data import FoldData
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.mapping import MAPPINGS
from cgpipe.mapping.groups import components, heavy_atoms, neighbours
from cgpipe.mapping.kmeans import (
    KMeansMap,
    connected_kmeans,
    elbow,
    knee,
    mean_structure,
    superpose,
)


def groups_topology(sizes: list[int], hydrogens: bool = True) -> md.Topology:
    """One residue of bonded carbons per group (a chain), consecutive groups joined by a
    bond from the last carbon of one to the first of the next; each carbon carries one
    hydrogen if ``hydrogens``."""
    topology = md.Topology()
    chain = topology.add_chain()
    previous = None
    for size in sizes:
        residue = topology.add_residue("GRP", chain)
        for i in range(size):
            carbon = topology.add_atom(f"C{i}", md.element.carbon, residue)
            if previous is not None:
                topology.add_bond(previous, carbon)
            previous = carbon
            if hydrogens:
                topology.add_bond(carbon, topology.add_atom(f"H{i}", md.element.hydrogen, residue))
    return topology


def rigid_frames(
    topology: md.Topology, template: np.ndarray, n_frames: int = 30, noise: float = 0.005
) -> TrajectoryData:
    """Copies of ``template`` [n_atoms, 3] (nm) with Gaussian noise of ``noise`` nm per
    coordinate, each randomly rotated and translated as a whole."""
    rng = np.random.default_rng(1)
    rotations = Rotation.random(n_frames, random_state=2).as_matrix()
    frames = template[None] + rng.normal(scale=noise, size=(n_frames, *template.shape))
    frames = np.einsum("fij,fnj->fni", rotations, frames) + rng.uniform(-3, 3, (n_frames, 1, 3))
    return TrajectoryData(topology=topology, coordinates=frames, time=np.arange(n_frames) * 1.0)


def group_template(topology: md.Topology, centres: np.ndarray, spread: float) -> np.ndarray:
    """Positions: each group's carbons within ``spread`` nm of its centre (nm), each
    hydrogen 0.1 nm from its carbon."""
    rng = np.random.default_rng(3)
    positions = np.zeros((topology.n_atoms, 3))
    for atom in topology.atoms:
        if atom.element is md.element.carbon:
            offset = rng.uniform(-spread, spread, 3)
            positions[atom.index] = centres[atom.residue.index] + offset
    for bond in topology.bonds:
        if bond.atom2.element is md.element.hydrogen:
            positions[bond.atom2.index] = positions[bond.atom1.index] + [0.1, 0.0, 0.0]
    return positions


def groups_of(mapping) -> list[list[int]]:
    """Each bead's atoms, sorted, in bead order."""
    table = mapping.table
    return [sorted(table[table.bead == b].atom.tolist()) for b in range(mapping.n_beads)]


@pytest.fixture(scope="module")
def two_chains():
    topology = groups_topology([4, 4])
    template = group_template(topology, np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]]), 0.15)
    return topology, rigid_frames(topology, template)


@pytest.fixture(scope="module")
def four_clusters():
    """Four compact groups of 5 carbons at the corners of a regular tetrahedron (edge
    2.3 nm): every split up to 4 beads removes the same scatter, none after it."""
    topology = groups_topology([5, 5, 5, 5], hydrogens=False)
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) * 0.8
    template = group_template(topology, corners, 0.1)
    return topology, rigid_frames(topology, template, n_frames=20)


@pytest.fixture(scope="module")
def ala2_training(ala2_reference):
    data = TrajectoryData.concatenate([read_trajectory(p) for p in ala2_reference])
    return FoldData.split(data, 2, 0).training


def test_the_mean_structure_of_rigidly_moved_copies_is_the_template(two_chains):
    topology, data = two_chains
    template = group_template(topology, np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]]), 0.15)
    mean = mean_structure(data, max_frames=1000)
    masses = np.array([a.element.mass for a in topology.atoms])
    aligned = superpose(template[None], mean, masses)[0]
    # 30 frames of 0.005 nm noise: the mean is within a few thousandths of a nm.
    assert np.abs(aligned - mean).max() < 0.005
    # Without the superposition the average of the rotated copies is no structure at all.
    assert np.abs(data.coordinates.mean(axis=0) - aligned).max() > 0.1


def test_superpose_recovers_a_known_rotation():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(6, 3))
    rotation = Rotation.random(random_state=4).as_matrix()
    moved = reference @ rotation.T + [1.0, -2.0, 0.5]
    back = superpose(moved[None], reference, rng.uniform(1, 16, 6))[0]
    np.testing.assert_allclose(back, reference, atol=1e-10)
    # A mirror image is not superposable by a proper rotation.
    mirrored = superpose(reference[None] * [-1, 1, 1], reference, np.ones(6))[0]
    assert np.abs(mirrored - reference).max() > 0.1


def test_two_separated_chains_are_the_two_beads(two_chains):
    topology, data = two_chains
    method = KMeansMap(n_beads=2)
    mapping = method.build(topology, data, seed=0)
    assert groups_of(mapping) == [list(range(8)), list(range(8, 16))]
    assert mapping.bonds.tolist() == [[0, 1]]
    np.testing.assert_allclose(mapping.bead_masses, 4 * (12.011 + 1.008), rtol=1e-4)
    assert method.fit_table.k.tolist() == [2] and method.fit_table.chosen.tolist() == [True]


def test_the_elbow_of_two_separated_chains_is_two(two_chains):
    topology, data = two_chains
    method = KMeansMap(k_min=2, k_max=6)
    mapping = method.build(topology, data, seed=0)
    assert mapping.n_beads == 2
    assert groups_of(mapping) == [list(range(8)), list(range(8, 16))]
    table = method.fit_table
    # The curve is anchored at k_min - 1 = 1 (the whole molecule), which is never chosen.
    assert table.k.tolist() == [1, 2, 3, 4, 5, 6]
    assert table.loc[table.chosen, "k"].tolist() == [2]
    assert table.attrs["rule"] == "kneedle"
    assert np.all(np.diff(table.wcss) < 0)


def test_the_elbow_finds_four_clusters(four_clusters):
    topology, data = four_clusters
    method = KMeansMap(k_min=2, k_max=8, n_init=4)
    mapping = method.build(topology, data, seed=3)
    table = method.fit_table
    assert table.k.tolist() == list(range(1, 9))
    assert table.chosen.sum() == 1 and table.loc[table.chosen, "k"].item() == 4
    assert table.attrs["rule"] == "kneedle" and not table.attrs["k_max_clipped"]
    assert groups_of(mapping) == [list(range(5 * g, 5 * g + 5)) for g in range(4)]
    # The module function is the same rule (Autograin's k).
    k, same = elbow(
        topology, data, k_min=2, k_max=8, sensitivity=1.0, n_init=4, max_frames=2000, seed=3
    )
    assert k == 4 and same.equals(table)


def test_k_max_is_clipped_to_the_heavy_atoms(two_chains):
    topology, data = two_chains
    k, table = KMeansMap(k_min=2, k_max=20).choose_k(topology, data, seed=0)
    assert k == 2 and table.k.max() == 8 and table.attrs["k_max_clipped"]
    assert table.wcss.iloc[-1] == pytest.approx(0.0, abs=1e-12)  # one heavy atom per bead


def test_a_folded_chain_gives_connected_beads():
    # A hairpin: two arms of 8 carbons 0.25 nm apart, joined at one end. k-means of the
    # positions cuts across the arms; the beads must follow the bonds.
    topology = groups_topology([16])
    carbons = np.array([[0.15 * i, 0.0, 0.0] for i in range(8)])
    carbons = np.concatenate([carbons, carbons[::-1] + [0.0, 0.25, 0.0]])
    template = np.zeros((32, 3))
    template[0::2], template[1::2] = carbons, carbons + [0.0, 0.0, 0.1]
    heavy = heavy_atoms(topology)
    bonded = neighbours(topology)
    raw = KMeans(n_clusters=3, n_init=10, random_state=0).fit(carbons).labels_
    assert any(len(components(bonded, heavy[raw == b].tolist())) > 1 for b in range(3))
    for k in range(2, 7):
        labels, wcss = connected_kmeans(topology, template, k, n_init=10, seed=0)
        assert sorted(set(labels.tolist())) == list(range(k)) and wcss > 0
        for bead in range(k):
            assert len(components(bonded, np.flatnonzero(labels == bead).tolist())) == 1


def test_alanine_dipeptide_beads_are_connected_and_carry_their_hydrogens(ala2_training):
    topology = ala2_training.topology
    method = MAPPINGS.get("kmeans")()
    mapping = method.build(topology, ala2_training, seed=0)
    mapping.check()
    table = method.fit_table
    assert table.k.tolist() == list(range(1, 11))  # k_max = 10 = the heavy atoms
    assert table.chosen.sum() == 1
    assert mapping.n_beads == table.loc[table.chosen, "k"].item()
    bonded = neighbours(topology)
    bead_of = dict(zip(mapping.table.atom, mapping.table.bead, strict=True))
    assert sorted(bead_of) == list(range(topology.n_atoms))
    for group in groups_of(mapping):
        assert len(components(bonded, group)) == 1
    for atom in topology.atoms:
        if atom.element is md.element.hydrogen:
            (heavy,) = bonded[atom.index]
            assert bead_of[atom.index] == bead_of[heavy]


def test_the_same_seed_gives_the_same_map(ala2_training):
    topology = ala2_training.topology
    first, second = KMeansMap(n_init=3), KMeansMap(n_init=3)
    a = first.build(topology, ala2_training, seed=5)
    b = second.build(topology, ala2_training, seed=5)
    assert a.table.equals(b.table) and first.fit_table.equals(second.fit_table)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"k_min": 1}, "k_min"),
        ({"k_min": 2.5}, "k_min"),
        ({"k_max": 2}, "k_max"),
        ({"k_min": 6, "k_max": 5}, "k_max"),
        ({"n_beads": 1}, "n_beads"),
        ({"sensitivity": 0.0}, "sensitivity"),
        ({"sensitivity": True}, "sensitivity"),
        ({"n_init": 0}, "n_init"),
        ({"max_frames": 0}, "max_frames"),
        ({"centre": "median"}, "centre"),
    ],
)
def test_bad_options_are_refused_by_name(options, key):
    with pytest.raises(InputError, match=rf"mapping\.kmeans\.{key}"):
        KMeansMap(**options)


def test_options_the_molecule_cannot_meet_are_refused(two_chains):
    topology, data = two_chains
    with pytest.raises(InputError, match=r"mapping\.kmeans\.n_beads \(9\) exceeds the 8 heavy"):
        KMeansMap(n_beads=9).build(topology, data)
    with pytest.raises(InputError, match=r"mapping\.kmeans\.k_min \(9\) exceeds the 8 heavy"):
        KMeansMap(k_min=9, k_max=12).build(topology, data)
    with pytest.raises(InputError, match="needs the fold's training frames"):
        KMeansMap().build(topology, None)


def test_knee_rules():
    ks = np.arange(1, 7)
    assert knee(ks, [10.0, 1.0, 0.8, 0.6, 0.4, 0.2], 1.0) == (2, "kneedle")
    # No point below the chord: the fewest beads.
    assert knee(ks, [10.0, 8.0, 6.0, 4.0, 2.0, 0.0], 1.0) == (2, "no elbow")
    assert knee(ks, [1.0] * 6, 1.0) == (2, "no elbow")
    assert knee(np.array([1, 2]), [5.0, 1.0], 1.0) == (2, "single k")
