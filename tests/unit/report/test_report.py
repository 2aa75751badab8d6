import json

import numpy as np
import pandas as pd
import pytest

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_provenance, read_table, write_table
from cgpipe.report import read_captions, run, summarise
from cgpipe.report.backmapping import blind_metrics, comparison_table

FLOOR = keys.JS_PHI_PSI + keys.FLOOR_SUFFIX
CAPTIONS = {
    keys.JS_PHI_PSI: "Jensen-Shannon divergence (nats) of φ/ψ.",
    FLOOR: "JS (nats) of the reference against itself: the noise floor.",
    keys.STABLE_FRACTION: "Fraction of stable replicas.",
}


def _metrics():
    nan = float("nan")
    rows = [("all", keys.STABLE_FRACTION, 1.0, nan, nan)]
    rows += [(f"fold{k}", keys.JS_PHI_PSI, v, nan, nan) for k, v in enumerate([0.1, 0.2, 0.3])]
    rows += [(f"fold{k}", FLOOR, 0.15, 0.12, 0.25) for k in range(3)]
    columns = [keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH]
    table = pd.DataFrame(rows, columns=columns)
    for column, value in (
        (keys.MODEL, "cgschnet"),
        (keys.MAPPING, "backbone"),
        (keys.SYSTEM, "ala2"),
    ):
        table.insert(0, column, value)
    return table


def _write_metrics(path, captions=CAPTIONS, table=None):
    metadata = {keys.PARQUET_CAPTIONS_KEY: json.dumps(captions).encode()} if captions else None
    write_table(
        path, _metrics() if table is None else table, Provenance("evaluate"), metadata=metadata
    )
    return path


