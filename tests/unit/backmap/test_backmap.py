"""Backmapping: the nearest-template method, the backmapper registry, and ``run``."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from cgpipe import keys
from cgpipe.backmap import BACKMAPPERS, Backmapper, run
from cgpipe.backmap.nearest import NearestTemplate, backmap_nearest
from cgpipe.data import FoldData, evenly
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import TrajectoryData, read_provenance, read_table, read_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.paths import BACKMAP_TABLE_FILE, TRAJECTORY_FILE, resolved_config_path

FOLD = 1


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    mobile = rng.normal(size=(4, 10, 3))
    rotations = np.stack([_rotation(rng) for _ in range(4)])
    target = np.einsum("fij,fpj->fpi", rotations, mobile) + rng.normal(size=(4, 1, 3))
    rotation, translation = kabsch(mobile, target)
    np.testing.assert_allclose(rotation, rotations, atol=1e-10)
    np.testing.assert_allclose(superpose(mobile, rotation, translation), target, atol=1e-10)
    assert np.allclose(np.linalg.det(rotation), 1.0)


def test_backmapping_a_moved_template_returns_it_in_place(ala2_reference):
    reference = read_trajectory(ala2_reference[0])
    centres = reference.topology.select("name N or name CA or name C")
    xi = np.zeros((len(centres), reference.topology.n_atoms))
    xi[np.arange(len(centres)), centres] = 1.0
    templates = reference.coordinates.astype(np.float64)
    rng = np.random.default_rng(1)
    pick = [3, 11]
    rotations = np.stack([_rotation(rng) for _ in pick])
    moved = np.einsum("fij,fpj->fpi", rotations, templates[pick]) + 2.0
    cg = np.einsum("ba,fad->fbd", xi, moved)
    positions, template, cg_rmsd = backmap_nearest(cg, templates, xi)
    assert template.tolist() == pick
    np.testing.assert_allclose(cg_rmsd, 0.0, atol=1e-5)
    assert rmsd(positions, moved).max() < 1e-4


def _cg_of(data: TrajectoryData, mapping) -> TrajectoryData:
    return TrajectoryData(
        topology=mapping.topology,
        coordinates=np.einsum("ba,fad->fbd", mapping.coordinate_map, data.coordinates),
        time=data.time,
        trajectory_index=data.trajectory_index,
    )


@pytest.mark.parametrize("name", BACKMAPPERS.names())
def test_every_backmapper_builds_from_the_test_config_and_backmaps(
    name, test_config, backmap_inputs
):
    backmapper = BACKMAPPERS.get(name)(**test_config["backmap"][name])
    assert isinstance(backmapper, Backmapper) and backmapper.name == name
    mapping = read_mapping(backmap_inputs["mapping"])
    training = read_trajectory(backmap_inputs["references"][0])
    backmapper.fit(training, mapping)
    cg = _cg_of(read_trajectory(backmap_inputs["references"][1]), mapping)
    positions, table = backmapper.backmap(cg)
    assert positions.shape == (cg.n_frames, training.topology.n_atoms, 3)
    assert np.isfinite(positions).all()
    assert isinstance(table, pd.DataFrame) and len(table) == cg.n_frames
    assert {keys.REPLICA, keys.CG_RMSD} <= set(table.columns)
    assert (table[keys.CG_RMSD] >= 0).all()


@pytest.mark.parametrize("name", BACKMAPPERS.names())
def test_a_simulation_without_frames_backmaps_to_none(name, test_config, backmap_inputs):
    # Every replica of a bad model may fail before its first saved frame.
    backmapper = BACKMAPPERS.get(name)(**test_config["backmap"][name])
    mapping = read_mapping(backmap_inputs["mapping"])
    training = read_trajectory(backmap_inputs["references"][0])
    backmapper.fit(training, mapping)
    cg = _cg_of(training, mapping)
    empty = TrajectoryData(
        cg.topology, cg.coordinates[:0], cg.time[:0], trajectory_index=cg.trajectory_index[:0]
    )
    positions, table = backmapper.backmap(empty)
    assert positions.shape == (0, training.topology.n_atoms, 3) and len(table) == 0


def test_nearest_templates_are_at_most_max_templates_training_frames(backmap_inputs):
    mapping = read_mapping(backmap_inputs["mapping"])
    training = read_trajectory(backmap_inputs["references"][0])
    backmapper = NearestTemplate(max_templates=4)
    backmapper.fit(training, mapping)
    np.testing.assert_array_equal(
        backmapper.templates, training.coordinates[evenly(np.arange(training.n_frames), 4)]
    )
    _, table = backmapper.backmap(_cg_of(training, mapping))
    assert set(table[keys.TEMPLATE]) <= {0, 1, 2, 3}


def test_an_unknown_backmapper_is_an_input_error():
    with pytest.raises(ValueError, match="unknown backmapper 'magic'; known"):
        BACKMAPPERS.get("magic")


def _run(inputs, output, cfg):
    run(
        inputs["simulation"],
        inputs["references"],
        inputs["mapping"],
        output,
        fold=FOLD,
        cfg=cfg,
    )


def test_run_writes_the_trajectory_the_table_and_the_resolved_config(
    tmp_path, backmap_inputs, test_config
):
    _run(backmap_inputs, tmp_path, test_config)
    stride = test_config["backmap"]["stride"]
    cg = read_trajectory(backmap_inputs["simulation"], stride=stride)
    backmapped = read_trajectory(tmp_path / TRAJECTORY_FILE)
    reference = read_trajectory(backmap_inputs["references"][0])
    assert backmapped.coordinates.shape == (cg.n_frames, reference.topology.n_atoms, 3)
    np.testing.assert_array_equal(backmapped.trajectory_index, cg.trajectory_index)
    table = read_table(tmp_path / BACKMAP_TABLE_FILE)
    np.testing.assert_array_equal(table[keys.REPLICA], cg.trajectory_index)
    assert len(table) == cg.n_frames and np.isfinite(table[keys.CG_RMSD]).all()
    record = read_provenance(tmp_path / TRAJECTORY_FILE)
    assert record["config"]["method"] == test_config["backmap"]["method"]
    assert record["config"]["fold"] == FOLD
    assert record["extra"] == {"fitted_on_trajectories": [0], "held_out_trajectories": [1]}
    with open(resolved_config_path(tmp_path)) as handle:
        assert yaml.safe_load(handle) == test_config


def _held_out_split(inputs, cfg) -> FoldData:
    reference = TrajectoryData.concatenate([read_trajectory(p) for p in inputs["references"]])
    return FoldData.split(reference, cfg["train"]["n_folds"], FOLD)


def _assert_training_only(received: TrajectoryData, folds: FoldData) -> None:
    expected = folds.training
    np.testing.assert_array_equal(received.coordinates, expected.coordinates)
    np.testing.assert_array_equal(received.trajectory_index, expected.trajectory_index)
    held_out = folds.held_out.coordinates.reshape(folds.held_out.n_frames, -1)
    seen = received.coordinates.reshape(received.n_frames, -1)
    assert not (seen[:, None, :] == held_out[None, :, :]).all(axis=-1).any()


@pytest.mark.parametrize("name", BACKMAPPERS.names())
def test_run_fits_every_backmapper_on_training_frames_only(
    name, tmp_path, backmap_inputs, test_config, monkeypatch
):
    method = BACKMAPPERS.get(name)
    original = method.fit
    received: list[TrajectoryData] = []

    def recording_fit(self, training, mapping):
        received.append(training)
        return original(self, training, mapping)

    monkeypatch.setattr(method, "fit", recording_fit)
    cfg = copy.deepcopy(test_config)
    cfg["backmap"]["method"] = name
    _run(backmap_inputs, tmp_path, cfg)
    (training,) = received
    _assert_training_only(training, _held_out_split(backmap_inputs, cfg))


class _Centroid(Backmapper):
    """A toy plug-in: every atom of the first training frame, moved onto the CG centroid."""

    seen: list[TrajectoryData] = []

    def __init__(self, *, shift: float) -> None:
        self.shift = shift

    def fit(self, training, mapping):
        _Centroid.seen.append(training)
        self.template = training.coordinates[0]

    def backmap(self, cg):
        centroid = cg.coordinates.mean(axis=1, keepdims=True)
        positions = self.template[None] - self.template.mean(axis=0) + centroid + self.shift
        table = pd.DataFrame(
            {keys.REPLICA: cg.trajectory_index, keys.CG_RMSD: np.zeros(cg.n_frames)}
        )
        return positions.astype(np.float32), table


def test_run_uses_a_registered_plugin_backmapper_fitted_on_training_frames_only(
    tmp_path, backmap_inputs, test_config
):
    BACKMAPPERS.register("centroid")(_Centroid)
    _Centroid.seen = []
    try:
        cfg = copy.deepcopy(test_config)
        cfg["backmap"]["method"] = "centroid"
        cfg["backmap"]["centroid"] = {"shift": 0.5}
        _run(backmap_inputs, tmp_path, cfg)
    finally:
        BACKMAPPERS.unregister("centroid")
    (training,) = _Centroid.seen
    _assert_training_only(training, _held_out_split(backmap_inputs, cfg))
    cg = read_trajectory(backmap_inputs["simulation"], stride=cfg["backmap"]["stride"])
    backmapped = read_trajectory(tmp_path / TRAJECTORY_FILE)
    np.testing.assert_allclose(
        backmapped.coordinates.mean(axis=1), cg.coordinates.mean(axis=1) + 0.5, atol=1e-5
    )
    assert "centroid" not in BACKMAPPERS
