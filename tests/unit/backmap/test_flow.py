"""The generative backmapper: equivariance under rotation, translation and reflection,
exact reconstruction of a rigid toy, the hand of its stereocentres, and its checkpoint."""

from __future__ import annotations

import mdtraj as md
import numpy as np
import pandas as pd
import pytest
import torch

from cgpipe import keys
from cgpipe.backmap import load_backmapper, save_backmapper
from cgpipe.backmap.flow import FlowBackmapper
from cgpipe.backmap.quality import chirality
from cgpipe.epochs import EpochCheckpoint
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData
from cgpipe.mapping import Mapping

# A rigid L-alanine-like centre: N, CA, C on the beads, CB and HA placed by the network.
CENTRE = np.array(
    [
        [-0.1218, 0.0694, 0.0],  # N
        [0.0, 0.0, 0.0],  # CA
        [0.1220, 0.0901, 0.0],  # C
        [0.0, -0.0890, -0.1250],  # CB
        [0.0, -0.0620, 0.0880],  # HA
    ]
)


def _rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return q * np.sign(np.linalg.det(q))[:, None, None]


def _toy() -> tuple[md.Topology, Mapping]:
    topology = md.Topology()
    residue = topology.add_residue("ALA", topology.add_chain())
    atoms = [
        topology.add_atom(name, md.element.get_by_symbol(symbol), residue)
        for name, symbol in [("N", "N"), ("CA", "C"), ("C", "C"), ("CB", "C"), ("HA", "H")]
    ]
    for other in (0, 2, 3, 4):
        topology.add_bond(atoms[1], atoms[other])
    cg = md.Topology()
    cg_residue = cg.add_residue("ALA", cg.add_chain())
    for name in ("N", "CA", "C"):
        cg.add_atom(name, md.element.carbon, cg_residue)
    table = pd.DataFrame(
        {
            "bead": [0, 1, 2, 1, 1],
            "atom": [0, 1, 2, 3, 4],
            "weight": [1.0, 1.0, 1.0, 0.0, 0.0],
            "force_weight": [1.0, 1.0, 1.0, 1.0, 1.0],
            "bead_name": ["N", "CA", "C", "CA", "CA"],
            "bead_type": [0, 1, 2, 1, 1],
            "mass": 12.0,
            "residue_index": 0,
            "residue_name": "ALA",
            "residue_seq": 1,
        }
    )
    return topology, Mapping("toy", 5, table, cg)


