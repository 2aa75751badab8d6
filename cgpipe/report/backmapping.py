"""The report's comparison of a system's backmappers on held-out frames of known answer.

One table per (system, mapping): a row per metric of :mod:`cgpipe.backmap.scoring`, a
column per backmapper (retrieval, the generative flow, ...) and one of real frames (the
floor: the same structure metrics of the true held-out frames). Each cell is the mean
over folds of the fold's value, with the mean of the folds' 95 % intervals (wider than
the pooled mean's interval: conservative).
"""

from __future__ import annotations

import html

import pandas as pd

from cgpipe import keys
from cgpipe.report import verdicts

BACKMAPPER = "backmapper"
REAL_FRAMES = "real frames"


def _cell(rows: pd.DataFrame, value: str, low: str, high: str) -> str:
    rows = rows.dropna(subset=[value])
    if rows.empty:
        return ""
    return verdicts.interval_text(rows[value].mean(), rows[low].mean(), rows[high].mean())


def comparison_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows: metric (unit); columns: each backmapper, then real frames."""
    methods = list(dict.fromkeys(scores[BACKMAPPER]))
    table = {}
    for metric, rows in scores.groupby(keys.METRIC, sort=False):
        unit = rows["unit"].iloc[0] if "unit" in rows else ""
        label = f"{metric} ({unit})" if unit else metric
        row = {m: _cell(rows[rows[BACKMAPPER] == m], "value", "low", "high") for m in methods}
        row[REAL_FRAMES] = _cell(rows, "floor", "floor_low", "floor_high")
        table[label] = row
    return pd.DataFrame.from_dict(table, orient="index")


def section(system: str, mapping: str, scores: pd.DataFrame) -> str:
    """The HTML of one (system, mapping)'s comparison, from its held-out scores (every
    fold and backmapper, concatenated)."""
    folds = sorted(set(scores[keys.FOLD]))
    return (
        f"<h2>{html.escape(system)} · {html.escape(mapping)}: backmapping on held-out "
        "frames</h2>\n"
        + comparison_table(scores).to_html(na_rep="")
        + '\n<p class="note">Each held-out frame of the folds '
        f"({', '.join(map(html.escape, folds))}) mapped to CG and rebuilt by every "
        "backmapper fitted on that fold's training trajectories, against the true frame: "
        "heavy-atom RMSD without superposition (best of a frame's samples, and their mean), "
        "the samples' mean pairwise RMSD and DiAMoNDBack's diversity (1: identical samples; "
        "0: samples as far from each other as from the truth), bonds within 10 % of their "
        "training mean, mean bond-angle deviation, clash score (100 × heavy-atom pairs more "
        "than two bonds apart closer than 0.12 nm per pair closer than 0.5 nm), "
        "stereocentres of the wrong hand, and φ/ψ signs unlike the CG frame's. <i>Real "
        "frames</i>: the same metrics of the true frames (the floor). Mean over folds, "
        "[mean of the folds' 95 % intervals].</p>"
    )
