"""A model that samples i.i.d. as well as by dynamics: its draws are scored by the metrics
of the sampled ensemble (rows prefixed iid_, no burn-in, no echo, no stability), and the
simulation's JS over the draws' JS is a metric whose interval tells a gap from none."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from cgpipe import keys, paths
from cgpipe.data import split_frames
from cgpipe.evaluate import run
from cgpipe.evaluate.base import CGSample
from cgpipe.io import Provenance, TrajectoryData, write_trajectory

from .conftest import cg_topology, chain_frames, reference_data

METRICS = ["stability", "free_energy", "populations", "sampling_gap"]


def _write_draws(folds, tmp_path, frames_of_fold) -> None:
    for fold, paths_of_fold in enumerate(folds):
        coordinates = frames_of_fold(fold)
        draws = TrajectoryData(
            cg_topology(),
            coordinates,
            np.zeros(len(coordinates)),
            trajectory_index=np.arange(len(coordinates)),
        )
        path = tmp_path / f"sample/fold{fold}" / paths.TRAJECTORY_FILE
        write_trajectory(path, draws, Provenance("sample"))
        paths_of_fold["samples"] = path


def _heldout_copies(fold: int, copies: int = 4) -> np.ndarray:
    """The fold's held-out reference frames, each drawn ``copies`` times and jiggled by
    0.002 nm: draws about as close to the held-out ensemble as can be."""
    reference = reference_data()
    heldout = split_frames(reference.trajectory_index, 2, fold)[1]
    frames = np.tile(reference.coordinates[heldout], (copies, 1, 1))
    return frames + 0.002 * np.random.default_rng(fold).normal(size=frames.shape)


def _far(fold: int) -> np.ndarray:
    return chain_frames(np.random.default_rng(10 + fold), 48, 0.4)


def _evaluate(cfg, cg, folds, output):
    cfg["evaluate"]["metrics"] = METRICS
    cfg["evaluate"]["sampling_gap"] = {"pseudo_mass": 0.02, "resamples": 50}
    return run(cg, folds, output, system="toy", mapping="calpha", model="m", cfg=cfg)


def _value(table, metric, fold):
    row = table[(table[keys.METRIC] == metric) & (table[keys.FOLD] == fold)]
    assert len(row) == 1, (metric, fold)
    return row.iloc[0]


def test_draws_are_scored_beside_the_simulation(cfg, evaluation_inputs, tmp_path):
    cg, folds = evaluation_inputs
    _write_draws(folds, tmp_path, _heldout_copies)
    table = _evaluate(cfg, cg, folds, tmp_path / "out")
    names = set(table[keys.METRIC])
    for score in (keys.JS_RG_END_TO_END, keys.JS_TICA):
        for suffix in ("", keys.FLOOR_SUFFIX, keys.REPLAY_SUFFIX, keys.INSAMPLE_SUFFIX):
            assert score + suffix in names and keys.IID_PREFIX + score + suffix in names
        # Draws have no start set: no echo row for them, while the simulation has its.
        assert keys.IID_PREFIX + score + keys.ECHO_SUFFIX not in names
        assert score + keys.ECHO_SUFFIX in names
    # Populations of the draws, but the reference's rows and the echo once, not twice.
    drawn = [n for n in names if n.startswith(keys.IID_PREFIX + keys.POPULATION_PREFIX)]
    assert drawn and not any(keys.REFERENCE_SUFFIX in n or keys.ECHO_SUFFIX in n for n in drawn)
    # Stability is of dynamics only.
    assert keys.IID_PREFIX + keys.STABLE_FRACTION not in names
    # Every row has its caption, the draws' saying so.
    captions = json.loads(
        pq.read_schema(tmp_path / "out" / paths.METRICS_FILE).metadata[keys.PARQUET_CAPTIONS_KEY]
    )
    assert set(captions) == names
    assert captions[keys.IID_PREFIX + keys.JS_TICA].startswith("Of the model's i.i.d. draws")
    # Draws that are the held-out frames themselves score near nothing on the held-out
    # trajectories; the 8-frame simulation far more.
    for fold in ("fold0", "fold1"):
        iid = _value(table, keys.IID_PREFIX + keys.JS_RG_END_TO_END, fold)[keys.VALUE]
        simulated = _value(table, keys.JS_RG_END_TO_END, fold)[keys.VALUE]
        assert iid < 0.2 * simulated


def test_the_gap_tells_a_simulation_worse_than_its_draws_from_one_that_is_not(
    cfg, evaluation_inputs, tmp_path
):
    cg, folds = evaluation_inputs
    gap = keys.SAMPLING_GAP_PREFIX + "rg_end_to_end"
    _write_draws(folds, tmp_path / "close", _heldout_copies)
    close = _evaluate(cfg, cg, folds, tmp_path / "close_out")
    _write_draws(folds, tmp_path / "far", _far)
    far = _evaluate(cfg, cg, folds, tmp_path / "far_out")
    for fold in ("fold0", "fold1", keys.ALL_FOLDS):
        worse = _value(close, gap, fold)
        better = _value(far, gap, fold)
        # The simulation is far worse than draws of the held-out frames: the ratio's whole
        # interval lies above 1; against draws far from everything, below 1, and the two
        # intervals apart (the simulation has 4 replicas: its interval is wide).
        assert 1 < worse[keys.LOW] <= worse[keys.VALUE] <= worse[keys.HIGH]
        assert better[keys.LOW] <= better[keys.VALUE] < 1
        assert better[keys.HIGH] < worse[keys.LOW]
        # The ratio is the two JS rows' ratio.
        js = keys.JS_RG_END_TO_END
        expected = (
            _value(close, js, fold)[keys.VALUE]
            / _value(close, keys.IID_PREFIX + js, fold)[keys.VALUE]
        )
        assert worse[keys.VALUE] == pytest.approx(expected, rel=1e-9)


def test_a_model_without_draws_has_no_iid_rows(cfg, evaluation_inputs, tmp_path):
    cg, folds = evaluation_inputs
    table = _evaluate(cfg, cg, folds, tmp_path / "out")
    assert not table[keys.METRIC].str.startswith(keys.IID_PREFIX).any()
    assert not table[keys.METRIC].str.startswith(keys.SAMPLING_GAP_PREFIX).any()


def test_independent_draws_are_resampled_one_by_one():
    # The bootstrap of a mean over i.i.d. draws: its variance is the sample variance / n.
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    sample = CGSample.independent(np.arange(400))
    assert sample.echo_frames() is None and sample.echo(x) is None
    means = [x[frames].mean() for frames in sample.resampling().resamples(rng, 2000)]
    assert np.var(means) == pytest.approx(np.var(x) / 400, rel=0.15)
