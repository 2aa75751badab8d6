"""Divergences and free-energy RMSE between the CG and reference ensembles on 2-D
projections (phi/psi, or radius of gyration and end-to-end distance; and the first two
TICA components), each with its interval, its noise floor and its echo baseline.

Per fold, the fold's CG production frames are scored against the pooled reference (all
trajectories), on the 2-D projection and on the TICA fitted on the reference trajectories
that the fold trained on; pooled (fold ``all``), every fold's production frames together,
on the TICA of every reference trajectory. See :mod:`cgpipe.evaluate.comparison` for the
score's interval (bootstrap over CG replicas), the floor (the reference against itself at
the sample's frame count) and the echo (the start frames, never moving).
"""

from __future__ import annotations

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.comparison import Binned, compare, scored_rows
from cgpipe.evaluate.statistics import choose_resampling
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
    "Jensen-Shannon divergence (nats) of {what}, CG vs all-atom reference; 95 % interval: "
    "bootstrap over CG replicas.",
    "KL divergence D(reference ‖ CG) (nats) of {what}.",
    "KL divergence D(CG ‖ reference) (nats) of {what}.",
    "Free-energy RMSE (kT) of {what} over the bins populated in both, each surface shifted "
    "to zero mean there.",
)
_FLOOR = " Noise floor: the same score of the reference against itself at the CG frame count."
_ECHO = " Echo baseline: the start frames, never moving, scored the same way."


def _captions() -> dict[str, str]:
    captions = {}
    for name, metrics in _METRICS.items():
        for metric, text in zip(metrics, _SCORE, strict=True):
            caption = text.format(what=_WHAT[name])
            captions[metric] = caption
            captions[metric + keys.FLOOR_SUFFIX] = caption + _FLOOR
            captions[metric + keys.ECHO_SUFFIX] = caption + _ECHO
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
    captions = _captions()

    def __init__(self, *, pseudo_mass: float, floor_resamples: int) -> None:
        self.pseudo_mass = pseudo_mass
        self.floor_resamples = floor_resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        # The 2-D projection's floor depends only on the frame count: computed once per
        # count (TICA's differ by fold, each fold's TICA its own).
        self._floors: dict[int, list] = {}
        rows: list[MetricRow] = []
        pooled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for fold in context.folds:
            simulation = context.simulation(fold)
            if not simulation.n_frames:
                continue  # every replica failed before its first production frame
            starts = context.start_frames(fold)
            replicas = simulation.trajectory_index
            for projection in context.projections(fold):
                rows += self._compare(
                    context,
                    projection,
                    context.simulation_projected(fold, projection),
                    replicas,
                    context.reference_projected(projection)[starts],
                    context.label(fold),
                )
            pooled[fold] = (replicas, starts)
        if len(pooled) > 1:
            folds = sorted(pooled)
            replicas = np.concatenate([pooled[k][0] + k * 1_000_000 for k in folds])
            starts = np.concatenate([pooled[k][1] for k in folds])
            for projection in context.projections(None):
                values = np.concatenate(
                    [context.simulation_projected(k, projection) for k in folds]
                )
                rows += self._compare(
                    context,
                    projection,
                    values,
                    replicas,
                    context.reference_projected(projection)[starts],
                    keys.ALL_FOLDS,
                )
        return rows

    def _compare(
        self,
        context: EvaluationContext,
        projection: Projection,
        values: np.ndarray,
        replicas: np.ndarray,
        echo: np.ndarray,
        fold: str,
    ) -> list[MetricRow]:
        reference = context.reference_projected(projection)
        labels = context.reference.trajectory_index
        edges = [np.linspace(low, high, context.bins + 1) for low, high in projection.ranges]
        binned = Binned(edges, joint=True, pseudo_mass=self.pseudo_mass)
        resampling = choose_resampling(labels, observable=projection.smooth(reference))
        shared = projection is context.projection
        scored = compare(
            binned,
            reference,
            labels,
            resampling,
            values,
            replicas,
            echo,
            context.rng(f"{projection.name}/{fold}"),
            self.floor_resamples,
            self._floors.get(len(values)) if shared else None,
        )
        if shared:
            self._floors[len(values)] = [result.floor for result in scored]
        return scored_rows(fold, projection.metrics, scored)
