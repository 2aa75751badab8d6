import numpy as np
import pandas as pd
import pytest

from cgpipe import keys
from cgpipe.io import Provenance, read_provenance, write_table
from cgpipe.report import summarise, write_report


def _metrics():
    rows = [("all", keys.JS_PHI_PSI_REFERENCE_HALVES, 0.01)]
    rows += [(f"fold{k}", keys.JS_PHI_PSI, v) for k, v in enumerate([0.1, 0.2, 0.3])]
    table = pd.DataFrame(rows, columns=[keys.FOLD, keys.METRIC, keys.VALUE])
    for column, value in (
        (keys.MODEL, "cgschnet"),
        (keys.MAPPING, "backbone"),
        (keys.SYSTEM, "ala2"),
    ):
        table.insert(0, column, value)
    return table


def test_summary_gives_mean_and_spread_over_folds():
    summary = summarise(_metrics())
    assert summary.loc[keys.JS_PHI_PSI, "mean"] == pytest.approx(0.2)
    assert summary.loc[keys.JS_PHI_PSI, "std"] == pytest.approx(0.1)
    assert summary.loc[keys.JS_PHI_PSI_REFERENCE_HALVES, "mean"] == pytest.approx(0.01)


def test_report_is_self_contained_html(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = tmp_path / "metrics.parquet"
    write_table(metrics, _metrics(), Provenance("evaluate"))
    figure = plt.figure()
    plt.imshow(np.eye(3))
    figure.savefig(tmp_path / "fes.png")
    output = tmp_path / "report" / "index.html"
    write_report(output, [str(metrics)], [str(tmp_path / "fes.png")])
    page = output.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page and keys.JS_PHI_PSI in page
    assert "ala2 · backbone · cgschnet" in page
    assert read_provenance(output)["stage"] == "report"
