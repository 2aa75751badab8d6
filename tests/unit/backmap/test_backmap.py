"""Backmapping: the nearest-template method, the backmapper registry, and ``run``."""

from __future__ import annotations

import copy

import mdtraj as md
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cgpipe import keys
from cgpipe.backmap import BACKMAPPERS, Backmapper, fit, run
from cgpipe.backmap.nearest import NearestTemplate, backmap_nearest
from cgpipe.data import FoldData, evenly
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import TrajectoryData, read_provenance, read_table, read_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.paths import (
    BACKMAP_HELDOUT_FILE,
    BACKMAP_TABLE_FILE,
    BACKMAPPER_FILE,
    TRAJECTORY_FILE,
    resolved_config_path,
)

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
    n = backmapper.samples
    assert positions.shape == (cg.n_frames * n, training.topology.n_atoms, 3)
    assert np.isfinite(positions).all()
    assert isinstance(table, pd.DataFrame) and len(table) == cg.n_frames * n
    assert {keys.REPLICA, keys.SAMPLE, keys.CG_RMSD} <= set(table.columns)
    np.testing.assert_array_equal(table[keys.REPLICA], np.repeat(cg.trajectory_index, n))
    np.testing.assert_array_equal(table[keys.SAMPLE], np.tile(np.arange(n), cg.n_frames))
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


def test_retrieval_tells_a_cg_frame_from_its_mirror_image(ala2_reference):
    # Internal distances are blind to a mirror image; the proper superposition is not.
    reference = read_trajectory(ala2_reference[0])
    centres = reference.topology.select("name N or name CA or name C or name CB")
    xi = np.zeros((len(centres), reference.topology.n_atoms))
    xi[np.arange(len(centres)), centres] = 1.0
    frame = reference.coordinates[:1].astype(np.float64)
    mirror = frame * np.array([1.0, 1.0, -1.0])
    templates = np.concatenate([mirror, frame])  # the mirror image first, same distances
    cg = np.einsum("ba,fad->fbd", xi, frame)
    _, template, cg_rmsd = backmap_nearest(cg, templates, xi)
    assert template.tolist() == [1] and cg_rmsd[0] < 1e-5


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


def _fit(inputs, output, cfg, method):
    fit(
        inputs["references"],
        inputs["mapping"],
        output,
        fold=FOLD,
        method=method,
        cfg=cfg,
        seed=7,
    )


def _run(inputs, output, cfg, method="nearest"):
    _fit(inputs, output / "fitted", cfg, method)
    run(
        inputs["simulation"],
        output / "fitted" / BACKMAPPER_FILE,
        inputs["references"],
        output,
        fold=FOLD,
        cfg=cfg,
    )


@pytest.mark.parametrize("name", BACKMAPPERS.names())
def test_fit_scores_the_held_out_frames_and_run_writes_every_structure(
    name, tmp_path, backmap_inputs, test_config
):
    _run(backmap_inputs, tmp_path, test_config, name)
    scores = read_table(tmp_path / "fitted" / BACKMAP_HELDOUT_FILE)
    assert set(scores["backmapper"]) == {name} and set(scores[keys.FOLD]) == {f"fold{FOLD}"}
    assert {"heavy_rmsd_best", "bond_fraction", "clash_score", "diversity"} <= set(scores["metric"])
    row = scores.set_index("metric").loc["bond_fraction"]
    assert row["low"] <= row["value"] <= row["high"] and row["floor"] == pytest.approx(1.0)
    stride = test_config["backmap"]["stride"]
    n = test_config["backmap"][name].get("samples", 1)
    cg = read_trajectory(backmap_inputs["simulation"], stride=stride)
    backmapped = read_trajectory(tmp_path / TRAJECTORY_FILE)
    reference = read_trajectory(backmap_inputs["references"][0])
    assert backmapped.coordinates.shape == (cg.n_frames * n, reference.topology.n_atoms, 3)
    assert [a.name for a in backmapped.topology.atoms] == [a.name for a in reference.topology.atoms]
    opened = md.load(str(tmp_path / TRAJECTORY_FILE))  # mdtraj opens it, bonds and all
    assert opened.n_frames == cg.n_frames * n
    assert opened.topology.n_bonds == reference.topology.n_bonds
    np.testing.assert_array_equal(backmapped.trajectory_index, np.repeat(cg.trajectory_index, n))
    table = read_table(tmp_path / BACKMAP_TABLE_FILE)
    np.testing.assert_array_equal(table[keys.REPLICA], np.repeat(cg.trajectory_index, n))
    assert len(table) == cg.n_frames * n and np.isfinite(table[keys.CG_RMSD]).all()
    assert {"bond_fraction", "clash_score", "chirality_errors", keys.PHI_ATOMS} <= set(table)
    record = read_provenance(tmp_path / TRAJECTORY_FILE)
    assert record["config"]["method"] == name
    assert record["config"]["fold"] == FOLD
    assert record["extra"] == {"fitted_on_trajectories": [0], "held_out_trajectories": [1]}
    fitted = read_provenance(tmp_path / "fitted" / BACKMAPPER_FILE)
    assert fitted["extra"]["fitted_on_trajectories"] == [0]
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
def test_fit_fits_every_backmapper_on_training_frames_only(
    name, tmp_path, backmap_inputs, test_config, monkeypatch
):
    method = BACKMAPPERS.get(name)
    original = method.fit
    received: list[TrajectoryData] = []

    def recording_fit(self, training, mapping, **options):
        received.append(training)
        return original(self, training, mapping, **options)

    monkeypatch.setattr(method, "fit", recording_fit)
    _fit(backmap_inputs, tmp_path, test_config, name)
    (training,) = received
    _assert_training_only(training, _held_out_split(backmap_inputs, test_config))


