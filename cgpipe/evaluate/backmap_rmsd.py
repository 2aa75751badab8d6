"""How closely backmapped frames reproduce the CG frames they came from."""

from __future__ import annotations

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric


@METRICS.register("backmap_rmsd")
class BackmapRMSD(Metric):
    """Per fold: the mean CG-space RMSD (nm) between each backmapped frame, mapped back
    to beads, and the CG frame it was built from (the backmapping table's ``cg_rmsd``)."""

    needs = frozenset({"backmap"})
    captions = {keys.BACKMAP_CG_RMSD: "Mean CG-space RMSD (nm) of backmapped frames."}

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        return self.per_fold(
            context, keys.BACKMAP_CG_RMSD, lambda fold: context.backmap(fold)[keys.CG_RMSD].mean()
        )