def _frames(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.einsum("fij,aj->fai", _rotations(rng, n), CENTRE) + rng.normal(size=(n, 1, 3))


def _trained(epochs: int = 150, **options) -> tuple[FlowBackmapper, md.Topology, Mapping]:
    topology, mapping = _toy()
    frames = _frames(np.random.default_rng(0), 400)
    training = TrajectoryData(topology, frames, np.arange(400.0))
    settings = dict(
        samples=2, steps=20, noise=0.05, width=32, layers=3, neighbours=6, epochs=epochs,
        batch_size=32, learning_rate=3e-3, max_frames=400, patience=epochs,
    )  # fmt: skip
    backmapper = FlowBackmapper(**{**settings, **options})
    backmapper.fit(training, mapping, seed=3)
    return backmapper, topology, mapping


@pytest.fixture(scope="module")
def trained():
    return _trained()


def _cg(mapping: Mapping, frames: np.ndarray) -> TrajectoryData:
    beads = np.einsum("ba,fad->fbd", mapping.coordinate_map, frames)
    return TrajectoryData(mapping.topology, beads, np.arange(len(frames), dtype=float))


def test_a_flow_trained_on_a_rigid_toy_rebuilds_it(trained):
    backmapper, _, mapping = trained
    truth = _frames(np.random.default_rng(11), 50)
    positions, table = backmapper.backmap(_cg(mapping, truth))
    assert positions.shape == (100, 5, 3)
    assert table[keys.SAMPLE].tolist() == [0, 1] * 50
    error = np.linalg.norm(positions - np.repeat(truth, 2, axis=0), axis=-1)
    # Bonds of 0.11-0.15 nm, atoms started 0.05 nm wide: rebuilt to a few thousandths
    # (an untrained flow, or one that lost the hand, is 0.1-0.3 nm off).
    placed = error[:, 3:]
    assert np.median(placed) < 0.01 and placed.max() < 0.05, (np.median(placed), placed.max())
    np.testing.assert_allclose(error[:, :3], 0.0, atol=1e-5)  # beads' atoms stay put


@pytest.mark.parametrize("mirror", [False, True])
def test_the_flow_is_equivariant_under_rotation_translation_and_reflection(trained, mirror):
    backmapper, _, mapping = trained
    rng = np.random.default_rng(5)
    frames = _frames(rng, 6)
    beads = torch.as_tensor(np.einsum("ba,fad->fbd", mapping.coordinate_map, frames))
    owner = torch.as_tensor(backmapper.owner)
    start = beads[:, owner] + 0.05 * torch.randn(6, 5, 3, dtype=torch.float64)
    backmapper.network.double()
    try:
        rotation = torch.as_tensor(_rotations(rng, 1)[0])
        if mirror:
            rotation = rotation @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
        shift = torch.as_tensor(rng.normal(size=3))

        def move(x):
            return x @ rotation.T + shift

        out = backmapper.integrate(beads, start, fix=False)
        moved = backmapper.integrate(move(beads), move(start), fix=False)
    finally:
        backmapper.network.float()
    np.testing.assert_allclose(moved.numpy(), move(out).numpy(), atol=1e-9)


def test_mirrored_cg_frames_draw_the_training_hand_when_mended(trained):
    backmapper, topology, mapping = trained
    truth = _frames(np.random.default_rng(2), 20)
    mirrored = truth * np.array([1.0, 1.0, -1.0])
    geometry = backmapper.geometry
    assert (chirality(truth, geometry) > 0).all()  # the toy is L
    positions, _ = backmapper.backmap(_cg(mapping, mirrored))
    assert (chirality(positions, geometry) > 0).all()  # mended to the training hand
    backmapper.hparams["fix_chirality"] = False
    try:
        unmended, _ = backmapper.backmap(_cg(mapping, mirrored))
    finally:
        backmapper.hparams["fix_chirality"] = True
    # Three beads in a plane do not tell the hands apart: unmended, both come out.
    assert 0.2 < (chirality(unmended, geometry) > 0).mean() < 0.8
    assert geometry.chiral.tolist() == [[1, 0, 2, 3]]


def test_a_saved_backmapper_draws_as_the_fitted_one(tmp_path, trained):
    backmapper, topology, mapping = trained
    path = tmp_path / "backmapper.pt"
    save_backmapper(path, backmapper, topology, Provenance("test"))
    loaded, loaded_topology = load_backmapper(path)
    assert isinstance(loaded, FlowBackmapper) and loaded.hparams == backmapper.hparams
    assert loaded.spread == backmapper.spread
    assert [a.name for a in loaded_topology.atoms] == [a.name for a in topology.atoms]
    cg = _cg(mapping, _frames(np.random.default_rng(4), 5))
    np.testing.assert_array_equal(loaded.backmap(cg)[0], backmapper.backmap(cg)[0])


def test_the_calibrated_start_is_as_wide_as_the_truths_spread_around_the_draws_centre():
    # Draws scattered 2 sigma around each frame's centre, truths 1 sigma: the draws are
    # overdispersed at full width, and as far apart as from the truth (diversity 0) at
    # half of it. Many atoms, so that an RMSD is its root mean square.
    from cgpipe.backmap.flow import CALIBRATION_STEPS, NARROWEST

    rng = np.random.default_rng(1)
    frames, atoms, sigma = 40, 300, 0.01
    centre = rng.normal(size=(frames, atoms, 3))
    truth = centre + sigma * rng.normal(size=centre.shape)
    backmapper = FlowBackmapper(samples=4)
    backmapper.geometry = type("Geometry", (), {"heavy": np.arange(atoms)})()

    def draw(beads, spread, *, batch=256):
        normal = np.random.default_rng(0).normal(size=(frames, 4, atoms, 3))
        return (centre[:, None] + spread * 2 * sigma * normal).reshape(-1, atoms, 3)

    backmapper.draw = draw
    step = np.log(1 / NARROWEST) / 2**CALIBRATION_STEPS
    backmapper.hparams["diversity"] = 0.0
    spread = backmapper.calibrate(truth, np.zeros((frames, 1, 3)))
    assert 0.5 / np.exp(step) <= spread <= 0.5, spread
    # Aiming at diversity d: RMSD among draws sqrt(8) s sigma against sqrt(4 s^2 + 1)
    # sigma to the truth (x sqrt 3), so 1 - d = sqrt(8) s / sqrt(4 s^2 + 1), and the
    # default 0.1 narrows to s = 0.9 / sqrt(8 - 4 x 0.81) = 0.4125.
    backmapper.hparams["diversity"] = 0.1
    spread = backmapper.calibrate(truth, np.zeros((frames, 1, 3)))
    expected = 0.9 / np.sqrt(8 - 4 * 0.81)
    assert expected / np.exp(step) * 0.98 <= spread <= expected * 1.02, spread
    with pytest.raises(InputError, match="diversity"):
        FlowBackmapper(diversity=1.0)
    # Per trajectory: the second half's truths lie half as far from the centre (frames
    # the flow rebuilds better). The target must hold there too, so the start narrows
    # to s = 0.9 / (2 sqrt(8 - 4 x 0.81)) = 0.206; pooled, the first half lets it widen.
    groups = np.arange(frames) >= frames // 2
    truth[groups] = centre[groups] + sigma / 2 * rng.normal(size=centre[groups].shape)
    expected = 0.9 / (2 * np.sqrt(8 - 4 * 0.81))
    spread = backmapper.calibrate(truth, np.zeros((frames, 1, 3)), groups)
    assert expected / np.exp(step) * 0.98 <= spread <= expected * 1.02, spread
    assert backmapper.calibrate(truth, np.zeros((frames, 1, 3))) > expected * 1.02
    backmapper.samples = 1  # one draw per frame has no spread to calibrate
    assert backmapper.calibrate(truth, np.zeros((frames, 1, 3))) == 1.0


def test_the_start_is_calibrated_on_frames_of_every_training_trajectory(monkeypatch):
    # One trajectory held back does not predict another; the frames fitted on are those
    # the flow rebuilds best. So the calibration sees CALIBRATION_FRAMES of each
    # trajectory, fitted and validation alike, labelled by trajectory.
    from cgpipe.backmap.flow import CALIBRATION_FRAMES

    topology, mapping = _toy()
    frames = _frames(np.random.default_rng(0), 90)
    labels = np.repeat([0, 1, 2], 30)
    training = TrajectoryData(topology, frames, np.arange(90.0), trajectory_index=labels)
    seen = {}

    def calibrate(self, truth, beads, groups=None):
        seen.update(truth=truth, beads=beads, groups=groups)
        return 0.5

    monkeypatch.setattr(FlowBackmapper, "calibrate", calibrate)
    backmapper = FlowBackmapper(epochs=1, max_frames=90, width=8, layers=1, samples=2)
    backmapper.fit(training, mapping, seed=0)
    assert backmapper.spread == 0.5
    groups, counts = np.unique(seen["groups"], return_counts=True)
    assert groups.tolist() == [0, 1, 2]
    # Two trajectories fitted on (30 frames each), the last validating (9 of its 30).
    assert counts.tolist() == [min(CALIBRATION_FRAMES, n) for n in (30, 30, 9)]
    # Each calibration frame is a training frame of its label, with its own CG image.
    index = [np.flatnonzero(np.abs(frames - t).max(axis=(1, 2)) < 1e-6) for t in seen["truth"]]
    assert all(len(k) == 1 for k in index)
    index = np.concatenate(index)
    np.testing.assert_array_equal(labels[index], seen["groups"])
    beads = np.einsum("ba,fad->fbd", mapping.coordinate_map, frames[index])
    np.testing.assert_allclose(seen["beads"], beads, atol=1e-6)


def test_a_flow_calibrates_its_start_unless_told_its_width(trained):
    from cgpipe.backmap.flow import NARROWEST

    # The rigid toy's heavy atoms are fixed by its beads and distances (diversity says
    # nothing there); the width is the calibration's and within its range.
    assert NARROWEST <= trained[0].spread <= 1.0
    assert trained[0].hparams["spread"] is None
    fixed, _, _ = _trained(epochs=2, spread=0.7)
    assert fixed.spread == 0.7
    with pytest.raises(InputError, match="spread"):
        FlowBackmapper(spread=1.5)


class _Killed(Exception):
    pass


def test_a_fit_killed_after_an_epoch_resumes_to_the_uninterrupted_result(monkeypatch):
    stored: list[bytes] = []
    checkpoint = EpochCheckpoint(lambda: stored[-1] if stored else None, stored.append)
    topology, mapping = _toy()
    frames = _frames(np.random.default_rng(0), 64)
    training = TrajectoryData(topology, frames, np.arange(64.0))

    def fitted(kill: bool) -> dict[str, torch.Tensor]:
        backmapper = FlowBackmapper(epochs=3, max_frames=64, width=8, layers=1, samples=1)
        if kill:
            original = backmapper._losses
            calls = {"n": 0}

            def dying(*args):
                calls["n"] += 1
                if calls["n"] > 3:  # two batches of epoch 0, its validation, then die
                    raise _Killed
                return original(*args)

            monkeypatch.setattr(backmapper, "_losses", dying)
            with pytest.raises(_Killed):
                backmapper.fit(training, mapping, seed=1, checkpoint=checkpoint)
            monkeypatch.undo()
            backmapper = FlowBackmapper(epochs=3, max_frames=64, width=8, layers=1, samples=1)
        backmapper.fit(training, mapping, seed=1, checkpoint=checkpoint if kill else None)
        return backmapper.state()

    uninterrupted, resumed = fitted(False), fitted(True)
    assert stored, "the killed fit saved no epoch"
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0)