class _Centroid(Backmapper):
    """A toy plug-in: every atom of the first training frame, moved onto the CG centroid."""

    seen: list[TrajectoryData] = []

    def __init__(self, *, shift: float) -> None:
        self.shift = shift
        self.hparams = {"shift": shift}

    def fit(self, training, mapping, **options):
        _Centroid.seen.append(training)
        self.template = training.coordinates[0]
        self.xi = mapping.coordinate_map

    def state(self):
        return {
            "template": torch.as_tensor(self.template),
            "coordinate_map": torch.as_tensor(self.xi),
        }

    def restore(self, state, topology):
        self.template = state["template"].numpy()
        self.xi = state["coordinate_map"].numpy()

    def backmap(self, cg):
        centroid = cg.coordinates.mean(axis=1, keepdims=True)
        positions = self.template[None] - self.template.mean(axis=0) + centroid + self.shift
        table = pd.DataFrame(
            {
                keys.REPLICA: cg.trajectory_index,
                keys.SAMPLE: np.zeros(cg.n_frames, dtype=int),
                keys.CG_RMSD: np.zeros(cg.n_frames),
            }
        )
        return positions.astype(np.float32), table


def test_a_registered_plugin_backmapper_is_fitted_saved_and_applied(
    tmp_path, backmap_inputs, test_config
):
    BACKMAPPERS.register("centroid")(_Centroid)
    _Centroid.seen = []
    try:
        cfg = copy.deepcopy(test_config)
        cfg["backmap"]["centroid"] = {"shift": 0.5}
        _run(backmap_inputs, tmp_path, cfg, "centroid")
        cg = read_trajectory(backmap_inputs["simulation"], stride=cfg["backmap"]["stride"])
        backmapped = read_trajectory(tmp_path / TRAJECTORY_FILE)
    finally:
        BACKMAPPERS.unregister("centroid")
    (training,) = _Centroid.seen
    _assert_training_only(training, _held_out_split(backmap_inputs, cfg))
    np.testing.assert_allclose(
        backmapped.coordinates.mean(axis=1), cg.coordinates.mean(axis=1) + 0.5, atol=1e-5
    )
    assert "centroid" not in BACKMAPPERS


def test_a_backmapped_trajectory_exports_to_pdb_and_dcd(tmp_path, backmap_inputs, test_config):
    from cgpipe.cli import main

    _run(backmap_inputs, tmp_path, test_config, "flow")
    n = test_config["backmap"]["flow"]["samples"]
    backmapped = read_trajectory(tmp_path / TRAJECTORY_FILE)
    with pytest.raises(SystemExit) as done:
        main(
            ["export", str(tmp_path / TRAJECTORY_FILE), str(tmp_path / "one.dcd"), "--sample", "1"]
        )
    assert done.value.code == 0
    exported = md.load(str(tmp_path / "one.dcd"), top=str(tmp_path / "one.pdb"))
    assert exported.n_frames == backmapped.n_frames // n
    np.testing.assert_allclose(exported.xyz, backmapped.coordinates[1::n], atol=1e-3)
    with pytest.raises(SystemExit) as done:
        main(["export", str(tmp_path / TRAJECTORY_FILE), str(tmp_path / "all.pdb")])
    assert done.value.code == 0
    assert md.load(str(tmp_path / "all.pdb")).n_frames == backmapped.n_frames


def test_the_scatter_control_keeps_the_cg_frame_and_fails_the_geometry(backmap_inputs):
    # The negative control: on the CG frame exactly, and its bonds are not real ones.
    from cgpipe.backmap.quality import Geometry, bond_fraction, bond_lengths

    mapping = read_mapping(backmap_inputs["mapping"])
    training = read_trajectory(backmap_inputs["references"][0])
    control = BACKMAPPERS.get("scatter")(samples=2, noise=0.05)
    assert control.control and not BACKMAPPERS.get("flow").control
    control.fit(training, mapping)
    cg = _cg_of(read_trajectory(backmap_inputs["references"][1]), mapping)
    positions, table = control.backmap(cg)
    assert table[keys.CG_RMSD].max() < 1e-5
    geometry = Geometry.from_topology(training.topology)
    lengths = bond_lengths(training.coordinates, geometry).mean(0)
    real = bond_fraction(training.coordinates, geometry, lengths)
    scattered = bond_fraction(positions, geometry, lengths)
    assert real.mean() > 0.99 and scattered.mean() < 0.5
