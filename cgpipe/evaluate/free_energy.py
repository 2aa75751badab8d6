"""Divergences and free-energy RMSE between the CG and reference ensembles on 2-D
projections (phi/psi, or radius of gyration and end-to-end distance; and the first two
TICA components), each with its interval, its noise floor, its echo and replay baselines
and its in-sample companion.

Per fold, the fold's CG production frames (with its failed replicas' lost frames as
escaped mass) are scored against the fold's held-out reference trajectories, on the 2-D
projection and on the TICA fitted on the reference trajectories that the fold trained on;
pooled (fold ``all``), the mean over folds. See :mod:`cgpipe.evaluate.comparison`.
"""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.comparison import Binned, Reference, Scored, compare, pool, scored_rows
from cgpipe.evaluate.comparison import captions as comparison_captions
from cgpipe.evaluate.statistics import Resampling
from cgpipe.observables import Projection

_WHAT = {
    "phi_psi": "φ/ψ",
    "rg_end_to_end": "(radius of gyration, end-to-end distance)",
    "tica": "the first two TICA components (fitted on the fold's training trajectories)",
}
_METRICS = {
    "phi_psi": (keys.JS_PHI_PSI, keys.KL_PHI_PSI, keys.KL_REVERSE_PHI_PSI, keys.FE_RMSE_PHI_PSI),
    "rg_end_to_end": (
        keys.JS_RG_END_TO_END,
        keys.KL_RG_END_TO_END,
        keys.KL_REVERSE_RG_END_TO_END,
        keys.FE_RMSE_RG_END_TO_END,
    ),
    "tica": (keys.JS_TICA, keys.KL_TICA, keys.KL_REVERSE_TICA, keys.FE_RMSE_TICA),
}
_SCORE = (
    "Jensen-Shannon divergence (nats) of {what}, CG vs all-atom reference.",
    "KL divergence D(reference ‖ CG) (nats) of {what}.",
    "KL divergence D(CG ‖ reference) (nats) of {what}.",
    "Free-energy RMSE (kT) of {what} over the bins populated in both, each surface shifted "
    "to zero mean there.",
)


def _captions() -> dict[str, str]:
    captions = {}
    for name, metrics in _METRICS.items():
        for metric, text in zip(metrics, _SCORE, strict=True):
            for suffix, caption in comparison_captions(text.format(what=_WHAT[name])).items():
                captions[metric + suffix] = caption
    return captions


@METRICS.register("free_energy")
class FreeEnergy(Metric):
    """Per fold and pooled: JS, KL both ways (nats) and the free-energy RMSE (kT) on the
    2-D projection and on TICA, each with its interval, noise floor and echo baseline.

    Parameters
    ----------
    pseudo_mass
        Total probability mass of the uniform pseudo-distribution mixed into every
        histogram (spread evenly over the bins).
    floor_resamples
        Resamples for each interval and noise floor.
    """

    needs = frozenset({"reference", "simulation", "health"})
    samplings = frozenset({"dynamics", "iid"})
    captions = _captions()

    def __init__(self, *, pseudo_mass: float, floor_resamples: int) -> None:
        self.pseudo_mass = pseudo_mass
        self.floor_resamples = floor_resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        rows: list[MetricRow] = []
        echoed = context.sampling == "dynamics"  # i.i.d. draws have no start to echo
        pooled: dict[str, list[tuple[tuple[str, ...], list[Scored]]]] = {}
        for fold in context.folds:
            sample = context.sample(fold)
            resampling = sample.resampling()
            for projection in context.projections(fold):
                saved = context.simulation_projected(fold, projection)
                scored = self._compare(context, projection, fold, sample.values(saved), resampling)
                rows += scored_rows(context.label(fold), projection.metrics, scored, echo=echoed)
                pooled.setdefault(projection.name, []).append((projection.metrics, scored))
        for results in pooled.values():
            if len(results) > 1:
                metrics = results[0][0]
                together = [pool([r[1][k] for r in results]) for k in range(len(metrics))]
                rows += scored_rows(keys.ALL_FOLDS, metrics, together, echo=echoed)
        return rows

    def _compare(
        self,
        context: EvaluationContext,
        projection: Projection,
        fold: int,
        values: np.ndarray,
        resampling: Resampling,
    ) -> list[Scored]:
        everything = context.reference_projected(projection)
        heldout = context.heldout_frames(fold)
        reference = Reference(
            heldout=everything[heldout],
            heldout_labels=context.reference.trajectory_index[heldout],
            training=everything[context.training_frames(fold)],
            everything=everything,
        )
        edges = [np.linspace(low, high, context.bins + 1) for low, high in projection.ranges]
        binned = Binned(edges, joint=True, pseudo_mass=self.pseudo_mass)
        return compare(
            binned,
            reference,
            values,
            resampling,
            context.sample(fold).echo(everything),
            context.rng(f"{projection.name}/{context.label(fold)}"),
            self.floor_resamples,
            observable=projection.smooth(reference.heldout),
        )
