"""The evaluation stage: metrics chosen by the configuration, captions carried to the
report."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from cgpipe import keys, paths
from cgpipe.errors import InputError
from cgpipe.evaluate import METRICS, Metric, run
from cgpipe.io import read_provenance, read_table
from cgpipe.report import run as write_report

TOY_CAPTION = "Mean radius of gyration of the simulation (nm), a toy."


@pytest.fixture
def toy_metrics():
    """Two toy metrics, registered for one test: ``toy_rg`` (per fold and for all folds)
    and ``toy_unused``, which records whether it ever ran."""
    calls: list[str] = []

    class ToyRg(Metric):
        needs = frozenset({"simulation"})
        captions = {"toy_rg": TOY_CAPTION}

        def __init__(self, *, scale: float) -> None:
            self.scale = scale

        def rows(self, context):
            calls.append("toy_rg")
            values = [
                self.scale * float(context.simulation_values(fold)[:, 0].mean())
                for fold in context.folds
            ]
            rows = [(context.label(k), "toy_rg", v) for k, v in enumerate(values)]
            return [*rows, (keys.ALL_FOLDS, "toy_rg", float(np.mean(values)))]

    class ToyUnused(Metric):
        needs = frozenset({"health"})
        captions = {"toy_unused": "Never shown."}

        def rows(self, context):
            calls.append("toy_unused")
            return [(keys.ALL_FOLDS, "toy_unused", 1.0)]

    METRICS.register("toy_rg")(ToyRg)
    METRICS.register("toy_unused")(ToyUnused)
    try:
        yield calls
    finally:
        METRICS.unregister("toy_rg")
        METRICS.unregister("toy_unused")
    assert "toy_rg" not in METRICS


SCORE_SUFFIXES = (
    "",
    keys.FLOOR_SUFFIX,
    keys.FLOOR_RESOLUTION_SUFFIX,
    keys.ECHO_SUFFIX,
    keys.REPLAY_SUFFIX,
    keys.INSAMPLE_SUFFIX,
)


def _configure(cfg, metrics, **sections):
    cfg["evaluate"]["metrics"] = metrics
    cfg["evaluate"].update(sections)
    return cfg


def test_a_registered_toy_metric_reaches_the_table_and_the_report(
    cfg, evaluation_inputs, toy_metrics, tmp_path
):
    cg, folds = evaluation_inputs
    output = tmp_path / "evaluate"
    cfg = _configure(cfg, ["toy_rg"], toy_rg={"scale": 2.0})
    table = run(cg, folds, output, system="toy", mapping="calpha", model="net", cfg=cfg)

    assert toy_metrics == ["toy_rg"]  # toy_unused is registered but not named
    stored = read_table(output / paths.METRICS_FILE)
    assert list(stored.columns) == list(keys.METRIC_COLUMNS)
    assert list(stored[keys.FOLD]) == ["fold0", "fold1", keys.ALL_FOLDS]
    assert set(stored[keys.METRIC]) == {"toy_rg"}
    assert stored[keys.VALUE].tolist() == table[keys.VALUE].tolist()
    assert (stored[[keys.SYSTEM, keys.MAPPING, keys.MODEL]] == ["toy", "calpha", "net"]).all().all()
    metadata = pq.read_schema(output / paths.METRICS_FILE).metadata
    assert json.loads(metadata[keys.PARQUET_CAPTIONS_KEY]) == {"toy_rg": TOY_CAPTION}

    # Only the files read are inputs: no model, health or backmap file was opened.
    inputs = read_provenance(output / paths.METRICS_FILE)["inputs"]
    assert {str(cg), str(folds[0]["traj"]), str(folds[1]["traj"])} == set(inputs)
    assert (output / paths.FES_FILE).stat().st_size > 0
    assert yaml.safe_load((output / paths.RESOLVED_CONFIG_FILE).read_text()) == cfg

    page = tmp_path / "report.html"
    write_report(page, [output / paths.METRICS_FILE], [output / paths.FES_FILE])
    html = page.read_text()
    assert "toy_rg" in html and TOY_CAPTION in html and "Never shown" not in html


def test_metrics_not_named_do_not_run(cfg, evaluation_inputs, toy_metrics, tmp_path):
    cg, folds = evaluation_inputs
    for fold in folds:
        fold["health"].unlink()  # stability is not named, so nothing reads the health table
    cfg = _configure(cfg, ["backmap"])
    table = run(cg, folds, tmp_path / "out", system="toy", mapping="calpha", model="net", cfg=cfg)
    assert set(table[keys.METRIC]) == {keys.BACKMAP_CG_RMSD + "_nearest", "bond_fraction_nearest"}
    assert toy_metrics == []


def test_a_model_that_is_not_backmapped_gets_no_backmap_rows_and_reads_no_tables(
    cfg, evaluation_inputs, tmp_path
):
    cg, folds = evaluation_inputs
    for fold in folds:
        del fold["backmap"]  # backmap.models leaves the model out: no folder is given
    cfg = _configure(cfg, ["backmap"])
    cfg["backmap"]["models"] = ["other"]
    table = run(cg, folds, tmp_path / "out", system="toy", mapping="calpha", model="net", cfg=cfg)
    assert table.empty
    cfg["backmap"]["models"] = ["net"]
    with pytest.raises(InputError, match="no 'backmap' file given"):
        run(cg, folds, tmp_path / "out2", system="toy", mapping="calpha", model="net", cfg=cfg)


def test_the_built_in_metrics_run_in_the_configured_order(
    cfg, evaluation_inputs, tmp_path, monkeypatch
):
    cg, folds = evaluation_inputs

    class Still:
        def energy_and_forces(self, positions):
            return positions.sum(dim=(1, 2)) * 0, positions * 0

        def prior_model(self):
            return None  # a model without a prior: no prior row

    monkeypatch.setattr("cgpipe.evaluate.base.load_model", lambda path: Still())
    for fold in folds:  # read by the stand-in above only in name; hashed as an input
        fold["model"].parent.mkdir(parents=True)
        fold["model"].write_bytes(b"")
    cfg = _configure(cfg, ["stability", "free_energy", "populations", "force_error", "backmap"])
    table = run(cg, folds, tmp_path / "out", system="toy", mapping="calpha", model="m", cfg=cfg)
    order = list(dict.fromkeys(table[keys.METRIC]))
    scores = [
        keys.JS_RG_END_TO_END,
        keys.KL_RG_END_TO_END,
        keys.KL_REVERSE_RG_END_TO_END,
        keys.FE_RMSE_RG_END_TO_END,
        keys.JS_TICA,
        keys.KL_TICA,
        keys.KL_REVERSE_TICA,
        keys.FE_RMSE_TICA,
    ]
    states = ("tic1_low", "tic1_high")  # no phi/psi: the sides of TIC1
    reference = [keys.POPULATION_PREFIX + s + keys.REFERENCE_SUFFIX for s in states]
    per_trajectory = [
        keys.POPULATION_PREFIX + s + keys.REFERENCE_SUFFIX + f"_traj{t}"
        for t in (0, 1)
        for s in states
    ]
    simulated = [
        keys.POPULATION_PREFIX + s + suffix for suffix in ("", keys.ECHO_SUFFIX) for s in states
    ]
    assert order == [
        keys.STABLE_FRACTION,
        *[n + s for n in scores for s in SCORE_SUFFIXES],
        *reference,
        *per_trajectory,
        *simulated,
        keys.FORCE_RMSE_HELDOUT,
        keys.BACKMAP_CG_RMSD + "_nearest",
        "bond_fraction_nearest",
    ]
    captions = json.loads(
        pq.read_schema(tmp_path / "out" / paths.METRICS_FILE).metadata[keys.PARQUET_CAPTIONS_KEY]
    )
    assert set(captions) == set(order)  # captions of the rows written, no more
    # Every value is finite but a free-energy RMSE, NaN where no bin holds frames of both
    # (8 CG frames here).
    rmse = table[keys.METRIC].str.startswith("fe_rmse")
    assert np.isfinite(table.loc[~rmse, keys.VALUE]).all()


def test_a_metric_row_outside_its_captions_is_refused(cfg, evaluation_inputs, tmp_path):
    cg, folds = evaluation_inputs

    class Sloppy(Metric):
        needs = frozenset({"reference"})
        captions = {"sloppy": "A row name it does not use."}

        def rows(self, context):
            return [(keys.ALL_FOLDS, "unnamed", 0.0)]

    METRICS.register("sloppy")(Sloppy)
    try:
        with pytest.raises(ValueError, match="'sloppy' gave the row"):
            run(
                cg,
                folds,
                tmp_path,
                system="s",
                mapping="m",
                model="x",
                cfg=_configure(cfg, ["sloppy"], sloppy={}),
            )
    finally:
        METRICS.unregister("sloppy")
    assert not (tmp_path / paths.METRICS_FILE).exists()
