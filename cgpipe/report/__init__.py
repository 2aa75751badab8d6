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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cgpipe import keys, paths
from cgpipe.errors import InputError
from cgpipe.evaluate.statistics import MAX_FLOOR_RESOLUTION
from cgpipe.io import Provenance, atomic_output, read_table, read_table_metadata
from cgpipe.report import backmapping, mappings
from cgpipe.report import verdicts as verdicts_of

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
    """One row per metric: its caption, the value of every fold, mean and std across folds
    and the pooled value (every fold's frames together) where there is one (a
    fold-independent metric's mean is its one value).

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
        # A fold-independent metric's mean is its one value; a per-fold metric's pooled
        # row (every fold's frames together) gets a column of its own.
        pooled = wide[keys.ALL_FOLDS]
        fold_independent = pooled.notna() & wide[folds].isna().all(axis=1)
        wide.loc[fold_independent, "mean"] = pooled[fold_independent]
        wide["pooled"] = pooled.where(~fold_independent)
        wide = wide.drop(columns=keys.ALL_FOLDS)
    wide.insert(0, "description", [captions.get(m, "") for m in wide.index])
    return wide


def _display(metrics: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as text: each value with its 95 % interval where it has one, and for a
    score with a noise floor, in how many folds it lies within the floor's interval."""
    table = summary.copy().astype(object)
    per_fold = set(metrics.loc[metrics[keys.FOLD] != keys.ALL_FOLDS, keys.METRIC])
    for row in metrics.itertuples(index=False):
        value, low, high = getattr(row, keys.VALUE), getattr(row, keys.LOW), getattr(row, keys.HIGH)
        fold = getattr(row, keys.FOLD)
        if fold == keys.ALL_FOLDS:
            column = "pooled" if getattr(row, keys.METRIC) in per_fold else "mean"
        else:
            column = fold
        text = f"{value:.4g}" if np.isfinite(value) else ""
        if np.isfinite(low) and np.isfinite(high):
            text += f" [{low:.4g}, {high:.4g}]"
        table.loc[getattr(row, keys.METRIC), column] = text
    for column in ("mean", "std", "pooled"):
        if column not in table:
            continue
        for metric in table.index:
            if isinstance(table.loc[metric, column], float):
                number = table.loc[metric, column]
                table.loc[metric, column] = f"{number:.4g}" if np.isfinite(number) else ""
    verdicts = []
    for metric in table.index:
        within, n = verdicts_of.within_floor(metrics, metric)
        verdicts.append(f"{within} of {n}" if n else "")
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


