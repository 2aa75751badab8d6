"""The convergence check and the populations, against analytic results and hand counts."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, MetricRow
from cgpipe.evaluate.convergence import relaxation_time
from cgpipe.io import read_trajectory
from cgpipe.observables import PHI_PSI_STATES, phi_psi_basins

from .conftest import make_context


def _telegraph(rng, n_replicas, n_frames, p):
    """Two-state Markov chains that switch with probability p per frame."""
    flips = rng.random((n_replicas, n_frames)) < p
    return [np.cumsum(f) % 2 * 2.0 - 1.0 for f in flips]


def test_relaxation_time_of_a_telegraph_process_matches_the_analytic_value():
    # rho(t) = (1 - 2p)^t, so tau_int = dt (1/2 + sum_t rho(t)) = dt (1 - p) / (2 p).
    rng = np.random.default_rng(0)
    p, dt = 0.05, 0.1
    tau, complete = relaxation_time([_telegraph(rng, 64, 2000, p)], dt)
    assert complete
    assert tau == pytest.approx(dt * (1 - p) / (2 * p), rel=0.1)
    # The slowest of several observables is taken; a constant one is skipped.
    slow = _telegraph(rng, 64, 2000, 0.01)
    constant = [np.ones(2000)] * 64
    tau_slow, _ = relaxation_time([_telegraph(rng, 64, 2000, p), slow, constant], dt)
    assert tau_slow == pytest.approx(dt * 0.99 / 0.02, rel=0.15)


def test_a_run_shorter_than_its_window_is_a_lower_bound():
    rng = np.random.default_rng(1)
    _, complete = relaxation_time([_telegraph(rng, 64, 50, 0.01)], 0.1)
    assert not complete


def test_phi_psi_basins_follow_the_ramachandran_map():
    angles = np.radians([[-60, -45], [-140, 160], [-75, 150], [60, 40], [-80, 70], [-80, -170]])
    names = [PHI_PSI_STATES[k] for k in phi_psi_basins(angles)]
    assert names == ["alpha_R", "beta_PII", "beta_PII", "alpha_L", "beta_PII", "beta_PII"]


def test_populations_are_the_fractions_of_frames_in_each_state(cfg, evaluation_inputs):
    cg, folds = evaluation_inputs
    context = make_context(cfg, folds, read_trajectory(cg), tica_lag=1.0)
    metric = METRICS.get("populations")(resamples=50)
    with context.serving(metric):
        rows = {(r.fold, r.metric): MetricRow(*r) for r in metric.rows(context)}
        states = context.states
        reference = states.assign(context.reference)
        simulated = states.assign(context.simulation(1))
    labels = context.reference.trajectory_index
    for k, name in enumerate(states.names):
        pooled = rows[(keys.ALL_FOLDS, keys.POPULATION_PREFIX + name + keys.REFERENCE_SUFFIX)]
        assert pooled.value == pytest.approx(np.mean(reference == k))
        assert pooled.low <= pooled.value <= pooled.high
        first = rows[
            (keys.ALL_FOLDS, keys.POPULATION_PREFIX + name + keys.REFERENCE_SUFFIX + "_traj0")
        ]
        assert first.value == pytest.approx(np.mean(reference[labels == 0] == k))
        cg_row = rows[("fold1", keys.POPULATION_PREFIX + name)]
        assert cg_row.value == pytest.approx(np.mean(simulated == k))
        echo = rows[("fold1", keys.POPULATION_PREFIX + name + keys.ECHO_SUFFIX)]
        starts = np.repeat([0, 5, 12, 20], 2)  # the fixture's start frames, 2 frames each
        assert echo.value == pytest.approx(np.mean(reference[starts] == k))
    assert all(metric.caption(m) for _, m in rows)
    assert metric.caption("population_x_nonsense_suffix!") is None


class _StartSetContext:
    """What the start-set check reads: the states and a health table of 2 x 16 replicas."""

    def __init__(self):
        from cgpipe.observables import States

        self.states = States(PHI_PSI_STATES)
        self._health = pd.DataFrame(
            {
                keys.REPLICA: np.arange(32),
                keys.START_STATE: ["alpha_R"] * 16 + ["beta_PII"] * 16,
            }
        )

    def health(self, fold):
        return self._health


def _start_set(states_of_replica):
    """The check on replicas whose frames (200 each) are ``states_of_replica(replica, rng)``."""
    rng = np.random.default_rng(3)
    states = np.concatenate([states_of_replica(r, rng) for r in range(32)])
    simulation = SimpleNamespace(
        time=np.tile(np.arange(1, 201, dtype=float), 32),
        trajectory_index=np.repeat(np.arange(32), 200),
    )
    metric = METRICS.get("convergence")(min_relaxation_times=10, resamples=200)
    return metric._start_set(_StartSetContext(), 0, simulation, states, rng)


def test_start_groups_that_forgot_their_start_agree():
    same = _start_set(lambda r, rng: (rng.random(200) < 0.6).astype(np.int64))
    assert same.low <= 0 <= same.high


def test_start_groups_that_stay_where_they_started_disagree():
    stuck = _start_set(lambda r, rng: np.full(200, 0 if r < 16 else 1))
    assert stuck.value == pytest.approx(1.0) and stuck.low > 0


def test_a_rare_third_state_does_not_fail_the_start_set_check():
    # The same alpha_R/beta mix in both groups; 1-3 alpha_L frames in every replica of the
    # first only: a difference of ~0.01 whose bootstrap interval excludes 0.
    def states(replica, rng):
        frames = (rng.random(200) < 0.6).astype(np.int64)
        if replica < 16:
            frames[-(1 + replica % 3) :] = 2  # late frames: the check reads the second half
        return frames

    rare = _start_set(states)
    assert rare.low <= 0 <= rare.high
