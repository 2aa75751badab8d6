"""The HTML report: one self-contained page across systems, mappings and models.

Plots are embedded as base64 PNG, so the page can be mailed or archived alone. Each
model gets its free-energy surfaces side by side (reference and every fold) and a
table of metrics per fold with their mean and standard deviation across folds.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, atomic_output, read_table, read_table_metadata

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9rem; }
"""


def summarise(metrics: pd.DataFrame, captions: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per metric: its caption, the value of every fold, and mean and std across
    folds (a fold-independent metric's mean is its one value).

    Parameters
    ----------
    metrics
        A metrics table (columns :data:`cgpipe.keys.METRIC_COLUMNS`).
    captions
        Metric name -> caption (as the evaluation stored them); a metric without one gets
        an empty caption.
    """
    captions = captions or {}
    wide = metrics.pivot_table(
        index=keys.METRIC, columns=keys.FOLD, values=keys.VALUE, aggfunc="first"
    )
    folds = [c for c in wide.columns if c != keys.ALL_FOLDS]
    wide["mean"] = wide[folds].mean(axis=1)
    wide["std"] = wide[folds].std(axis=1, ddof=1)
    if keys.ALL_FOLDS in wide.columns:
        fold_independent = wide[keys.ALL_FOLDS].notna()
        wide.loc[fold_independent, "mean"] = wide.loc[fold_independent, keys.ALL_FOLDS]
        wide = wide.drop(columns=keys.ALL_FOLDS)
    wide.insert(0, "description", [captions.get(m, "") for m in wide.index])
    return wide


def _display(metrics: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as text: each value with its 95 % interval where it has one, and for a
    score with a noise floor, in how many folds it lies within the floor's interval."""
    table = summary.copy().astype(object)
    for row in metrics.itertuples(index=False):
        value, low, high = getattr(row, keys.VALUE), getattr(row, keys.LOW), getattr(row, keys.HIGH)
        fold = getattr(row, keys.FOLD)
        column = "mean" if fold == keys.ALL_FOLDS else fold
        text = f"{value:.4g}" if np.isfinite(value) else ""
        if np.isfinite(low) and np.isfinite(high):
            text += f" [{low:.4g}, {high:.4g}]"
        table.loc[getattr(row, keys.METRIC), column] = text
    for column in ("mean", "std"):
        for metric in table.index:
            if isinstance(table.loc[metric, column], float):
                number = table.loc[metric, column]
                table.loc[metric, column] = f"{number:.4g}" if np.isfinite(number) else ""
    verdicts = []
    for metric in table.index:
        floor = metric + keys.FLOOR_SUFFIX
        scores = metrics[metrics[keys.METRIC] == metric].set_index(keys.FOLD)[keys.VALUE]
        highs = metrics[metrics[keys.METRIC] == floor].set_index(keys.FOLD)[keys.HIGH]
        shared = scores.index.intersection(highs.index)
        within = int((scores[shared] <= highs[shared]).sum())
        verdicts.append(f"{within} of {len(shared)}" if len(shared) else "")
    table["within floor"] = verdicts
    return table


def _image(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{encoded}">'


def read_captions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Metric name -> caption, as the evaluation stored them in the metrics table's schema
    metadata (empty for a table without captions)."""
    stored = read_table_metadata(path).get(keys.PARQUET_CAPTIONS_KEY)
    if stored is None:
        return {}
    try:
        captions = json.loads(stored)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: unreadable metric captions ({error})") from None
    if not isinstance(captions, dict):
        raise InputError(f"{path}: metric captions must map metric names to text")
    return {str(name): str(text) for name, text in captions.items()}


def run(
    output: str | os.PathLike[str],
    metrics_paths: list[str | os.PathLike[str]],
    fes_paths: list[str | os.PathLike[str]],
) -> None:
    """Write the report page from every model's metrics table and FES plot.

    Parameters
    ----------
    output
        The HTML page to write.
    metrics_paths, fes_paths
        Each model's ``metrics.parquet`` and ``fes.png``, in the same order. Each metric's
        caption comes from its table's metadata.
    """
    metrics_paths = [os.fspath(p) for p in metrics_paths]
    fes_paths = [os.fspath(p) for p in fes_paths]
    if len(metrics_paths) != len(fes_paths):
        raise InputError("need one FES plot per metrics table")
    sections = []
    for metrics_path, fes_path in zip(metrics_paths, fes_paths, strict=True):
        metrics = read_table(metrics_path)
        missing = set(keys.METRIC_COLUMNS) - set(metrics.columns)
        if missing:
            raise InputError(f"{metrics_path}: metrics table lacks columns {sorted(missing)}")
        if metrics.empty:  # no metric that ran had anything to score
            title, table = metrics_path, "<p>No metrics.</p>"
        else:
            first = metrics.iloc[0]
            title = f"{first[keys.SYSTEM]} · {first[keys.MAPPING]} · {first[keys.MODEL]}"
            summary = summarise(metrics, read_captions(metrics_path))
            table = _display(metrics, summary).to_html(na_rep="")
        sections.append(
            f"<h2>{html.escape(title)}</h2>\n{_image(Path(fes_path))}\n{table}\n"
            f'<p class="note">From {html.escape(metrics_path)}; mean and std over folds '
            "(std with ddof=1); [low, high]: 95 % interval; <i>within floor</i>: folds whose "
            "score does not exceed the upper end of its noise floor's interval (a model there "
            "cannot be told from the reference's own sampling noise).</p>"
        )
    provenance = Provenance(stage="report", inputs=[*metrics_paths, *fes_paths])
    record = provenance.to_json().replace("</", "<\\/")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>cgpipe report</title>"
        f"<style>{_STYLE}</style>"
        f'<script type="application/json" id="provenance">{record}</script>'
        "</head><body>\n<h1>cgpipe report</h1>\n"
        '<p class="note">Free-energy surfaces F(φ, ψ) = −kT ln p in kJ/mol, reference (all-atom, '
        "all trajectories) and the CG simulation of each cross-validation fold. Units: nm, ps, "
        "kJ/mol.</p>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    with atomic_output(output) as tmp:
        tmp.write_text(page)