def _fes(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    plt.imshow(np.eye(3))
    figure.savefig(path)
    plt.close(figure)
    return path


def test_summary_gives_mean_and_spread_over_folds():
    summary = summarise(_metrics(), CAPTIONS)
    assert summary.loc[keys.JS_PHI_PSI, "mean"] == pytest.approx(0.2)
    assert summary.loc[keys.JS_PHI_PSI, "std"] == pytest.approx(0.1)
    assert summary.loc[keys.STABLE_FRACTION, "mean"] == pytest.approx(1.0)
    assert summary.loc[keys.JS_PHI_PSI, "description"] == CAPTIONS[keys.JS_PHI_PSI]
    assert (summarise(_metrics())["description"] == "").all()


def test_report_is_self_contained_html(tmp_path):
    metrics = _write_metrics(tmp_path / "metrics.parquet")
    output = tmp_path / "report" / "index.html"
    run(output, [str(metrics)], [str(_fes(tmp_path / "fes.png"))])
    page = output.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page and keys.JS_PHI_PSI in page
    assert "ala2 · backbone · cgschnet" in page
    assert read_provenance(output)["stage"] == "report"
    # Each floor with its interval, and how many folds' scores lie within it: 0.1 and 0.2
    # do not exceed the floor's upper end 0.25, 0.3 does.
    assert "0.15 [0.12, 0.25]" in page
    assert "2 of 3" in page


def test_report_shows_the_survival_curve_and_the_exchange_acceptance(tmp_path):
    nan = float("nan")
    extra = pd.DataFrame(
        [
            (f"fold{k}", f"{keys.SURVIVAL_PREFIX}{p}pct", v, nan, nan)
            for k in range(3)
            for p, v in ((10, 1.0), (100, 0.5 + 0.1 * k))
        ]
        + [(f"fold{k}", keys.EXCHANGE_PREFIX + "300K_375K", 0.6, nan, nan) for k in range(3)],
        columns=[keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH],
    )
    table = _metrics()
    for column in (keys.MODEL, keys.MAPPING, keys.SYSTEM):
        extra.insert(0, column, table[column].iloc[0])
    metrics = _write_metrics(tmp_path / "m.parquet", table=pd.concat([table, extra]))
    output = tmp_path / "index.html"
    run(output, [str(metrics)], [str(_fes(tmp_path / "fes.png"))])
    page = output.read_text()
    assert "still running at (share of the run) 10 %: 1, 100 %: 0.6" in page
    assert "exchange acceptance 300K↔375K 0.60" in page


def test_captions_come_from_each_metrics_table(tmp_path):
    own = {keys.JS_PHI_PSI: "A caption that only this table carries (nats)."}
    with_captions = _write_metrics(tmp_path / "a.parquet", own)
    without = _write_metrics(tmp_path / "b.parquet", captions=None)
    assert read_captions(with_captions) == own and read_captions(without) == {}
    fes = _fes(tmp_path / "fes.png")
    output = tmp_path / "index.html"
    run(output, [with_captions, without], [fes, fes])
    page = output.read_text()
    assert page.count(own[keys.JS_PHI_PSI]) == 1
    assert CAPTIONS[keys.JS_PHI_PSI] not in page  # the report knows no caption itself


def test_an_empty_metrics_table_gets_a_section_without_a_table(tmp_path):
    empty = _metrics().iloc[:0]
    metrics = _write_metrics(tmp_path / "metrics.parquet", captions=None, table=empty)
    output = tmp_path / "index.html"
    run(output, [metrics], [_fes(tmp_path / "fes.png")])
    assert "No metrics." in output.read_text()


def test_unreadable_captions_are_an_input_error(tmp_path):
    metrics = tmp_path / "metrics.parquet"
    write_table(
        metrics, _metrics(), Provenance("evaluate"), metadata={keys.PARQUET_CAPTIONS_KEY: b"{"}
    )
    with pytest.raises(InputError, match="unreadable metric captions"):
        read_captions(metrics)


def _heldout(fold: int, method: str, rmsd: float) -> pd.DataFrame:
    nan = float("nan")
    return pd.DataFrame(
        [
            (f"fold{fold}", method, "heavy_rmsd_best", rmsd, rmsd - 0.01, rmsd + 0.01,
             nan, nan, nan, "nm"),
            (f"fold{fold}", method, "bond_fraction", 0.9, 0.85, 0.95, 1.0, 1.0, 1.0, "fraction"),
        ],
        columns=[keys.FOLD, "backmapper", keys.METRIC, "value", "low", "high", "floor",
                 "floor_low", "floor_high", "unit"],
    )  # fmt: skip


def test_report_sets_the_backmappers_side_by_side_with_real_frames(tmp_path):
    scores = []
    for fold in (0, 1):
        for method, rmsd in (("nearest", 0.02), ("flow", 0.04 + 0.02 * fold)):
            path = tmp_path / f"results/backmap/ala2/backbone/fold{fold}/{method}/heldout.parquet"
            write_table(path, _heldout(fold, method, rmsd), Provenance("backmap-fit"))
            scores.append(path)
    output = tmp_path / "index.html"
    metrics = _write_metrics(tmp_path / "metrics.parquet")
    run(output, [metrics], [_fes(tmp_path / "fes.png")], backmap_scores=scores)
    page = output.read_text()
    assert "ala2 · backbone: backmapping on held-out frames" in page
    table = comparison_table(pd.concat([read_table(p) for p in scores]))
    # Mean over folds, with the mean of the folds' intervals; real frames hold the floor.
    assert table.loc["heavy_rmsd_best (nm)", "nearest"] == "0.02 [0.01, 0.03]"
    assert table.loc["heavy_rmsd_best (nm)", "flow"] == "0.05 [0.04, 0.06]"
    assert table.loc["bond_fraction (fraction)", "real frames"] == "1 [1, 1]"
    assert table.loc["heavy_rmsd_best (nm)", "real frames"] == ""
    assert "0.05 [0.04, 0.06]" in page
    assert str(scores[0]) in json.dumps(read_provenance(output)["inputs"])


def test_the_report_names_every_metric_that_cannot_tell_the_negative_control_apart():
    fitted = pd.concat([_heldout(0, "flow", 0.02), _heldout(1, "flow", 0.02)])
    control = pd.concat([_heldout(0, "scatter", 0.2), _heldout(1, "scatter", 0.2)])
    control["control"], fitted["control"] = True, False
    scores = pd.concat([fitted, control], ignore_index=True)
    # Far from real frames' bonds and the flow's RMSD: every metric tells it apart.
    scores.loc[scores["backmapper"].eq("scatter") & scores[keys.METRIC].eq("bond_fraction"),
               ["value", "low", "high"]] = [0.1, 0.05, 0.15]  # fmt: skip
    assert blind_metrics(scores) == []
    table = comparison_table(scores)
    assert table.loc["bond_fraction (fraction)", "scatter (negative control)"] == "0.1 [0.05, 0.15]"
    # A control whose bonds look real, and whose RMSD reaches the flow's, is named twice.
    blind = scores.copy()
    blind.loc[blind["backmapper"].eq("scatter") & blind[keys.METRIC].eq("bond_fraction"),
              ["value", "low", "high"]] = [0.98, 0.95, 1.0]  # fmt: skip
    blind.loc[blind["backmapper"].eq("scatter") & blind[keys.METRIC].eq("heavy_rmsd_best"),
              ["value", "low", "high"]] = [0.025, 0.015, 0.035]  # fmt: skip
    assert blind_metrics(blind) == [
        "heavy_rmsd_best: scatter as flow",
        "bond_fraction: scatter as real frames",
    ]
    assert blind_metrics(fitted) == []  # no control, nothing to say