def _group_sections(
    tables: dict[str, pd.DataFrame],
    negative_control: str | None,
    baseline: str | None,
) -> str:
    """The comparison tables of one system and mapping: scores against floor, echo, the
    negative control and the baseline; and state populations with intervals.

    Parameters
    ----------
    tables
        Model name -> its metrics table, for one system and mapping.
    """
    control = tables.get(negative_control) if negative_control else None
    base = tables.get(baseline) if baseline else None
    first = next(iter(tables.values()))
    parts = []

    # Convergence and the verdict per model.
    lines = []
    for model, table in tables.items():
        done, n = verdicts_of.converged(table)
        state = (
            "no convergence check"
            if not n
            else f"converged in {done} of {n} folds"
            + ("" if done == n else ": <b>not converged — no verdict</b>")
        )
        mean, low, high = verdicts_of.stable_fraction(table)
        if np.isfinite(mean):
            state += f"; stable replicas {mean:.3g} (folds {low:.3g}–{high:.3g})"
        survival = verdicts_of.prefixed_means(table, keys.SURVIVAL_PREFIX)
        if survival:
            curve = ", ".join(
                f"{point.removesuffix('pct')} %: {value:.3g}" for point, value in survival.items()
            )
            state += f"; still running at (share of the run) {curve}"
        exchanges = verdicts_of.prefixed_means(table, keys.EXCHANGE_PREFIX)
        if exchanges:
            pairs = ", ".join(
                f"{pair.replace('_', '↔')} {value:.2f}" for pair, value in exchanges.items()
            )
            state += f"; exchange acceptance {pairs}"
        lines.append(f"<li><b>{html.escape(model)}</b>: {state}</li>")
    parts.append("<ul>" + "".join(lines) + "</ul>")

    # Scores: pooled value and interval per model, floor, echo, discrimination.
    names = verdicts_of.scores(first)
    if names:
        discrimination = verdicts_of.discrimination(first, control)
        rows = []
        for metric in names:
            pooled = _pooled(first, metric + keys.FLOOR_SUFFIX)
            resolution = _pooled(first, metric + keys.FLOOR_RESOLUTION_SUFFIX)
            row = {
                "score": metric,
                "floor (pooled)": pooled,
                "floor resolution": resolution,
                "echo (pooled)": _pooled(first, metric + keys.ECHO_SUFFIX),
                "replay (pooled)": _pooled(first, metric + keys.REPLAY_SUFFIX),
            }
            for model, table in tables.items():
                text = _pooled(table, metric)
                within, n = verdicts_of.within_floor(table, metric)
                text += f"; within floor {within}/{n}"
                insample = _pooled(table, metric + keys.INSAMPLE_SUFFIX)
                if insample:
                    text += f"; in sample {insample}"
                if base is not None and model != baseline:
                    below, m = verdicts_of.below_baseline(table, base, metric)
                    text += f"; below {baseline} {below}/{m}"
                row[model] = text
            row["verdict"] = discrimination[metric]
            rows.append(row)
        parts.append(
            "<h3>Scores against the floor, the echo and the controls</h3>"
            + pd.DataFrame(rows).to_html(index=False, escape=True)
            + '<p class="note">Every score is out of sample: each fold\'s CG simulation against '
            "the reference trajectories that fold held out (failed replicas' lost frames count "
            "as escaped mass); pooled: the mean over folds, value [95 % interval]. Floor: the "
            "held-out reference against itself at the CG frame count; its resolution 2 "
            f"sqrt(tau_int / n) above {MAX_FLOOR_RESOLUTION:g} marks a reference too short for "
            "the floor to be trusted. Replay: the fold's own training frames at the CG frame "
            "count, what memorising would score; <i>in sample</i> (no verdict): against every "
            "reference trajectory. <i>within floor k/n</i>: "
            "folds whose score does not exceed the upper end of its noise floor; <i>below "
            f"{html.escape(str(baseline))} k/n</i>: folds whose score interval lies entirely "
            "below the baseline's. A score is non-discriminating when the echo baseline "
            "(start frames, never moving) or the negative control "
            f"({html.escape(str(negative_control))}) lies within the floor in some fold.</p>"
        )

    # I.i.d. draws beside the simulation, for the models that have them.
    iid_rows = []
    for model, table in tables.items():
        folds = sorted(set(table[keys.FOLD]) - {keys.ALL_FOLDS}) + [keys.ALL_FOLDS]
        for metric in (n for n in names if n.startswith("js_")):
            drawn = keys.IID_PREFIX + metric
            if not (table[keys.METRIC] == drawn).any():
                continue
            gap = keys.SAMPLING_GAP_PREFIX + metric.removeprefix("js_")
            for fold in folds:
                iid_rows.append(
                    {
                        "model": model,
                        "score": metric,
                        "fold": fold,
                        "simulation": _cell(table, metric, fold),
                        "i.i.d. draws": _cell(table, drawn, fold),
                        "simulation / i.i.d.": _cell(table, gap, fold),
                        "floor (i.i.d. count)": _cell(table, drawn + keys.FLOOR_SUFFIX, fold),
                        "replay (i.i.d. count)": _cell(table, drawn + keys.REPLAY_SUFFIX, fold),
                    }
                )
    if iid_rows:
        parts.append(
            "<h3>I.i.d. draws and simulation</h3>"
            + pd.DataFrame(iid_rows).to_html(index=False, escape=True)
            + '<p class="note">A model that samples both ways (the diffusion model: reverse '
            "diffusion, and Langevin dynamics of its score at a small noise level), scored on "
            "the same held-out trajectories and histogram, value [95 % interval]; "
            "<i>simulation / i.i.d.</i>: the ratio of the two JS (1: the force field samples "
            "what the sampler draws), bootstrap of both. Floor and replay at the draws' frame "
            "count.</p>"
        )

    # Populations.
    population_rows = []
    reference = first[first[keys.METRIC].str.endswith(keys.REFERENCE_SUFFIX)]
    states = [
        m[len(keys.POPULATION_PREFIX) : -len(keys.REFERENCE_SUFFIX)]
        for m in dict.fromkeys(reference[keys.METRIC])
        if m.startswith(keys.POPULATION_PREFIX)
    ]
    if states:

        def row_of(label: str, table: pd.DataFrame, suffix: str, fold: str) -> dict[str, str]:
            out = {"ensemble": label}
            for state in states:
                out[state] = _cell(table, keys.POPULATION_PREFIX + state + suffix, fold)
            return out

        population_rows.append(
            row_of("reference, all trajectories", first, keys.REFERENCE_SUFFIX, keys.ALL_FOLDS)
        )
        trajectories = sorted(
            {m.rsplit("_traj", 1)[1] for m in first[keys.METRIC] if "_reference_traj" in m}, key=int
        )
        for traj in trajectories:
            population_rows.append(
                row_of(
                    f"reference trajectory {traj}",
                    first,
                    f"{keys.REFERENCE_SUFFIX}_traj{traj}",
                    keys.ALL_FOLDS,
                )
            )
        population_rows.append(
            row_of("echo (start set), pooled", first, keys.ECHO_SUFFIX, keys.ALL_FOLDS)
        )
        for model, table in tables.items():
            population_rows.append(row_of(f"{model}, pooled", table, "", keys.ALL_FOLDS))
            for fold in sorted(set(table[keys.FOLD]) - {keys.ALL_FOLDS}):
                population_rows.append(row_of(f"{model}, {fold}", table, "", fold))
        parts.append(
            "<h3>State populations</h3>"
            + pd.DataFrame(population_rows).to_html(index=False)
            + '<p class="note">Fraction of frames [95 % interval]: reference by bootstrap over '
            "trajectories (blocks within each with fewer than 5) or blocks within one "
            "trajectory; CG by bootstrap over replicas, production frames only.</p>"
        )
    return "\n".join(parts)


