"""The metric registry and each built-in metric on synthetic inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.evaluate import FOLD_FILES, METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import histogram_counts, kl, regularise
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table, write_trajectory

from .conftest import cg_topology, chain_frames, make_context, metric_rows, reference_data


def test_every_registered_metric_builds_from_the_test_config(cfg):
    names = METRICS.names()
    assert {"free_energy", "force_error", "stability", "backmap"} <= set(names)
    for name in names:
        metric = METRICS.get(name)(**cfg["evaluate"][name])
        assert isinstance(metric, Metric) and metric.name == name
        assert metric.needs and metric.needs <= set(FOLD_FILES)
        assert metric.captions and all(text.strip() for text in metric.captions.values())


def test_an_unknown_metric_is_an_input_error():
    with pytest.raises(InputError, match="unknown metric 'nonesuch'"):
        METRICS.get("nonesuch")


def test_free_energy_scores_each_fold_beside_its_floor_and_echo(cfg, evaluation_inputs):
    _, folds = evaluation_inputs
    context = make_context(cfg, folds)
    assert context.projection.name == "rg_end_to_end"  # no backbone dihedrals
    metric = METRICS.get("free_energy")(pseudo_mass=0.01, floor_resamples=50)
    rows = [MetricRow(*row) for row in metric_rows(metric, context)]
    scores = [*context.projection.metrics, keys.JS_TICA, keys.KL_TICA, keys.KL_REVERSE_TICA]
    scores.append(keys.FE_RMSE_TICA)
    for fold in ("fold0", "fold1", keys.ALL_FOLDS):
        names = [row.metric for row in rows if row.fold == fold]
        suffixes = ("", keys.FLOOR_SUFFIX, keys.FLOOR_RESOLUTION_SUFFIX, keys.ECHO_SUFFIX)
        suffixes += (keys.REPLAY_SUFFIX, keys.INSAMPLE_SUFFIX)
        expected = [n + s for n in scores for s in suffixes]
        assert sorted(names) == sorted(expected)
    # The scores are the divergences of regularised histograms (one escaped bin more than
    # the grid), against the fold's held-out trajectory; JS within [0, ln 2].
    values = context.reference_values
    heldout = values[context.heldout_frames(1)]
    simulated = context.projection.compute(read_trajectory(folds[1]["traj"]))

    def histogram(x):
        return regularise(np.append(histogram_counts(x, context.edges).ravel(), 0.0), 0.01)

    p_ref, p_cg = histogram(heldout), histogram(simulated)
    js_name, kl_name, reverse_name, _ = context.projection.metrics
    by_name = {(row.fold, row.metric): row for row in rows}
    assert by_name[("fold1", kl_name)].value == pytest.approx(kl(p_ref, p_cg))
    assert by_name[("fold1", reverse_name)].value == pytest.approx(kl(p_cg, p_ref))
    assert 0 <= by_name[("fold1", js_name)].value <= np.log(2)
    # In sample (secondary): against every reference trajectory.
    insample = by_name[("fold1", kl_name + keys.INSAMPLE_SUFFIX)].value
    assert insample == pytest.approx(kl(histogram(values), p_cg))
    # The echo: each replica's start frame repeated for its frames, scored the same way.
    starts = np.repeat([0, 5, 12, 20], 2)
    p_echo = histogram(values[starts])
    assert by_name[("fold1", kl_name + keys.ECHO_SUFFIX)].value == pytest.approx(kl(p_ref, p_echo))
    # The replay: fold 1's training frames (trajectory 0), 8 of them evenly spaced.
    training = values[context.training_frames(1)]
    replay = training[np.linspace(0, len(training) - 1, 8).round().astype(int)]
    assert by_name[("fold1", kl_name + keys.REPLAY_SUFFIX)].value == pytest.approx(
        kl(p_ref, histogram(replay))
    )
    # The pooled row is the mean of the folds' held-out scores.
    assert by_name[(keys.ALL_FOLDS, kl_name)].value == pytest.approx(
        np.mean([by_name[(f, kl_name)].value for f in ("fold0", "fold1")])
    )
    # Floors and scores have intervals around their values; baselines have none.
    plain = (keys.ECHO_SUFFIX, keys.REPLAY_SUFFIX, keys.INSAMPLE_SUFFIX)
    for row in rows:
        if row.metric.endswith(plain) or row.metric.endswith(keys.FLOOR_RESOLUTION_SUFFIX):
            assert np.isnan(row.low) and np.isnan(row.high)
        elif row.metric.endswith(keys.FLOOR_SUFFIX):
            assert row.low <= row.value <= row.high
        elif np.isfinite(row.value):
            assert row.low <= row.high


def test_a_copy_of_the_reference_scores_within_its_floor(cfg, evaluation_inputs, tmp_path):
    """The negative check of the floor: frames drawn from the reference itself, as a
    perfect model would sample, land inside the floor's interval."""
    reference_path, folds = evaluation_inputs
    context = make_context(cfg, copy_of_reference(reference_path, folds))
    metric = METRICS.get("free_energy")(pseudo_mass=0.01, floor_resamples=100)
    rows = {(r.fold, r.metric): r for r in map(MetricRow._make, metric_rows(metric, context))}
    js_name = context.projection.metrics[0]
    score, floor = rows[("fold0", js_name)], rows[("fold0", js_name + keys.FLOOR_SUFFIX)]
    assert score.value <= floor.high


