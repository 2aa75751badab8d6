"""The evaluation stage for one model: the metrics table and the free-energy surface plot."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cgpipe import keys, paths
from cgpipe.errors import InputError
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.fes import plot_fes
from cgpipe.io import Provenance, read_trajectory, write_table
from cgpipe.seeds import stage_seed
from cgpipe.stages import write_resolved_config
from cgpipe.units import thermal_energy


def run(
    cg_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    folds: list[dict[str, Path]],
    output_dir: str | os.PathLike[str],
    *,
    system: str,
    mapping: str,
    model: str,
    cfg: dict[str, Any],
) -> pd.DataFrame:
    """Score every fold of one model; write ``metrics.parquet`` and ``fes.png``.

    Parameters
    ----------
    cg_paths
        The CG reference (every trajectory; forces in kJ/mol/nm where the data has them):
        one file, or one per fold (in fold order) for a map fitted per fold. Each fold of
        such a map is then scored against its own CG reference alone, and the table has no
        pooled rows (fold ``all``): its folds live in different CG spaces.
    folds
        ``folds[k]`` names fold k's ``model`` (checkpoint), ``traj`` (CG simulation),
        ``health`` and ``backmap`` (tables) files, and ``samples`` (i.i.d. draws) for a
        model that has them; only those that the metrics named in ``evaluate.metrics``
        read, and ``traj`` (plotted), need to exist. Where every fold has ``samples``, the
        metrics of the sampled ensemble (:attr:`Metric.samplings`) score the draws too,
        in rows whose metric is prefixed :data:`cgpipe.keys.IID_PREFIX`.
    output_dir
        The model's evaluation folder: ``metrics.parquet`` (columns
        :data:`cgpipe.keys.METRIC_COLUMNS`; the captions of its metric names as JSON in
        the schema metadata :data:`cgpipe.keys.PARQUET_CAPTIONS_KEY`), ``fes.png`` and the
        resolved configuration.
    system, mapping, model
        What is evaluated (the table's first columns).
    cfg
        The validated configuration: ``evaluate`` (``metrics``, ``bins``, ``burn_in`` and
        each metric's section), ``observables``, ``train.n_folds`` and ``temperature`` (K)
        are read.

    Returns
    -------
    The metrics table, rows in the order of ``evaluate.metrics``.
    """
    section = cfg["evaluate"]
    n_folds = cfg["train"]["n_folds"]
    kT = thermal_energy(cfg["temperature"])
    metrics: list[Metric] = [METRICS.get(name)(**section[name]) for name in section["metrics"]]
    if isinstance(cg_paths, str | os.PathLike):
        cg_paths = [cg_paths]
    per_fold = len(cg_paths) > 1
    if per_fold and len(cg_paths) != n_folds:
        raise InputError(
            f"give one CG reference, or one per fold (train.n_folds={n_folds}); got {len(cg_paths)}"
        )
    samplings = ["dynamics"]
    if folds and all("samples" in fold for fold in folds):
        samplings.append("iid")
    references = [read_trajectory(cg_path) for cg_path in cg_paths]
    backmap = cfg.get("backmap", {})
    chosen = backmap.get("models")
    backmappers = backmap.get("methods", ()) if chosen is None or model in chosen else ()
    contexts = [
        EvaluationContext(
            reference,
            folds,
            n_folds=n_folds,
            kT=kT,
            bins=section["bins"],
            reference_path=cg_path,
            seed=stage_seed(cfg["seed"], "evaluate", system, mapping=mapping, model=model),
            burn_in=section["burn_in"],
            tica_lag=cfg["observables"]["tica_lag"],
            only=fold if per_fold else None,
            sampling=sampling,
            backmappers=backmappers,
        )
        for sampling in samplings
        for fold, (cg_path, reference) in enumerate(zip(cg_paths, references, strict=True))
    ]

    rows: list[MetricRow] = []
    captions: dict[str, str] = {}
    for context in contexts:
        prefix = keys.IID_PREFIX if context.sampling == "iid" else ""
        for metric in metrics:
            if context.sampling not in metric.samplings:
                continue
            with context.serving(metric):
                produced = [MetricRow(*row) for row in metric.rows(context)]
            _check_rows(metric, produced, context)
            if per_fold:  # a one-fold context's pooled rows are that fold's again
                produced = [row for row in produced if row.fold != keys.ALL_FOLDS]
            rows += [row._replace(metric=prefix + row.metric) for row in produced]
            captions.update(
                {prefix + row.metric: _caption(metric, row.metric, prefix) for row in produced}
            )
    table = pd.DataFrame(rows, columns=[keys.FOLD, keys.METRIC, keys.VALUE, keys.LOW, keys.HIGH])
    for column in (keys.VALUE, keys.LOW, keys.HIGH):
        table[column] = table[column].astype(float)
    table.insert(0, keys.MODEL, model)
    table.insert(0, keys.MAPPING, mapping)
    table.insert(0, keys.SYSTEM, system)

    # The plot: the reference and each fold whose simulation saved a frame (a map fitted
    # per fold: each fold's reference beside its simulation, on fold 0's axes).
    context = contexts[0]
    whose = ", fold0's map" if per_fold else ""
    panels = [(f"reference ({context.reference.n_frames} frames{whose})", context.reference_values)]
    for each in contexts:
        for fold in each.folds:
            if not each.simulation(fold).n_frames:
                continue
            if per_fold and fold and each.sampling == "dynamics":
                label = f"reference, {each.label(fold)}'s map"
                panels.append((label, each.projection.compute(each.reference)))
            drawn = " i.i.d." if each.sampling == "iid" else ""
            panels.append((f"{model} {each.label(fold)}{drawn}", each.simulation_values(fold)))

    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="evaluate",
        config={
            "model": model,
            "n_folds": n_folds,
            "temperature": cfg["temperature"],
            "evaluate": section,
            "observables": cfg["observables"],
        },
        inputs=list(dict.fromkeys(path for each in contexts for path in each.inputs)),
    )
    write_table(
        output_dir / paths.METRICS_FILE,
        table,
        provenance,
        metadata={keys.PARQUET_CAPTIONS_KEY: json.dumps(captions, sort_keys=True).encode()},
    )
    projection = context.projection
    plot_fes(
        output_dir / paths.FES_FILE,
        panels,
        projection,
        section["bins"],
        kT,
        f"{system} / {mapping} / {model}: {projection.title} free energy",
        provenance,
    )
    write_resolved_config(output_dir, cfg)
    return table


def _caption(metric: Metric, name: str, prefix: str) -> str | None:
    """The caption of a row's metric name; of an i.i.d. draws' row, said so."""
    caption = metric.caption(name)
    if prefix and caption is not None:
        return (
            "Of the model's i.i.d. draws (no dynamics, each draw resampled on its own): " + caption
        )
    return caption


def _check_rows(metric: Metric, rows: list[MetricRow], context: EvaluationContext) -> None:
    """A metric's rows name a fold of this evaluation (or all folds) and a metric of its
    captions."""
    folds = {keys.ALL_FOLDS, *(context.label(fold) for fold in context.folds)}
    for row in rows:
        if row.fold not in folds or metric.caption(row.metric) is None:
            raise ValueError(
                f"metric {metric.name!r} gave the row {row!r}: its fold must be one of "
                f"{sorted(folds)} and its metric one of {sorted(metric.captions)}"
            )
