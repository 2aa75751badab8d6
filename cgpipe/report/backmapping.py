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
TO_TRUTH = ("heavy_rmsd_best", "heavy_rmsd_mean")
"""Metrics without a floor that a negative control must score worse (higher) than every
fitted backmapper."""


def _cell(rows: pd.DataFrame, value: str, low: str, high: str) -> str:
    rows = rows.dropna(subset=[value])
    if rows.empty:
        return ""
    return verdicts.interval_text(rows[value].mean(), rows[low].mean(), rows[high].mean())


def _controls(scores: pd.DataFrame) -> list[str]:
    """The backmappers that are negative controls (the held-out table says so)."""
    if "control" not in scores:
        return []
    return list(dict.fromkeys(scores.loc[scores["control"].astype(bool), BACKMAPPER]))


def _column(method: str, controls: list[str]) -> str:
    return f"{method} (negative control)" if method in controls else method


def comparison_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows: metric (unit); columns: each backmapper (a control so labelled), then real
    frames."""
    methods = list(dict.fromkeys(scores[BACKMAPPER]))
    controls = _controls(scores)
    table = {}
    for metric, rows in scores.groupby(keys.METRIC, sort=False):
        unit = rows["unit"].iloc[0] if "unit" in rows else ""
        label = f"{metric} ({unit})" if unit else metric
        row = {
            _column(m, controls): _cell(rows[rows[BACKMAPPER] == m], "value", "low", "high")
            for m in methods
        }
        row[REAL_FRAMES] = _cell(rows, "floor", "floor_low", "floor_high")
        table[label] = row
    return pd.DataFrame.from_dict(table, orient="index")


def blind_metrics(scores: pd.DataFrame) -> list[str]:
    """Each metric that cannot tell a negative control apart, as a phrase: one with a
    floor whose control interval overlaps the real frames' (mean intervals over folds, as
    the table shows them), and an RMSD to the truth (:data:`TO_TRUTH`) whose control
    interval reaches down to a fitted backmapper's."""
    controls = _controls(scores)
    fitted = [m for m in dict.fromkeys(scores[BACKMAPPER]) if m not in controls]
    blind = []
    for metric, rows in scores.groupby(keys.METRIC, sort=False):
        for control in controls:
            own = rows[rows[BACKMAPPER] == control].dropna(subset=["value"])
            if own.empty:
                continue
            low, high = own["low"].mean(), own["high"].mean()
            floor = rows.dropna(subset=["floor"])
            if not floor.empty:
                if low <= floor["floor_high"].mean() and floor["floor_low"].mean() <= high:
                    blind.append(f"{metric}: {control} as real frames")
            elif metric in TO_TRUTH:
                for method in fitted:
                    other = rows[rows[BACKMAPPER] == method].dropna(subset=["value"])
                    if not other.empty and low <= other["high"].mean():
                        blind.append(f"{metric}: {control} as {method}")
    return blind


def section(system: str, mapping: str, scores: pd.DataFrame) -> str:
    """The HTML of one (system, mapping)'s comparison, from its held-out scores (every
    fold and backmapper, concatenated)."""
    folds = sorted(set(scores[keys.FOLD]))
    blind = blind_metrics(scores)
    if blind:
        control_note = (
            '\n<p class="note"><b>Metrics that cannot tell the negative control apart</b> '
            "(its interval overlaps the other's): "
            + "; ".join(map(html.escape, blind))
            + ". On these data they judge nothing.</p>"
        )
    elif _controls(scores):
        control_note = (
            '\n<p class="note">Every metric tells the negative control from real frames, '
            "and every RMSD to the truth tells it from each fitted backmapper.</p>"
        )
    else:
        control_note = ""
    if scores[keys.METRIC].astype(str).str.endswith("_minimised").any():
        control_note += (
            '\n<p class="note"><i>_minimised</i>: the same structures after a restrained '
            "minimisation in the reference's force field (heavy atoms held where they were "
            "drawn, each stereocentre at its drawn hand); their floor is the true frames "
            "after the same minimisation, which pulls bond angles to the force field's own "
            "equilibria. The negative control is not "
            "minimised: its clashes would be the force field's to clear (chignolin's "
            "scattered atoms lost every one), so a minimised clash score says little of "
            "the backmapper before it.</p>"
        )
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
        "[mean of the folds' 95 % intervals].</p>" + control_note
    )