def test_the_flow_validates_on_a_training_trajectory_held_back_whole():
    from cgpipe.backmap.flow import _split

    labels = np.repeat([3, 5, 8], 100)
    picked, validation = _split(labels, 60)
    assert validation.sum() == 6 and (~validation).sum() == 54
    assert set(labels[picked[validation]]) == {8}  # out of sample: the last trajectory
    assert 8 not in set(labels[picked[~validation]])
    assert len(np.unique(picked)) == len(picked)
    one, every_tenth = _split(np.zeros(100, dtype=int), 50)  # one trajectory: every tenth
    assert len(one) == 50 and every_tenth.sum() == 5


def test_mended_structures_keep_their_hand_and_their_cg_frame_however_rough():
    # An all but untrained flow from a wide start leaves centres nearly flat; the exact
    # fit onto the beads then moves N, CA and C, so the hand is mended after it.
    backmapper, _, mapping = _trained(epochs=1, noise=0.3)
    truth = _frames(np.random.default_rng(4), 200)
    positions, table = backmapper.backmap(_cg(mapping, truth))
    assert (chirality(positions, backmapper.geometry) > 0).all()
    assert table[keys.CG_RMSD].max() < 1e-5


def test_distance_constraints_rebuild_a_perturbed_centre_and_leave_fixed_atoms_alone():
    from cgpipe.backmap.flow import colour_pairs, constrain_distances

    rng = np.random.default_rng(8)
    truth = torch.as_tensor(_frames(rng, 50))
    # every pair one or two bonds apart: CA's four bonds and the six pairs across it
    pairs = torch.tensor(
        [[1, 0], [1, 2], [1, 3], [1, 4], [0, 2], [0, 3], [0, 4], [2, 3], [2, 4], [3, 4]]
    )
    i, j = pairs[:, 0], pairs[:, 1]
    target = (truth[0, i] - truth[0, j]).norm(dim=-1)
    mobility = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    x = truth.clone()
    x[:, 3:] += 0.02 * torch.as_tensor(rng.normal(size=(50, 2, 3)))  # CB and HA off
    error = (x[:, i] - x[:, j]).norm(dim=-1) - target
    assert error.abs().max() > 0.01
    groups = colour_pairs(i.tolist(), j.tolist())
    assert sorted(torch.cat(groups).tolist()) == list(range(len(pairs)))
    for group in groups:  # no atom twice in a group
        atoms = torch.cat([i[group], j[group]])
        assert len(set(atoms.tolist())) == len(atoms)
    for _ in range(200):
        x = constrain_distances(x, i, j, target, mobility, groups)
    np.testing.assert_array_equal(x[:, :3].numpy(), truth[:, :3].numpy())  # fixed: untouched
    error = (x[:, i] - x[:, j]).norm(dim=-1) - target
    assert error.abs().max() < 1e-5, float(error.abs().max())
    # Distances fix CB and HA up to a mirror through N-CA-C; 0.02 nm does not cross it.
    np.testing.assert_allclose(x.numpy(), truth.numpy(), atol=1e-4)


