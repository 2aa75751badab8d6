"""What the report concludes from the metrics tables of one system and mapping.

Pure pandas on metrics tables (columns :data:`cgpipe.keys.METRIC_COLUMNS`):

- a **score** is a metric with a noise floor (``<name>_floor`` rows); its echo baseline is
  ``<name>_echo``;
- a score is **non-discriminating** when the negative control or the echo baseline lies
  within the floor (does not exceed the upper end of the floor's interval) in some fold:
  such a metric cannot tell a bad model from the reference's own noise;
- a model is **better than the baseline** in a fold when its score's interval lies
  entirely below the baseline model's (both from bootstraps over their CG replicas);
- a model is **converged** when every fold's ``converged`` row is 1;
- a floor is **unreliable** where the held-out reference is too short for its interval to
  be trusted: its resolution (``<name>_floor_resolution``, 2 sqrt(tau_int / n)) exceeds
  :data:`~cgpipe.evaluate.statistics.MAX_FLOOR_RESOLUTION` in some fold; the verdict says
  so rather than using it silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.evaluate.statistics import MAX_FLOOR_RESOLUTION


def scores(metrics: pd.DataFrame) -> list[str]:
    """The score metrics of a table's simulation (those with a floor; not the i.i.d.
    draws' rows), in the table's order."""
    names = list(dict.fromkeys(metrics[keys.METRIC]))
    return [
        n for n in names if n + keys.FLOOR_SUFFIX in names and not n.startswith(keys.IID_PREFIX)
    ]


def _by_fold(metrics: pd.DataFrame, metric: str, column: str = keys.VALUE) -> pd.Series:
    rows = metrics[(metrics[keys.METRIC] == metric) & (metrics[keys.FOLD] != keys.ALL_FOLDS)]
    return rows.set_index(keys.FOLD)[column]


def within_floor(metrics: pd.DataFrame, metric: str, suffix: str = "") -> tuple[int, int]:
    """Folds in which ``metric + suffix`` (the model's score, or its echo with
    :data:`~cgpipe.keys.ECHO_SUFFIX`) does not exceed the upper end of the floor's
    interval, and the folds compared."""
    values = _by_fold(metrics, metric + suffix)
    highs = _by_fold(metrics, metric + keys.FLOOR_SUFFIX, keys.HIGH)
    shared = values.index.intersection(highs.index)
    return int((values[shared] <= highs[shared]).sum()), len(shared)


def discrimination(metrics: pd.DataFrame, negative_control: pd.DataFrame | None) -> dict[str, str]:
    """Per score: "discriminating", or "non-discriminating (...)" saying which control lies
    within the floor, or "unknown (no negative control)"."""
    verdicts = {}
    for metric in scores(metrics):
        reasons = []
        unreliable, n_folds = unreliable_floor(metrics, metric)
        if unreliable:
            reasons.append(
                f"floor unreliable in {unreliable} of {n_folds} folds: held-out reference too "
                f"short (resolution above {MAX_FLOOR_RESOLUTION:g})"
            )
        echo_within, n = within_floor(metrics, metric, keys.ECHO_SUFFIX)
        if echo_within:
            reasons.append(f"echo within floor in {echo_within} of {n} folds")
        if negative_control is not None and metric in set(negative_control[keys.METRIC]):
            control_within, m = within_floor(negative_control, metric)
            if control_within:
                reasons.append(f"negative control within floor in {control_within} of {m} folds")
        elif not reasons:
            verdicts[metric] = "unknown (no negative control run)"
            continue
        verdicts[metric] = (
            "non-discriminating (" + "; ".join(reasons) + ")" if reasons else "discriminating"
        )
    return verdicts


def unreliable_floor(metrics: pd.DataFrame, metric: str) -> tuple[int, int]:
    """Folds whose floor resolution for ``metric`` exceeds
    :data:`~cgpipe.evaluate.statistics.MAX_FLOOR_RESOLUTION`, and the folds with one."""
    values = _by_fold(metrics, metric + keys.FLOOR_RESOLUTION_SUFFIX)
    return int((values > MAX_FLOOR_RESOLUTION).sum()), len(values)


def stable_fraction(metrics: pd.DataFrame) -> tuple[float, float, float]:
    """The mean, lowest and highest over folds of the fraction of replicas that never
    failed (NaN where the table has none)."""
    values = _by_fold(metrics, keys.STABLE_FRACTION)
    if values.empty:
        return (np.nan, np.nan, np.nan)
    return float(values.mean()), float(values.min()), float(values.max())


def prefixed_means(metrics: pd.DataFrame, prefix: str) -> dict[str, float]:
    """Metric name (without ``prefix``) -> its mean over folds, for every per-fold metric
    whose name starts with ``prefix``, in the table's order."""
    rows = metrics[
        metrics[keys.METRIC].str.startswith(prefix) & (metrics[keys.FOLD] != keys.ALL_FOLDS)
    ]
    means = rows.groupby(keys.METRIC, sort=False)[keys.VALUE].mean()
    return {name[len(prefix) :]: float(value) for name, value in means.items()}


def below_baseline(metrics: pd.DataFrame, baseline: pd.DataFrame, metric: str) -> tuple[int, int]:
    """Folds in which the model's score interval lies entirely below the baseline's
    (upper end below the baseline's lower end), and the folds compared."""
    highs = _by_fold(metrics, metric, keys.HIGH)
    lows = _by_fold(baseline, metric, keys.LOW)
    shared = highs.index.intersection(lows.index)
    return int((highs[shared] < lows[shared]).sum()), len(shared)


def converged(metrics: pd.DataFrame) -> tuple[int, int]:
    """Folds whose ``converged`` row is 1, and the folds with such a row."""
    values = _by_fold(metrics, keys.CONVERGED)
    return int((values == 1).sum()), len(values)


def interval_text(value: float, low: float = np.nan, high: float = np.nan) -> str:
    """ "value [low, high]" with 4 significant digits ("" for NaN)."""
    if not np.isfinite(value):
        return ""
    text = f"{value:.4g}"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.4g}, {high:.4g}]"
    return text
