"""How many CG replicas stayed stable, and for how long: the survival curve; and, for a
parallel-tempering run, the acceptance of its exchanges."""

from __future__ import annotations

import math

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric
from cgpipe.io import read_provenance

SURVIVAL_POINTS = (0.1, 0.25, 0.5, 0.75, 1.0)
"""Fractions of the run's length at which the survival curve is given."""


def survival_metric(point: float) -> str:
    """The metric name of the survival curve at ``point`` of the run's length."""
    return f"{keys.SURVIVAL_PREFIX}{round(100 * point)}pct"


def exchange_metric(low: float, high: float) -> str:
    """The metric name of the acceptance between rungs at ``low`` and ``high`` K."""
    return f"{keys.EXCHANGE_PREFIX}{low:.0f}K_{high:.0f}K"


@METRICS.register("stability")
class Stability(Metric):
    """Per fold: the fraction of the CG simulation's replicas that never failed (the
    mean of the health table's ``stable`` column); the survival curve, the fraction still
    running at 10, 25, 50, 75 and 100 % of the run's length; and for parallel tempering
    the acceptance of exchanges between each pair of neighbouring temperatures."""

    needs = frozenset({"health"})
    captions = {
        keys.STABLE_FRACTION: "Fraction of CG replicas that never failed (0 to 1).",
        **{
            survival_metric(p): f"Fraction of CG replicas still running at {100 * p:g} % of "
            "the run's length (the survival curve)."
            for p in SURVIVAL_POINTS
        },
    }

    def caption(self, metric: str) -> str | None:
        if metric.startswith(keys.EXCHANGE_PREFIX):
            pair = metric[len(keys.EXCHANGE_PREFIX) :].replace("_", " and ")
            return f"Acceptance of parallel-tempering exchanges between {pair} (0 to 1)."
        return super().caption(metric)

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        """Survival rows where the health table has times to failure and its provenance
        the run's length; exchange rows where it records exchanges."""
        rows = self.per_fold(
            context, keys.STABLE_FRACTION, lambda fold: context.health(fold)[keys.STABLE].mean()
        )
        for fold in context.folds:
            health = context.health(fold)
            record = read_provenance(context.health_path(fold))
            config = record.get("config", {})
            try:
                length = float(config["n_steps"]) * float(config["timestep"])
            except (KeyError, TypeError, ValueError):
                length = math.nan
            if np.isfinite(length) and keys.TIME_TO_FAILURE in health:
                failed = health[keys.TIME_TO_FAILURE].to_numpy(dtype=float)
                for point in SURVIVAL_POINTS:
                    running = np.isnan(failed) | (failed > point * length)
                    rows.append((context.label(fold), survival_metric(point), running.mean()))
            for pair in record.get("extra", {}).get("exchanges", []):
                name = exchange_metric(pair["temperature_low"], pair["temperature_high"])
                rows.append((context.label(fold), name, float(pair["acceptance"])))
        return rows
