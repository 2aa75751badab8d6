"""A CG sample scored against the reference with the three numbers a referee asks for.

1. The **score** (JS, KL both ways, free-energy RMSE) of the CG sample against the
   pooled reference, with a 95 % percentile interval from a bootstrap over the CG
   replicas (whole replicas drawn with replacement; the reference is held fixed). A
   divergence is biased upward by sampling noise, and resampling adds more, so its
   interval can sit above the value; the floor carries the same bias, which is why a
   score is judged against its floor and a model against another model's interval,
   not against zero.
2. Its **noise floor**: the same score of the reference against itself at the sample's
   frame count (:func:`~cgpipe.evaluate.statistics.noise_floor`), mean and 95 % interval.
3. The **echo baseline**: the same score of a model that never moves, every replica
   sitting on its start frame for as many frames as it saved.

Observables are binned either jointly (a 2-D histogram: one distribution) or as a family
of 1-D histograms (one per member, e.g. every bond; the family's score is the mean over
its members). Every histogram is regularised with the same fixed pseudo-mass
(:func:`~cgpipe.evaluate.statistics.regularise`), so that the regularisation weighs the
same at every frame count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import MetricRow
from cgpipe.evaluate.statistics import (
    Estimate,
    Resampling,
    choose_resampling,
    free_energy_rmse,
    histogram_counts,
    interval,
    js,
    kl,
    noise_floor,
    regularise,
)

# The scores, in the order of the arrays below.
SCORES = ("js", "kl", "kl_reverse", "fe_rmse")
# How each grows with the sampling variance (the floor's correction for the variance its
# blocks lose, statistics.noise_floor_draws): divergences as 1 / n_eff, the RMSE as its root.
VARIANCE_EXPONENTS = (1.0, 1.0, 1.0, 0.5)


@dataclasses.dataclass(frozen=True)
class Binned:
    """How values [n, d] are histogrammed for a comparison.

    Attributes
    ----------
    edges
        Joint: one edge array per dimension (d = 1 or 2). Family: one per member (column).
    joint
        One d-dimensional histogram (True), or one 1-D histogram per column (False).
    pseudo_mass
        Total mass of the uniform pseudo-distribution mixed into every histogram.
    """

    edges: Sequence[np.ndarray]
    joint: bool
    pseudo_mass: float

    def counts(self, values: np.ndarray) -> list[np.ndarray]:
        """Raw counts of each distribution (one if joint, one per column otherwise)."""
        values = np.asarray(values, dtype=float)
        if self.joint:
            return [histogram_counts(values, self.edges)]
        return [histogram_counts(values[:, k], [e]) for k, e in enumerate(self.edges)]

    def scores(self, sample: list[np.ndarray], reference: list[np.ndarray]) -> np.ndarray:
        """[4] :data:`SCORES` of sample counts against reference counts: JS, KL(reference ‖
        sample), KL(sample ‖ reference) in nats and the free-energy RMSE in kT over the
        bins populated in both; a family's are the means over its members."""
        rows = []
        for s, r in zip(sample, reference, strict=True):
            p, q = regularise(s, self.pseudo_mass), regularise(r, self.pseudo_mass)
            rows.append([js(q, p), kl(q, p), kl(p, q), free_energy_rmse(q, p, r, s)])
        table = np.array(rows)
        finite = np.isfinite(table)
        counts = finite.sum(axis=0)
        sums = np.where(finite, table, 0.0).sum(axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), math.nan)

    def score_values(self, sample: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """:meth:`scores` of two sets of values."""
        return self.scores(self.counts(sample), self.counts(reference))


@dataclasses.dataclass(frozen=True)
class Scored:
    """One score of a CG sample: value and interval, floor and echo (units of the score)."""

    score: Estimate
    floor: Estimate
    echo: float


def compare(
    binned: Binned,
    reference: np.ndarray,
    reference_labels: np.ndarray,
    reference_resampling: Resampling,
    sample: np.ndarray,
    sample_labels: np.ndarray,
    echo: np.ndarray | None,
    rng: np.random.Generator,
    n_resamples: int,
    floor: list[Estimate] | None = None,
) -> list[Scored]:
    """Score ``sample`` against ``reference``, per :data:`SCORES`.

    Parameters
    ----------
    binned
        The binning.
    reference
        [m, d] the reference's values.
    reference_labels
        [m] the trajectory of each reference frame.
    reference_resampling
        How the reference is resampled for the floor (by trajectory, or in blocks).
    sample
        [n, d] the CG sample's values, replica by replica.
    sample_labels
        [n] the replica of each sample frame (frames of a replica in time order).
    echo
        [n, d] the echo baseline's values (each frame's replica's start frame), or None.
    rng, n_resamples
        Random generator and bootstrap repeats (for the interval and the floor).
    floor
        The floor at this frame count if already computed (it depends only on the
        reference, the binning and n); computed otherwise.
    """
    reference_counts = binned.counts(reference)
    value = binned.scores(binned.counts(sample), reference_counts)
    plan = choose_resampling(sample_labels)
    resampled = np.array(
        [
            binned.scores(binned.counts(sample[frames]), reference_counts)
            for frames in plan.resamples(rng, n_resamples)
        ]
    )
    if floor is None:
        floor = noise_floor(
            reference,
            reference_labels,
            len(sample),
            binned.score_values,
            rng,
            n_resamples,
            resampling=reference_resampling,
            variance_exponent=VARIANCE_EXPONENTS,
        )
    echo_scores = (
        binned.scores(binned.counts(echo), reference_counts)
        if echo is not None
        else np.full(len(SCORES), math.nan)
    )
    out = []
    for k in range(len(SCORES)):
        column = resampled[:, k]
        column = column[np.isfinite(column)]
        low, high = interval(column) if len(column) else (math.nan, math.nan)
        out.append(Scored(Estimate(float(value[k]), low, high), floor[k], float(echo_scores[k])))
    return out


def scored_rows(fold: str, metrics: tuple[str, ...], scored: list[Scored]) -> list[MetricRow]:
    """Each score's row (with its interval), its floor's and its echo's."""
    rows = []
    for metric, result in zip(metrics, scored, strict=True):
        rows += [
            MetricRow(fold, metric, result.score.value, result.score.low, result.score.high),
            MetricRow(
                fold,
                metric + keys.FLOOR_SUFFIX,
                result.floor.value,
                result.floor.low,
                result.floor.high,
            ),
            MetricRow(fold, metric + keys.ECHO_SUFFIX, result.echo),
        ]
    return rows