def test_constrained_draws_keep_their_cg_frame_and_have_the_training_bond_lengths(trained):
    backmapper, _, mapping = trained
    truth = _frames(np.random.default_rng(12), 40)
    bonds = backmapper.geometry.bonds
    true_length = np.linalg.norm(CENTRE[bonds[:, 0]] - CENTRE[bonds[:, 1]], axis=-1)
    deviation = {}
    default = backmapper.hparams["constrain"]
    for sweeps in (0, 100):
        backmapper.hparams["constrain"] = sweeps
        try:
            positions, table = backmapper.backmap(_cg(mapping, truth))
        finally:
            backmapper.hparams["constrain"] = default
        length = np.linalg.norm(positions[:, bonds[:, 0]] - positions[:, bonds[:, 1]], axis=-1)
        deviation[sweeps] = np.abs(length - true_length).max()
        assert table[keys.CG_RMSD].max() < 1e-5
        assert (chirality(positions, backmapper.geometry) > 0).all()
    # The training frames are rigid: their mean lengths are the true ones.
    assert deviation[100] < 1e-4 < deviation[0], deviation


def test_a_prolines_ring_is_its_centres_side_and_reflects_with_n_kept_bonded():
    from cgpipe.backmap.flow import _side

    topology = md.Topology()
    residue = topology.add_residue("PRO", topology.add_chain())
    names = ["N", "CA", "C", "CB", "CG", "CD", "HA"]
    atom = {
        name: topology.add_atom(name, md.element.get_by_symbol(name[0]), residue) for name in names
    }
    for a, b in [
        ("N", "CA"),
        ("CA", "C"),
        ("CA", "CB"),
        ("CB", "CG"),
        ("CG", "CD"),
        ("CD", "N"),
        ("CA", "HA"),
    ]:
        topology.add_bond(atom[a], atom[b])
    index = {name: atom[name].index for name in names}
    side = _side(topology, index["CA"], index["CB"], {index["N"], index["C"]})
    assert side == sorted(index[name] for name in ("CB", "CG", "CD", "HA"))
    # Reflected through the N-CA-C plane the ring keeps its bond to N and turns the hand.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 3))
    normal = np.cross(x[index["N"]] - x[index["CA"]], x[index["C"]] - x[index["CA"]])
    normal /= np.linalg.norm(normal)
    mirrored = x.copy()
    height = (x[side] - x[index["CA"]]) @ normal
    mirrored[side] -= 2 * height[:, None] * normal
    bond = [np.linalg.norm(y[index["CD"]] - y[index["N"]]) for y in (x, mirrored)]
    assert bond[0] == pytest.approx(bond[1])
    hand = [
        np.sign(
            np.cross(y[index["N"]] - y[index["CA"]], y[index["C"]] - y[index["CA"]])
            @ (y[index["CB"]] - y[index["CA"]])
        )
        for y in (x, mirrored)
    ]
    assert hand[0] == -hand[1]