def copy_of_reference(reference_path, folds):
    """Fold paths whose simulation is the reference itself: two replicas (its two
    trajectories) that never failed, started from frames 0 and 12."""
    reference = read_trajectory(reference_path)
    copy = folds[0]["traj"].parent / "copy.h5"
    write_trajectory(copy, reference, Provenance("simulate"))
    health = pd.DataFrame(
        {
            keys.REPLICA: [0, 1],
            keys.STABLE: [True, True],
            keys.START_FRAME: [0, 12],
            keys.START_STATE: ["a", "b"],
        }
    )
    health_path = folds[0]["traj"].parent / "copy_health.parquet"
    write_table(health_path, health, Provenance("simulate"))
    return [{**fold, "traj": copy, "health": health_path} for fold in folds]


def test_stability_and_backmap_read_their_tables(cfg, evaluation_inputs):
    _, folds = evaluation_inputs
    context = make_context(cfg, folds)
    assert metric_rows(METRICS.get("stability")(), context) == [
        ("fold0", keys.STABLE_FRACTION, 0.75),
        ("fold1", keys.STABLE_FRACTION, 0.5),
    ]
    rows = metric_rows(METRICS.get("backmap")(resamples=50), context)
    assert [(r.fold, r.metric) for r in rows] == [
        ("fold0", keys.BACKMAP_CG_RMSD + "_nearest"),
        ("fold0", "bond_fraction_nearest"),
        ("fold1", keys.BACKMAP_CG_RMSD + "_nearest"),
        ("fold1", "bond_fraction_nearest"),
    ]
    assert [r.value for r in rows] == pytest.approx([0.02, 0.75, 0.52, 0.75])
    # Two replicas, one with every bond in range and one with half: resampled by replica.
    assert rows[1].low == pytest.approx(0.5) and rows[1].high == pytest.approx(1.0)


def test_stability_gives_the_survival_curve_and_the_exchange_acceptance(cfg, evaluation_inputs):
    _, folds = evaluation_inputs
    # Fold 1: 4 replicas of a 10-ps run, failed at 0.5, 4 and 7.5 ps and never; with the
    # exchanges of a parallel-tempering run in the provenance.
    health = pd.DataFrame(
        {
            keys.REPLICA: [0, 1, 2, 3],
            keys.STABLE: [False, False, False, True],
            keys.TIME_TO_FAILURE: [0.5, 4.0, 7.5, np.nan],
            keys.START_FRAME: [0, 5, 12, 20],
            keys.START_STATE: ["a", "a", "b", "b"],
        }
    )
    exchanges = [
        {"temperature_low": 300.0, "temperature_high": 375.0, "acceptance": 0.61},
        {"temperature_low": 375.0, "temperature_high": 468.75, "acceptance": 0.55},
    ]
    provenance = Provenance(
        "simulate", config={"n_steps": 5000, "timestep": 0.002}, extra={"exchanges": exchanges}
    )
    write_table(folds[1]["health"], health, provenance)
    rows = metric_rows(METRICS.get("stability")(), make_context(cfg, folds))
    fold1 = {metric: value for fold, metric, value in rows if fold == "fold1"}
    curve = [fold1[f"{keys.SURVIVAL_PREFIX}{p}pct"] for p in (10, 25, 50, 75, 100)]
    assert curve == [0.75, 0.75, 0.5, 0.25, 0.25]
    assert fold1[keys.STABLE_FRACTION] == 0.25 == curve[-1]
    assert fold1[keys.EXCHANGE_PREFIX + "300K_375K"] == 0.61
    assert fold1[keys.EXCHANGE_PREFIX + "375K_469K"] == 0.55
    # Fold 0's table records no run length: no survival rows rather than made-up ones.
    assert [m for f, m, _ in rows if f == "fold0"] == [keys.STABLE_FRACTION]
    captions = METRICS.get("stability")()
    assert "between 375K and 469K" in captions.caption(keys.EXCHANGE_PREFIX + "375K_469K")


def test_context_reads_each_file_once_and_only_what_a_metric_needs(cfg, evaluation_inputs):
    _, folds = evaluation_inputs
    context = make_context(cfg, folds)
    first = context.simulation(0)
    assert context.simulation(0) is first
    assert [p.endswith("traj.h5") for p in context.inputs] == [True]

    class Greedy(Metric):
        name = "greedy"
        needs = frozenset({"health"})

        def rows(self, context):
            context.backmap(0)
            return []

    with pytest.raises(RuntimeError, match="'greedy' reads 'backmap'"):
        metric_rows(Greedy(), context)


def test_a_metric_must_name_what_it_needs_in_the_known_words():
    with pytest.raises(TypeError, match="needs names"):

        class _Bad(Metric):
            needs = frozenset({"weather"})


