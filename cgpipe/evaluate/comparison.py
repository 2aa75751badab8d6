"""A CG sample scored out of sample, with the numbers a referee asks for beside it.

A fold's model (and its prior, and its start set) was fitted to the fold's training
trajectories; its verdict is therefore taken on the trajectories the fold held out, which
nothing of it saw. Per fold:

1. The **score** (JS, KL both ways, free-energy RMSE) of the CG sample against the
   fold's held-out reference trajectories, with a 95 % percentile interval from a
   bootstrap over the CG replicas by design (within start groups, by start frame where
   starts repeat: :func:`~cgpipe.evaluate.statistics.design_resampling`); the held-out
   reference is held fixed, as it is the same for every model of the fold (so models
   compared fold by fold share its noise).
2. Its **noise floor**: the same score of the held-out reference against itself at the
   sample's frame count (:func:`~cgpipe.evaluate.statistics.noise_floor_draws`), mean and
   95 % interval, and its **resolution** 2 sqrt(tau_int / n) of the held-out
   trajectories: above :data:`~cgpipe.evaluate.statistics.MAX_FLOOR_RESOLUTION` the
   reference is too short for the floor's interval to be trusted, and the report says so.
3. The **echo baseline**: a model that never moves, every replica sitting on its start
   frame for the whole production.
4. The **replay baseline**: the fold's own training frames, as many as the CG sample has,
   evenly spaced — what a model that memorised its training data would score.
5. The **in-sample** score (secondary): the CG sample against every reference
   trajectory, including those the fold trained on.

Failed replicas count: a replica that failed before the end of the run leaves its
remaining production frames as *escaped* frames (rows of NaN), which every histogram
counts in one extra bin where the reference has none, so a model that blows up outside
the reference's basins cannot score well by losing its bad replicas.

Pooled rows (fold ``all``) score each reference trajectory with the model that never saw
it: the mean over folds of the fold's held-out score, with its interval, floor and
resolution from the folds' resamples averaged resample by resample.

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
    floor_resolution,
    free_energy_rmse,
    histogram_counts,
    interval,
    js,
    kl,
    noise_floor_draws,
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

    Rows that are not finite (NaN) are *escaped* frames: the frames a failed replica did
    not live to save. Every histogram has one bin more than its edges give, the last,
    counting them (the reference has none there).

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
        """Raw counts of each distribution (one if joint, one per column otherwise),
        flattened, the escaped frames' count last."""
        values = np.asarray(values, dtype=float)
        escaped = ~np.isfinite(values).all(axis=1) if len(values) else np.zeros(0, bool)
        kept = values[~escaped]
        n_escaped = float(escaped.sum())

        def histogram(columns: np.ndarray, edges: Sequence[np.ndarray]) -> np.ndarray:
            if len(columns):
                counts = histogram_counts(columns, edges).ravel()
            else:
                counts = np.zeros(int(np.prod([len(e) - 1 for e in edges])))
            return np.append(counts, n_escaped)

        if self.joint:
            return [histogram(kept, self.edges)]
        return [histogram(kept[:, [k]], [e]) for k, e in enumerate(self.edges)]

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
class Reference:
    """The reference frames one fold is scored against, on one observable.

    Attributes
    ----------
    heldout, heldout_labels
        [m, d] values of the fold's held-out trajectories and [m] the trajectory of each.
    training
        [t, d] values of the fold's training trajectories (for the replay baseline), in
        trajectory and time order.
    everything
        [M, d] values of every reference trajectory (for the in-sample score).
    """

    heldout: np.ndarray
    heldout_labels: np.ndarray
    training: np.ndarray
    everything: np.ndarray


@dataclasses.dataclass(frozen=True)
class Scored:
    """One score of a CG sample (units of the score), with what it is judged against.

    ``draws`` and ``floor_draws`` are the bootstrap distributions behind the interval and
    the floor, so that folds can be pooled resample by resample.
    """

    score: Estimate
    floor: Estimate
    echo: float
    replay: float
    insample: float
    resolution: float
    draws: np.ndarray
    floor_draws: np.ndarray


def replay_frames(n_training: int, n_frames: int) -> np.ndarray:
    """``n_frames`` indices spread evenly over ``n_training`` training frames (repeating
    frames where the sample is larger): the replay baseline's frames."""
    return np.linspace(0, n_training - 1, n_frames).round().astype(np.int64)