def test_separation_pushes_only_pairs_closer_than_contact_and_spares_fixed_atoms():
    from cgpipe.backmap.flow import separate

    x = torch.tensor(
        [[[0.0, 0, 0], [0.1, 0, 0], [0.0, 0.5, 0], [0.0, 0.7, 0], [0.0, 0.0, 0.2]]],
        dtype=torch.float64,
    )
    i, j = torch.tensor([0, 2, 0]), torch.tensor([1, 3, 4])
    mobility = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    y = separate(x, i, j, 0.25, mobility)
    # 0-1 (0.1 nm) and 0-4 (0.2 nm, 4 fixed) are short; 2-3 (0.2) too; atom 0 is in two
    # short pairs and moves by the mean of their moves.
    np.testing.assert_allclose(y[0, 4].numpy(), x[0, 4].numpy())
    np.testing.assert_allclose(y[0, 1].numpy(), [0.175, 0, 0])
    np.testing.assert_allclose(y[0, 0].numpy(), [-0.0375, 0, -0.025])
    np.testing.assert_allclose((y[0, 3] - y[0, 2]).norm().item(), 0.25)
    far = separate(x, torch.tensor([1]), torch.tensor([3]), 0.25, mobility)
    np.testing.assert_array_equal(far.numpy(), x.numpy())  # 0.71 nm apart: untouched


