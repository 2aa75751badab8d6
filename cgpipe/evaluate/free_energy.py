"""Divergences between the CG and reference ensembles on the 2-D projection, each
beside its noise floor with a 95 % interval.

A divergence of a finite sample from the reference is never zero: the sample's own
noise puts a floor under it. The floor is the same score of the reference against
itself (resampled by trajectory, or in blocks within trajectories where there are few,
:func:`cgpipe.evaluate.statistics.noise_floor`) at the frame count of the CG sample
scored, so that a model is judged against the floor of its own sample size.

Histograms are regularised with a pseudo-distribution of fixed total mass spread over
all bins (:func:`~cgpipe.evaluate.statistics.regularise`), so that KL stays finite and
the regularisation weighs the same at every frame count.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import (
    choose_resampling,
    js,
    kl,
    noise_floor,
    regularised_histogram,
)

_FLOOR = " Noise floor: the same score of the reference against itself at the fold's frame count."


def _captions() -> dict[str, str]:
    what = {
        keys.JS_PHI_PSI: "Jensen-Shannon divergence (nats) of φ/ψ, CG vs all-atom reference.",
        keys.KL_PHI_PSI: "KL divergence D(reference ‖ CG) (nats) of φ/ψ.",
        keys.KL_REVERSE_PHI_PSI: "KL divergence D(CG ‖ reference) (nats) of φ/ψ.",
        keys.JS_RG_END_TO_END: (
            "Jensen-Shannon divergence (nats) of (radius of gyration, end-to-end distance)."
        ),
        keys.KL_RG_END_TO_END: "KL divergence D(reference ‖ CG) (nats) of (Rg, end-to-end).",
        keys.KL_REVERSE_RG_END_TO_END: (
            "KL divergence D(CG ‖ reference) (nats) of (Rg, end-to-end)."
        ),
    }
    floors = {name + keys.FLOOR_SUFFIX: caption + _FLOOR for name, caption in what.items()}
    return {**what, **floors}


@METRICS.register("free_energy")
class FreeEnergy(Metric):
    """Per fold: JS, KL(reference ‖ CG) and KL(CG ‖ reference) (nats) between the 2-D
    histograms of the projection (phi/psi, or radius of gyration and end-to-end
    distance) of the reference (all trajectories) and of the fold's CG simulation; and
    each score's noise floor at the CG sample's frame count, mean and 95 % interval.

    Parameters
    ----------
    pseudo_mass
        Total probability mass of the uniform pseudo-distribution mixed into every
        histogram (spread evenly over the bins).
    floor_resamples
        Resamples of the reference for each noise floor.
    """

    needs = frozenset({"reference", "simulation"})
    captions = _captions()

    def __init__(self, *, pseudo_mass: float, floor_resamples: int) -> None:
        self.pseudo_mass = pseudo_mass
        self.floor_resamples = floor_resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        edges = context.edges
        reference = context.reference_values
        labels = context.reference.trajectory_index
        p_reference = regularised_histogram(reference, edges, self.pseudo_mass)
        scores: dict[str, Callable[[np.ndarray, np.ndarray], float]] = dict(
            zip(context.projection.metrics, self._scores(edges), strict=True)
        )
        resampling = choose_resampling(labels, observable=context.projection.smooth(reference))
        rows: list[MetricRow] = []
        floors: dict[tuple[str, int], MetricRow] = {}  # one floor per frame count
        for fold in context.folds:
            values = context.simulation_values(fold)
            if not len(values):
                continue  # every replica failed before its first saved frame
            p_model = regularised_histogram(values, edges, self.pseudo_mass)
            name = context.label(fold)
            for metric, score in scores.items():
                rows.append(MetricRow(name, metric, score(values, reference, p_model, p_reference)))
                key = (metric, len(values))
                if key not in floors:
                    floor = noise_floor(
                        reference,
                        labels,
                        len(values),
                        lambda a, b, score=score: score(a, b),
                        context.rng(metric),
                        self.floor_resamples,
                        resampling=resampling,
                    )
                    floors[key] = MetricRow(
                        name, metric + keys.FLOOR_SUFFIX, floor.value, floor.low, floor.high
                    )
                rows.append(floors[key]._replace(fold=name))
        return rows

    def _scores(self, edges: list[np.ndarray]) -> list[Callable[..., float]]:
        """JS, KL(reference ‖ sample), KL(sample ‖ reference) of a sample against a
        reference, from their values (histograms are made when not given)."""

        def pair(sample, reference, p_sample=None, p_reference=None):
            if p_sample is None:
                p_sample = regularised_histogram(sample, edges, self.pseudo_mass)
            if p_reference is None:
                p_reference = regularised_histogram(reference, edges, self.pseudo_mass)
            return p_sample, p_reference

        def jensen_shannon(*args):
            p, q = pair(*args)
            return js(q, p)

        def forward(*args):
            p, q = pair(*args)
            return kl(q, p)

        def reverse(*args):
            p, q = pair(*args)
            return kl(p, q)

        return [jensen_shannon, forward, reverse]