def _cell(table: pd.DataFrame, metric: str, fold: str) -> str:
    rows = table[(table[keys.METRIC] == metric) & (table[keys.FOLD] == fold)]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    return verdicts_of.interval_text(row[keys.VALUE], row[keys.LOW], row[keys.HIGH])


def _pooled(table: pd.DataFrame, metric: str) -> str:
    return _cell(table, metric, keys.ALL_FOLDS)


def run(
    output: str | os.PathLike[str],
    metrics_paths: list[str | os.PathLike[str]],
    fes_paths: list[str | os.PathLike[str]],
    *,
    negative_control: str | None = None,
    baseline: str | None = None,
    mapping_scores: Sequence[str | os.PathLike[str]] = (),
    fits: Sequence[str | os.PathLike[str]] = (),
    backmap_scores: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Write the report page from every model's metrics table and FES plot.

    Parameters
    ----------
    output
        The HTML page to write.
    metrics_paths, fes_paths
        Each model's ``metrics.parquet`` and ``fes.png``, in the same order. Each metric's
        caption comes from its table's metadata.
    negative_control, baseline
        Model names (``report`` section of the configuration): the negative control that
        every score must tell from the floor, and the model every other is compared with.
    mapping_scores
        Each mapping's scores on held-out frames (:mod:`cgpipe.mapping.compare`): the
        mappings of a system are compared in one table.
    fits
        The fit tables of maps fitted per fold (paths of the form
        :data:`cgpipe.paths.MAPPING_FIT`), drawn beside that table.
    backmap_scores
        Each fitted backmapper's scores on its fold's held-out frames (paths of the form
        :data:`cgpipe.paths.BACKMAP_HELDOUT`): the backmappers of a system and mapping
        are compared in one table.
    """
    metrics_paths = [os.fspath(p) for p in metrics_paths]
    fes_paths = [os.fspath(p) for p in fes_paths]
    if len(metrics_paths) != len(fes_paths):
        raise InputError("need one FES plot per metrics table")
    groups: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
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
            group = (first[keys.SYSTEM], first[keys.MAPPING])
            groups.setdefault(group, {})[first[keys.MODEL]] = metrics
            title = f"{first[keys.SYSTEM]} · {first[keys.MAPPING]} · {first[keys.MODEL]}"
            summary = summarise(metrics, read_captions(metrics_path))
            table = _display(metrics, summary).to_html(na_rep="")
        sections.append(
            f"<h2>{html.escape(title)}</h2>\n{_image(Path(fes_path))}\n{table}\n"
            f'<p class="note">From {html.escape(metrics_path)}; mean and std over folds '
            "(std with ddof=1); pooled: every fold's frames together; [low, high]: 95 % "
            "interval; <i>within floor</i>: folds whose score does not exceed the upper end of "
            "its noise floor's interval (a model there cannot be told from the reference's own "
            "sampling noise).</p>"
        )
    comparisons = [
        f"<h2>{html.escape(system)} · {html.escape(mapping)}: models compared</h2>\n"
        + _group_sections(tables, negative_control, baseline)
        for (system, mapping), tables in groups.items()
    ]
    mapping_scores = [os.fspath(p) for p in mapping_scores]
    fits = [os.fspath(p) for p in fits]
    scores: dict[str, dict[str, pd.DataFrame]] = {}
    for path in mapping_scores:
        table = read_table(path)
        missing = {keys.SYSTEM, keys.MAPPING, keys.FOLD, keys.METRIC} - set(table.columns)
        if missing or table.empty:
            raise InputError(f"{path}: not a mapping scores table (lacks {sorted(missing)})")
        scores.setdefault(table[keys.SYSTEM].iloc[0], {})[table[keys.MAPPING].iloc[0]] = table
    fitted: dict[str, dict[str, dict[int, pd.DataFrame]]] = {}
    for path in fits:
        try:
            where = paths.parse(paths.MAPPING_FIT, path)
        except ValueError as error:
            raise InputError(str(error)) from None
        by_mapping = fitted.setdefault(where["system"], {}).setdefault(where["mapping"], {})
        by_mapping[int(where["fold"])] = read_table(path)
    mapping_sections = [
        mappings.section(
            system,
            by_mapping,
            {m: tables for (s, m), tables in groups.items() if s == system},
            fitted.get(system, {}),
        )
        for system, by_mapping in scores.items()
    ]
    backmap_scores = [os.fspath(p) for p in backmap_scores]
    by_system: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for path in backmap_scores:
        try:
            where = paths.parse(paths.BACKMAP_HELDOUT, path)
        except ValueError as error:
            raise InputError(str(error)) from None
        by_system.setdefault((where["system"], where["mapping"]), []).append(read_table(path))
    backmap_sections = [
        backmapping.section(system, mapping, pd.concat(tables, ignore_index=True))
        for (system, mapping), tables in by_system.items()
    ]
    provenance = Provenance(
        stage="report",
        config={"negative_control": negative_control, "baseline": baseline},
        inputs=[*metrics_paths, *fes_paths, *mapping_scores, *fits, *backmap_scores],
    )
    record = provenance.to_json().replace("</", "<\\/")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>cgpipe report</title>"
        f"<style>{_STYLE}</style>"
        f'<script type="application/json" id="provenance">{record}</script>'
        "</head><body>\n<h1>cgpipe report</h1>\n"
        '<p class="note">Free-energy surfaces F = −kT ln p in kJ/mol, reference (all-atom, '
        "all trajectories) and the CG production frames of each cross-validation fold. Units: "
        "nm, ps, kJ/mol.</p>\n"
        + "\n".join(mapping_sections)
        + "\n"
        + "\n".join(comparisons)
        + "\n"
        + "\n".join(backmap_sections)
        + "\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    with atomic_output(output) as tmp:
        tmp.write_text(page)
