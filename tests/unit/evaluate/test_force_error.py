"""The force_error metric: the force RMSE of each fold's model and of its prior alone,
and their paired difference Delta MSE with its block-bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgpipe import keys
from cgpipe.data import evenly, split_frames
from cgpipe.evaluate import METRICS
from cgpipe.evaluate.statistics import block_bootstrap_difference
from cgpipe.io import TrajectoryData
from cgpipe.models.prior_model import PriorModel

from .conftest import N_BEADS, cg_topology, chain_frames, make_context, metric_rows, reference_data


def _serve(monkeypatch, model):
    """Every fold's checkpoint loads as ``model``."""
    monkeypatch.setattr("cgpipe.evaluate.base.load_model", lambda path: model)


class _Harmonic:
    """E = k/2 |z|^2 - bias . sum_i z_i: forces -k z + bias (kJ/mol/nm); its prior is
    the field ``prior`` (default: the zero force field)."""

    def __init__(self, k: float, bias=(0.0, 0.0, 0.0), prior: _Harmonic | None = None) -> None:
        self.k = k
        self.bias = torch.tensor(bias, dtype=torch.float32)
        self.prior = prior

    def energy_and_forces(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        energy = 0.5 * self.k * (positions**2).sum(dim=(1, 2)) - (positions @ self.bias).sum(1)
        return energy, -self.k * positions + self.bias

    def prior_model(self) -> _Harmonic:
        return self.prior if self.prior is not None else _Harmonic(0.0)


def test_force_error_scores_the_model_and_its_prior_on_held_out_frames(
    cfg, evaluation_inputs, monkeypatch
):
    _, folds = evaluation_inputs
    loaded = []

    def load_model(path):
        loaded.append(path)
        return _Harmonic(2.0)

    monkeypatch.setattr("cgpipe.evaluate.base.load_model", load_model)
    reference = reference_data()
    context = make_context(cfg, folds, reference)
    rows = metric_rows(METRICS.get("force_error")(max_frames=5, resamples=50), context)
    assert [(row.fold, row.metric) for row in rows] == [
        ("fold0", keys.FORCE_RMSE_HELDOUT),
        ("fold0", keys.FORCE_RMSE_HELDOUT_PRIOR),
        ("fold0", keys.FORCE_DELTA_MSE),
        ("fold1", keys.FORCE_RMSE_HELDOUT),
        ("fold1", keys.FORCE_RMSE_HELDOUT_PRIOR),
        ("fold1", keys.FORCE_DELTA_MSE),
        (keys.ALL_FOLDS, keys.FORCE_DELTA_MSE),
    ]
    assert loaded == [folds[0]["model"], folds[1]["model"]]
    for fold in (0, 1):
        frames = evenly(split_frames(reference.trajectory_index, 2, fold)[1], 5)
        assert len(frames) == 5 and (reference.trajectory_index[frames] == fold).all()
        x, f = reference.coordinates[frames], reference.forces[frames]
        model_rmse = np.sqrt(np.mean((-2.0 * x - f) ** 2))
        prior_rmse = np.sqrt(np.mean(f**2))
        assert rows[3 * fold].value == pytest.approx(model_rmse, rel=1e-5)
        assert rows[3 * fold + 1].value == pytest.approx(prior_rmse, rel=1e-5)
        assert np.isnan(rows[3 * fold].low) and np.isnan(rows[3 * fold + 1].high)


def test_force_error_has_no_rows_without_reference_forces(cfg, evaluation_inputs):
    _, folds = evaluation_inputs  # the model files do not exist: nothing may load them
    context = make_context(cfg, folds, reference_data(with_forces=False))
    assert metric_rows(METRICS.get("force_error")(max_frames=10), context) == []


def test_a_model_without_a_prior_has_no_delta_mse(cfg, evaluation_inputs, monkeypatch):
    class _NoPrior(_Harmonic):
        def prior_model(self) -> None:
            return None

    _, folds = evaluation_inputs
    _serve(monkeypatch, _NoPrior(2.0))
    rows = metric_rows(METRICS.get("force_error")(max_frames=5), make_context(cfg, folds))
    assert [row.metric for row in rows] == [keys.FORCE_RMSE_HELDOUT] * 2


# --- Delta MSE: the force noise cancels in the paired difference -------------------------------
SIGMA = 2.0  # kJ/mol/nm: force noise per component, much larger than the prior's bias
BIAS = (0.2, -0.3, 0.4)  # kJ/mol/nm: the prior's error, the same on every bead
K = 1.0  # kJ/mol/nm^2


def _noisy_reference(n_trajectories: int = 4, n_frames: int = 300) -> TrajectoryData:
    """Reference forces F_true + noise, F_true = -K z, noise N(0, SIGMA^2) per component."""
    rng = np.random.default_rng(7)
    n = n_trajectories * n_frames
    coordinates = chain_frames(rng, n, 0.05)
    forces = -K * coordinates + SIGMA * rng.normal(size=coordinates.shape)
    return TrajectoryData(
        cg_topology(),
        coordinates,
        np.arange(n, dtype=float),
        forces=forces,
        trajectory_index=np.repeat(np.arange(n_trajectories), n_frames),
    )


def test_delta_mse_recovers_the_prior_bias_through_the_force_noise(
    cfg, evaluation_inputs, monkeypatch
):
    """A model that predicts the mean force exactly against a prior off by a constant
    bias: E[Delta MSE] = mean(bias^2) (the noise term -2 bias . noise averages out), and
    pairing frames removes the noise that both errors share, so the interval is far
    narrower than that of either MSE alone."""
    _, folds = evaluation_inputs
    prior = _Harmonic(K, BIAS)
    _serve(monkeypatch, _Harmonic(K, prior=prior))
    reference = _noisy_reference()
    context = make_context(cfg, folds, reference)
    rows = metric_rows(METRICS.get("force_error")(max_frames=10_000, resamples=500), context)
    delta = {row.fold: row for row in rows if row.metric == keys.FORCE_DELTA_MSE}
    assert set(delta) == {"fold0", "fold1", keys.ALL_FOLDS}

    expected = np.mean(np.square(BIAS))
    for fold in (0, 1):
        row = delta[f"fold{fold}"]
        assert row.low <= expected <= row.high
        assert row.low > 0
        # By hand: per-frame MSEs in float64 from the analytic forces.
        frames = context.heldout_frames(fold)
        x, f = reference.coordinates[frames], reference.forces[frames]
        model_mse = ((-K * x - f) ** 2).mean(axis=(1, 2))
        prior_mse = ((-K * x + np.asarray(BIAS) - f) ** 2).mean(axis=(1, 2))
        assert row.value == pytest.approx(np.mean(prior_mse - model_mse), rel=1e-5)
        # The model's MSE alone, resampled the same way, has an interval many times wider.
        alone = block_bootstrap_difference(
            model_mse,
            np.zeros_like(model_mse),
            None,
            np.random.default_rng(0),
            500,
            trajectory_labels=reference.trajectory_index[frames],
        )
        assert row.high - row.low < alone.width / 3
        rmse = {r.metric: r.value for r in rows if r.fold == f"fold{fold}"}
        assert rmse[keys.FORCE_RMSE_HELDOUT_PRIOR] ** 2 - rmse[
            keys.FORCE_RMSE_HELDOUT
        ] ** 2 == pytest.approx(row.value, rel=1e-4)

    # Pooled over folds: the mean of all paired frames, inside the per-fold extremes.
    pooled = delta[keys.ALL_FOLDS]
    per_fold = [delta["fold0"].value, delta["fold1"].value]
    assert min(per_fold) <= pooled.value <= max(per_fold)
    assert pooled.low <= expected <= pooled.high and pooled.low > 0


def test_a_model_identical_to_its_prior_has_no_delta_mse(cfg, evaluation_inputs, monkeypatch):
    """A real prior-only model: its prior alone is the same force field, frame by frame."""
    bonds = [[i, i + 1] for i in range(N_BEADS - 1)]
    prior = {
        "terms": {
            "bonds": {"pairs": bonds, "k": [5000.0] * len(bonds), "r0": [0.38] * len(bonds)},
            "repulsion": {"pairs": [[0, 3]], "sigma": [0.4], "epsilon": 1.0, "exponent": 6},
        },
        "temperature": 300.0,
    }
    _, folds = evaluation_inputs
    _serve(monkeypatch, PriorModel(bead_types=[0] * N_BEADS, prior=prior))
    rows = metric_rows(
        METRICS.get("force_error")(max_frames=100, resamples=50), make_context(cfg, folds)
    )
    delta = [row for row in rows if row.metric == keys.FORCE_DELTA_MSE]
    assert [row.fold for row in delta] == ["fold0", "fold1", keys.ALL_FOLDS]
    for row in delta:
        assert (row.value, row.low, row.high) == (0.0, 0.0, 0.0)
    rmse = {(row.fold, row.metric): row.value for row in rows}
    assert rmse["fold0", keys.FORCE_RMSE_HELDOUT] > 0
    assert rmse["fold0", keys.FORCE_RMSE_HELDOUT] == rmse["fold0", keys.FORCE_RMSE_HELDOUT_PRIOR]