def test_sweeps_of_separation_and_constraints_unfold_a_squashed_butane():
    # C1-C2-C3-C4 with C1 and C4 (three bonds apart) squashed to 0.12 nm: sweeps end with
    # the bonds (0.153 nm) and the 1-3 distances (0.25 nm, 109.5 degrees) met and the 1-4
    # pair at least at contact (cis butane's C1-C4 is 0.254 nm, so all can be met).
    from cgpipe.backmap.flow import colour_pairs, constrain_distances, separate

    bond, across = 0.153, 0.25
    x = torch.tensor(
        [[[0.0, 0.06, 0.0], [0.14, 0.1, 0.0], [0.14, -0.1, 0.0], [0.0, -0.06, 0.0]]],
        dtype=torch.float64,
    )
    i, j = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([1, 2, 3, 2, 3])
    target = torch.tensor([bond, bond, bond, across, across], dtype=torch.float64)
    mobility = torch.ones(4, dtype=torch.float64)
    groups = colour_pairs(i.tolist(), j.tolist())
    for _ in range(200):
        x = separate(x, torch.tensor([0]), torch.tensor([3]), 0.25, mobility)
        x = constrain_distances(x, i, j, target, mobility, groups)
    distance = (x[0, i] - x[0, j]).norm(dim=-1)
    np.testing.assert_allclose(distance.numpy(), target.numpy(), atol=1e-5)
    assert (x[0, 0] - x[0, 3]).norm().item() > 0.25 - 1e-4


def test_a_threonines_two_centres_are_mended_in_order():
    # pdbfixer's threonine template (L: CA 2S, CB 3R) with its CA turned alone: reflecting
    # the CA's side chain turns the CB within it, so the CB must be read after the CA's
    # turn, not before (both L at the end).
    from pathlib import Path

    import pdbfixer

    template = md.load(str(Path(pdbfixer.__file__).parent / "templates" / "THR.pdb"))
    topology = template.topology
    ca = next(a.index for a in topology.atoms if a.name == "CA")
    xi = np.zeros((1, topology.n_atoms))
    xi[0, ca] = 1.0  # a C-alpha map: both centres are the flow's to place
    backmapper = FlowBackmapper(width=8, layers=1, neighbours=4)
    backmapper._build(topology, xi, np.zeros(topology.n_atoms, dtype=np.int64))
    assert len(backmapper._free_centres) == 2
    backmapper.hand = np.ones(2)
    x = torch.as_tensor(template.xyz, dtype=torch.float64)
    assert chirality(x.numpy(), backmapper.geometry).tolist() == [[1.0, 1.0]]
    both = backmapper._turn(x, -torch.ones(1, 2))  # the mirror image: CA turned, CB with it
    assert chirality(both.numpy(), backmapper.geometry).tolist() == [[-1.0, -1.0]]
    only_ca = backmapper._turn(both, torch.tensor([[-1.0, 1.0]]))
    assert chirality(only_ca.numpy(), backmapper.geometry).tolist() == [[-1.0, 1.0]]
    mended = backmapper.mend(only_ca)
    assert chirality(mended.numpy(), backmapper.geometry).tolist() == [[1.0, 1.0]]
    # Reflections keep every distance to the atoms a centre's plane holds.
    bonds = backmapper.geometry.bonds
    lengths = np.linalg.norm(template.xyz[0, bonds[:, 0]] - template.xyz[0, bonds[:, 1]], axis=-1)
    mended_lengths = (mended[0, bonds[:, 0]] - mended[0, bonds[:, 1]]).norm(dim=-1).numpy()
    np.testing.assert_allclose(mended_lengths, lengths, atol=1e-6)
