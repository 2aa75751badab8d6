"""How many CG replicas stayed stable."""

from __future__ import annotations

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric


@METRICS.register("stability")
class Stability(Metric):
    """Per fold: the fraction of the CG simulation's replicas that never failed (the
    mean of the health table's ``stable`` column)."""

    needs = frozenset({"health"})
    captions = {keys.STABLE_FRACTION: "Fraction of CG replicas that never failed (0 to 1)."}

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        return self.per_fold(
            context, keys.STABLE_FRACTION, lambda fold: context.health(fold)[keys.STABLE].mean()
        )
