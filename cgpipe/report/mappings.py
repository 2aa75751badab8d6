"""The report's comparison of a system's mappings on the same held-out frames.

One table per system, a row per mapping: its beads per fold, the reconstruction error of
the best linear decoder (nm) and the mean squared mapped force ((kJ/mol/nm)^2), each
pooled over folds with its 95 % interval, beside the same score of random connected maps
of as many beads (the floor row of :mod:`cgpipe.mapping.compare`); then, per model, the
main divergence of the Evaluation stage against its noise floor (fold means, and the
folds within the floor), so a map is judged by what its CG model reproduces as well as
by what it keeps. The fit of a map fitted per fold is drawn: the k-means elbow curve of
every fold with the chosen k marked, and Autograin's losses per epoch.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cgpipe import keys  # noqa: E402
from cgpipe.mapping.compare import MAPPED_FORCE, N_BEADS, RANDOM_SUFFIX, RECONSTRUCTION  # noqa: E402
from cgpipe.report import verdicts  # noqa: E402


def _cell(scores: pd.DataFrame, metric: str, fold: str = keys.ALL_FOLDS) -> str:
    rows = scores[(scores[keys.METRIC] == metric) & (scores[keys.FOLD] == fold)]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    return verdicts.interval_text(row[keys.VALUE], row[keys.LOW], row[keys.HIGH])


def _beads(scores: pd.DataFrame) -> str:
    rows = scores[(scores[keys.METRIC] == N_BEADS) & (scores[keys.FOLD] != keys.ALL_FOLDS)]
    counts = rows.sort_values(keys.FOLD)[keys.VALUE].astype(int).tolist()
    return str(counts[0]) if len(set(counts)) == 1 else ", ".join(map(str, counts))


def _downstream(table: pd.DataFrame) -> str:
    """The first score (the 2-D projection's JS) of a model: fold means of score and floor
    and the folds within the floor."""
    names = verdicts.scores(table)
    if not names:
        stable = table.loc[table[keys.METRIC] == keys.STABLE_FRACTION, keys.VALUE]
        return f"no scores (stable fraction {stable.mean():.2g})" if len(stable) else ""
    metric = names[0]
    folds = table[table[keys.FOLD] != keys.ALL_FOLDS]
    value = folds.loc[folds[keys.METRIC] == metric, keys.VALUE].mean()
    floor = folds.loc[folds[keys.METRIC] == metric + keys.FLOOR_SUFFIX, keys.VALUE].mean()
    within, n = verdicts.within_floor(table, metric)
    return f"{metric} {value:.3g} (floor {floor:.3g}); within floor {within}/{n}"


def comparison_table(
    scores: dict[str, pd.DataFrame], models: dict[str, dict[str, pd.DataFrame]]
) -> pd.DataFrame:
    """A row per mapping of one system.

    Parameters
    ----------
    scores
        Mapping name -> its scores table (:func:`cgpipe.mapping.compare.run`).
    models
        Mapping name -> model name -> its metrics table.
    """
    rows = []
    for mapping, table in scores.items():
        row = {
            "mapping": mapping,
            "beads": _beads(table),
            "reconstruction RMSE (nm)": _cell(table, RECONSTRUCTION),
            "random map": _cell(table, RECONSTRUCTION + RANDOM_SUFFIX),
            "mapped force MS ((kJ/mol/nm)²)": _cell(table, MAPPED_FORCE),
            "random map ": _cell(table, MAPPED_FORCE + RANDOM_SUFFIX),
        }
        for model, metrics in models.get(mapping, {}).items():
            row[model] = _downstream(metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="fit" src="data:image/png;base64,{encoded}">'


def fit_plot(mapping: str, fits: dict[int, pd.DataFrame]) -> str:
    """The fits of one mapping's folds: an elbow curve (columns ``k``, ``wcss``,
    ``chosen``) or losses per epoch (``epoch``, ``loss`` and ``validation_*``); "" for a
    table of neither kind."""
    first = next(iter(fits.values()))
    figure, axis = plt.subplots(figsize=(5, 3.2))
    if {"k", "wcss"} <= set(first.columns):
        for fold, table in sorted(fits.items()):
            (line,) = axis.plot(table["k"], table["wcss"], marker="o", label=f"fold{fold}")
            chosen = table[table["chosen"].astype(bool)] if "chosen" in table else table.iloc[:0]
            axis.plot(chosen["k"], chosen["wcss"], "*", ms=14, color=line.get_color())
        axis.set(xlabel="beads k", ylabel="within-cluster SS (amu nm²)")
        axis.set_title(f"{mapping}: elbow (★ chosen)")
    elif {"epoch", "loss"} <= set(first.columns):
        for fold, table in sorted(fits.items()):
            (line,) = axis.plot(table["epoch"], table["loss"], label=f"fold{fold} training")
            if "validation_reconstruction" in table:
                axis.plot(
                    table["epoch"],
                    table["validation_reconstruction"],
                    ls="--",
                    color=line.get_color(),
                    label=f"fold{fold} validation reconstruction",
                )
        axis.set(xlabel="epoch", ylabel="loss (nm² + ρ·force²)", yscale="log")
        axis.set_title(f"{mapping}: training")
    else:
        plt.close(figure)
        return ""
    axis.legend(fontsize=7)
    return _png(figure)


def section(
    system: str,
    scores: dict[str, pd.DataFrame],
    models: dict[str, dict[str, pd.DataFrame]],
    fits: dict[str, dict[int, pd.DataFrame]],
) -> str:
    """The HTML of one system's mapping comparison."""
    table = comparison_table(scores, models)
    plots = "".join(fit_plot(mapping, by_fold) for mapping, by_fold in fits.items() if by_fold)
    return (
        f"<h2>{html.escape(system)}: mappings compared on held-out frames</h2>\n"
        + table.to_html(index=False, escape=True)
        + "<p class=\"note\">Each fold's map (a fitted map: the one fitted to that fold's "
        "training trajectories) scored on the trajectories the fold holds out, pooled over "
        "folds: value [95 % interval, bootstrap of held-out frames]. Reconstruction: RMS "
        "atom error of the best linear decoder from the beads (fitted on the training "
        "frames). Mapped force: mean square over beads and components of the aggregated "
        "force. <i>random map</i>: random connected maps with as many beads (the floor). "
        "Model columns: the model's main divergence, mean over folds, beside its noise floor "
        f"at the same frame count.</p>\n{plots}"
    )