def compare(
    binned: Binned,
    reference: Reference,
    sample: np.ndarray,
    sample_resampling: Resampling,
    echo: np.ndarray | None,
    rng: np.random.Generator,
    n_resamples: int,
    *,
    observable: np.ndarray | None = None,
    floor_draws: np.ndarray | None = None,
) -> list[Scored]:
    """Score ``sample`` against one fold's held-out reference, per :data:`SCORES`.

    Parameters
    ----------
    binned
        The binning.
    reference
        The fold's reference values (held out, training, all).
    sample
        [n, d] the CG sample's values, replica by replica, with a NaN row for every
        escaped frame (:class:`Binned`).
    sample_resampling
        How the sample's frames are resampled for its interval (by replica, by design).
    echo
        [n_echo, d] the echo baseline's values (every replica on its start frame for the
        whole production), or None.
    rng, n_resamples
        Random generator and bootstrap repeats (for the interval and the floor).
    observable
        [m, k] smooth held-out values whose autocorrelation sets the floor's block length
        and its resolution (default ``reference.heldout``).
    floor_draws
        The floor's draws at this frame count if already computed (they depend only on
        the held-out reference, the binning and n); computed otherwise.
    """
    heldout_counts = binned.counts(reference.heldout)
    value = binned.scores(binned.counts(sample), heldout_counts)
    draws = np.array(
        [
            binned.scores(binned.counts(sample[frames]), heldout_counts)
            for frames in sample_resampling.resamples(rng, n_resamples)
        ]
    )
    observable = reference.heldout if observable is None else observable
    if floor_draws is None:
        floor_draws = noise_floor_draws(
            reference.heldout,
            reference.heldout_labels,
            len(sample),
            binned.score_values,
            rng,
            n_resamples,
            resampling=choose_resampling(reference.heldout_labels, observable=observable),
            variance_exponent=VARIANCE_EXPONENTS,
        )
    resolution = floor_resolution(reference.heldout_labels, observable)
    nan = np.full(len(SCORES), math.nan)
    echo_scores = binned.scores(binned.counts(echo), heldout_counts) if echo is not None else nan
    replay = reference.training[replay_frames(len(reference.training), len(sample))]
    replay_scores = binned.scores(binned.counts(replay), heldout_counts)
    insample = binned.scores(binned.counts(sample), binned.counts(reference.everything))
    return [
        Scored(
            _summary(float(value[k]), draws[:, k]),
            _summary(float(np.nanmean(floor_draws[:, k])), floor_draws[:, k]),
            float(echo_scores[k]),
            float(replay_scores[k]),
            float(insample[k]),
            resolution,
            draws[:, k],
            floor_draws[:, k],
        )
        for k in range(len(SCORES))
    ]


def pool(scored: Sequence[Scored]) -> Scored:
    """The folds' scores pooled: means over folds, the interval and floor from the
    folds' resamples averaged resample by resample (each reference trajectory scored by
    the model that never saw it)."""
    if not scored:
        raise ValueError("nothing to pool")

    def mean(name: str) -> float:
        return float(np.mean([getattr(s, name) for s in scored]))

    draws = np.mean([s.draws for s in scored], axis=0)
    floor_draws = np.mean([s.floor_draws for s in scored], axis=0)
    return Scored(
        _summary(float(np.mean([s.score.value for s in scored])), draws),
        _summary(float(np.nanmean(floor_draws)), floor_draws),
        mean("echo"),
        mean("replay"),
        mean("insample"),
        float(np.max([s.resolution for s in scored])),
        draws,
        floor_draws,
    )


def _summary(value: float, draws: np.ndarray) -> Estimate:
    finite = draws[np.isfinite(draws)]
    low, high = interval(finite) if len(finite) else (math.nan, math.nan)
    return Estimate(value, low, high)


def scored_rows(
    fold: str, metrics: tuple[str, ...], scored: list[Scored], *, echo: bool = True
) -> list[MetricRow]:
    """Each score's row (with its interval), its floor's, its resolution's, and its
    echo (unless ``echo`` is false: i.i.d. draws have no start to echo), replay and
    in-sample rows."""
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
            MetricRow(fold, metric + keys.FLOOR_RESOLUTION_SUFFIX, result.resolution),
            *([MetricRow(fold, metric + keys.ECHO_SUFFIX, result.echo)] if echo else []),
            MetricRow(fold, metric + keys.REPLAY_SUFFIX, result.replay),
            MetricRow(fold, metric + keys.INSAMPLE_SUFFIX, result.insample),
        ]
    return rows


def captions(score: str) -> dict[str, str]:
    """The captions of a score's rows, from the score's own caption (which says what is
    compared, in which unit)."""
    from cgpipe.evaluate.statistics import MAX_FLOOR_RESOLUTION

    return {
        "": score + " Against the fold's held-out trajectories; 95 % interval: bootstrap "
        "over CG replicas within start groups; failed replicas' lost frames count as "
        "escaped mass.",
        keys.FLOOR_SUFFIX: score + " Noise floor: the held-out reference against itself at "
        "the CG frame count (mean, 95 % interval).",
        keys.FLOOR_RESOLUTION_SUFFIX: "Resolution of the noise floor, 2 sqrt(tau_int / n) of "
        "the held-out trajectories (n frames each): above "
        f"{MAX_FLOOR_RESOLUTION:g} the reference is too short for the floor to be trusted.",
        keys.ECHO_SUFFIX: score + " Echo baseline: the start frames, never moving.",
        keys.REPLAY_SUFFIX: score + " Replay baseline: the fold's own training frames, as "
        "many as the CG sample, evenly spaced (what memorising would score).",
        keys.INSAMPLE_SUFFIX: score + " In sample (secondary, no verdict): the CG sample "
        "against every reference trajectory, those the fold trained on included.",
    }