def test_the_fold_count_must_match_the_config(cfg, evaluation_inputs):
    _, folds = evaluation_inputs
    with pytest.raises(InputError, match="n_folds=3"):
        EvaluationContext(reference_data(), folds, n_folds=3, kT=2.5, bins=12)


def test_distributions_score_rg_and_a_copy_of_the_reference_lies_within_its_floor(
    cfg, evaluation_inputs
):
    reference_path, folds = evaluation_inputs
    context = make_context(cfg, copy_of_reference(reference_path, folds))
    metric = METRICS.get("distributions")(bins=8, pseudo_mass=0.01, resamples=50)
    rows = {(r.fold, r.metric): MetricRow(*r) for r in metric_rows(metric, context)}
    # The fixture's beads have no bonds: only the radius of gyration is compared.
    assert {m for _, m in rows} == {
        keys.JS_RG,
        keys.JS_RG + keys.FLOOR_SUFFIX,
        keys.JS_RG + keys.FLOOR_RESOLUTION_SUFFIX,
        keys.JS_RG + keys.ECHO_SUFFIX,
        keys.JS_RG + keys.REPLAY_SUFFIX,
        keys.JS_RG + keys.INSAMPLE_SUFFIX,
    }
    score, floor = rows[("fold0", keys.JS_RG)], rows[("fold0", keys.JS_RG + keys.FLOOR_SUFFIX)]
    assert 0 <= score.value <= floor.high
    # A percentile interval of a divergence lies at or above it: resampling only adds noise.
    assert score.value <= score.high and score.low <= score.high


def test_failed_replicas_leave_their_lost_frames_as_escaped_mass(cfg, tmp_path):
    """4 replicas of a run of 4 saves (burn-in 1/4: 3 production frames each): replica 2
    failed before its first frame, replica 3 after two; the context counts the frames
    they lost, and a fold whose every replica failed is still scored (all escaped)."""
    rng = np.random.default_rng(5)
    run = {"n_steps": 40, "save_every": 10, "timestep": 0.1}
    folds = []
    for fold, saved in enumerate(([4, 4, 0, 2], [0, 0, 0, 0])):
        times = np.concatenate([np.arange(1, n + 1) for n in saved]).astype(float)
        simulation = TrajectoryData(
            cg_topology(),
            chain_frames(rng, len(times), 0.08),
            times,
            trajectory_index=np.repeat(np.arange(4), saved),
        )
        traj = tmp_path / f"fold{fold}/traj.h5"
        write_trajectory(traj, simulation, Provenance("simulate", config=run))
        health = pd.DataFrame(
            {
                keys.REPLICA: [0, 1, 2, 3],
                keys.STABLE: [n == 4 for n in saved],
                keys.START_FRAME: [0, 5, 12, 20],
                keys.START_STATE: ["a", "a", "b", "b"],
            }
        )
        write_table(tmp_path / f"fold{fold}/health.parquet", health, Provenance("simulate"))
        draws = TrajectoryData(  # 12 i.i.d. draws, one trajectory each
            cg_topology(), chain_frames(rng, 12, 0.08), np.zeros(12), trajectory_index=np.arange(12)
        )
        write_trajectory(tmp_path / f"fold{fold}/draws.h5", draws, Provenance("sample"))
        folds.append(
            {
                "traj": traj,
                "health": tmp_path / f"fold{fold}/health.parquet",
                "samples": tmp_path / f"fold{fold}/draws.h5",
            }
        )
    context = make_context(cfg, folds, burn_in=0.25)
    sample = context.sample(0)
    assert sample.length == 3
    assert sample.escaped.tolist() == [0, 0, 3, 2]
    values = sample.values(np.zeros((context.simulation(0).n_frames, 2)))
    assert len(values) == 12 and np.isnan(values[-5:]).all()
    assert sample.labels.tolist() == [0, 0, 0, 1, 1, 1, 3, 2, 2, 2, 3, 3]  # saved, then lost
    metric = METRICS.get("free_energy")(pseudo_mass=0.01, floor_resamples=20)
    rows = {(r.fold, r.metric): MetricRow(*r) for r in metric_rows(metric, context)}
    js_name = context.projection.metrics[0]
    # Every frame of fold 1 escaped: its histogram is all in the escaped bin.
    assert rows[("fold1", js_name)].value > rows[("fold0", js_name)].value
    assert rows[("fold1", js_name)].value > 0.5 * np.log(2)
    # The gap between simulation and draws scores the failed fold the same way, escaped
    # mass and all, instead of skipping it.
    gap = METRICS.get("sampling_gap")(pseudo_mass=0.01, resamples=20)
    gaps = {(r.fold, r.metric): MetricRow(*r) for r in metric_rows(gap, context)}
    name = keys.SAMPLING_GAP_PREFIX + context.projection.name
    assert {("fold0", name), ("fold1", name), (keys.ALL_FOLDS, name)} <= set(gaps)
    assert gaps[("fold1", name)].value > gaps[("fold0", name)].value
