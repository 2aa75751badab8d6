"""Error bars for evaluation metrics: regularised histograms, divergences, resampling by
trajectory, noise floors at matched frame counts, basin populations and paired
differences with confidence intervals, and autocorrelation times.

Pure NumPy (no I/O); every function takes a :class:`numpy.random.Generator` where it
draws, so that a report is reproducible from its seed.

Conventions
-----------
- Divergences are in nats (natural log), so that 0 <= JS <= ln 2.
- A histogram is regularised by mixing it with the uniform distribution over its bins
  at a fixed total mass (:func:`regularise`), so that the regularisation weighs the same
  whatever the number of frames (a fixed pseudo-count per bin weighs more, the fewer the
  frames).
- Intervals are percentile intervals of the bootstrap distribution (Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13), 95 % unless stated.
- Frames are resampled by trajectory, never frame by frame, because frames of a
  trajectory are correlated: whole trajectories drawn with replacement (the cluster
  bootstrap) when there are at least :data:`MIN_TRAJECTORIES` of them, otherwise circular
  blocks within each trajectory (Politis & Romano, 1992, "A circular block-resampling
  procedure for stationary data"; Künsch, 1989, Ann. Stat. 17, 1217), with a block
  length of :data:`BLOCK_FACTOR` integrated autocorrelation times (see
  :func:`choose_resampling`).
- A noise floor from blocks within few trajectories is corrected for the variance that
  the blocks lose (:func:`noise_floor_draws`). A circular block bootstrap with blocks of
  L frames in a trajectory of n frames sees the variance of a mean only up to a
  relative loss of about tau_int / L (correlations beyond a block) plus L / n (each
  trajectory is resampled about its own mean, so the spread between trajectory means is
  invisible): never less than about 2 sqrt(tau_int / n) whatever L
  (:func:`floor_resolution`). No block scheme escapes both terms (stationary or tapered
  blocks share them); longer trajectories would. So the loss is measured instead, on
  the slowest observable: f, the exact variance of its pooled mean under the blocks,
  over Sokal's 2 tau_int var(x) / N from the same frames pooled about the global mean
  (which does see the spread between trajectories) (:attr:`Resampling.variance_ratio`).
  A divergence of histograms grows linearly with the sampling variance (~ 1 / n_eff; a
  free-energy RMSE as its square root), so a floor is extrapolated linearly in that
  variance from two bootstraps of the same score: the blocks (a fraction f of it) and
  frames drawn one by one (r = 1 / (2 tau_int) of it): draw + (draw - mean of single
  frames) (1 - f) / (f - r). Only the part of the score that the correlation adds is
  stretched; dividing whole draws by f would also stretch the part due to fast,
  uncorrelated noise, and lift the floor's lower bound above most replicates.
  Coverage on a two-state Markov chain seen through noise (tau_int = 10 frames, 4
  trajectories of 66 tau_int, JS of 24-bin histograms at pseudo-mass 0.02, 200 seeds,
  200 resamples; an independent replicate of the reference, subsampled evenly to the
  floor's frame count, scored against the reference), fraction of seeds with the
  replicate under the upper bound / inside the interval, Wilson 95 % intervals:

  - all 2640 frames: plain blocks (before) 0.935 [0.89, 0.96] / 0.935 [0.89, 0.96];
    extrapolated (now) 0.975 [0.94, 0.99] / 0.975 [0.94, 0.99];
  - a quarter (660 frames): before 0.94 [0.90, 0.965] / 0.905 [0.86, 0.94]; now
    0.99 [0.96, 0.997] / 0.98 [0.95, 0.99].

  Median width 0.0069 -> 0.0093 and 0.0089 -> 0.0117 (nats); mean floor / mean replicate
  0.84 -> 0.94 and 0.91 -> 0.96. Where the reference is too short even for that
  (:data:`MAX_FLOOR_RESOLUTION`), the floor is flagged with a :class:`RuntimeWarning`.
- Integrated autocorrelation time: Sokal's convention tau_int = dt (1/2 + sum_{t>=1}
  rho(t)), so that var(mean) = 2 tau_int / (n dt) var(x) for n frames, with Sokal's
  automatic window (A. D. Sokal, "Monte Carlo methods in statistical mechanics", 1997,
  section 3); for an AR(1) process x_t = phi x_{t-1} + noise, tau_int = dt (1 + phi) /
  (2 (1 - phi)).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from cgpipe.errors import InputError

LEVEL = 0.95  # default confidence level of an interval

# Fewest trajectories for the bootstrap over trajectories. With k trajectories it
# underestimates the variance of a mean by the factor (k - 1) / k (0.8 at k = 5, an
# interval ~11 % too narrow) and has at most C(2k - 1, k) distinct resamples (3 at k = 2,
# 35 at k = 4, 126 at k = 5), too few below 5 for the tails of a 95 % interval. Below it,
# a block bootstrap within each trajectory uses the many autocorrelation times inside each
# trajectory instead (at the price of assuming that every trajectory samples the same
# ensemble: it cannot see differences between trajectories).
MIN_TRAJECTORIES = 5

# Block length in integrated autocorrelation times. A block bootstrap with blocks of L
# frames underestimates the variance of a mean by about tau_int / L (Künsch 1989: it sees
# correlations up to lag L only, with Bartlett weights 1 - t/L), so ~10 % at 10 tau_int.
BLOCK_FACTOR = 10.0

# Fewest blocks per trajectory: the block length is capped at n_frames / MIN_BLOCKS, and
# is n_frames / MIN_BLOCKS where no observable gives an autocorrelation time.
MIN_BLOCKS = 10

# Largest floor_resolution 2 sqrt(tau_int / n) (n: frames per reference trajectory) at
# which a floor from blocks within trajectories is trusted. On a two-state chain seen
# through noise (4 trajectories, 200 seeds, 200 resamples; the module docstring), the
# corrected floor held an independent replicate under its upper bound in 0.965-0.99 of
# seeds with trajectories of 25, 36, 66 and 150 tau_int (median floor_resolution of the
# observed values 0.34, 0.28, 0.21, 0.15), but in 0.93 at 20 tau_int (0.37) and
# 0.92-0.945 at 16 (0.41): there the autocorrelation time, and with it the correction,
# is itself too uncertain. The resolution is an estimate (its 10-90 % range is about
# +-15 % at 25 tau_int), so the bound is a mark, not a sharp edge.
MAX_FLOOR_RESOLUTION = 0.35

# Smallest variance ratio a floor is rescaled by (a 10-fold inflation at most): below it
# the blocks see almost none of the variance, and the floor is past saving (its
# resolution is far above MAX_FLOOR_RESOLUTION).
MIN_VARIANCE_RATIO = 0.1

# Fewest resamples of single frames behind a rescaled floor's baseline (its mean is all
# that is used; see noise_floor_draws).
MIN_BASELINE_RESAMPLES = 20

# Sokal's window constant: the sum over lags stops at the first M with M >= c tau_int(M);
# c ~ 4-6 for nearly exponential correlations (Sokal 1997), 5 as in emcee.
SOKAL_C = 5.0


# --- histograms and divergences -------------------------------------------------------------
def histogram_counts(samples: np.ndarray, edges: Sequence[np.ndarray]) -> np.ndarray:
    """Raw counts of samples on a 1-D or 2-D grid.

    Parameters
    ----------
    samples
        [n] or [n, d] values (d = 1 or 2), in the units of ``edges``. Samples outside the
        edges count in the edge bins (clipped onto the grid).
    edges
        One increasing array of bin edges per dimension ([n_bins_k + 1] each).

    Returns
    -------
    np.ndarray
        [n_bins_1] or [n_bins_1, n_bins_2] counts (float).
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] != len(edges) or len(edges) not in (1, 2):
        raise InputError(
            f"samples of shape {samples.shape} do not match {len(edges)} edge arrays "
            "(expected [n, d] with d = 1 or 2)"
        )
    bad = ~np.isfinite(samples).all(axis=1)
    if bad.any():
        raise InputError(f"frame {int(np.flatnonzero(bad)[0])} of the samples is not finite")
    shape = []
    flat = np.zeros(len(samples), dtype=np.int64)
    for k, edge in enumerate(edges):
        edge = np.asarray(edge, dtype=float)
        if edge.ndim != 1 or len(edge) < 2 or not (np.diff(edge) > 0).all():
            raise InputError(f"bin edges of dimension {k} must be increasing, >= 2 of them")
        n_bins = len(edge) - 1
        index = np.searchsorted(edge, samples[:, k], side="right") - 1
        # Clipped onto the grid: outside values count in the edge bins, and the upper
        # edge itself in the last bin (as np.histogram does).
        flat = flat * n_bins + np.clip(index, 0, n_bins - 1)
        shape.append(n_bins)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    return counts.reshape(shape).astype(float)


def regularise(counts: np.ndarray, pseudo_mass: float) -> np.ndarray:
    """Normalised histogram mixed with the uniform distribution at a fixed total mass.

    p = (counts / N + pseudo_mass / B) / (1 + pseudo_mass), for N frames and B bins: the
    uniform part weighs ``pseudo_mass`` relative to the data whatever N, so that a
    divergence's regularisation does not change with the frame count.

    Parameters
    ----------
    counts
        Raw counts, any shape (B bins in all), at least one frame.
    pseudo_mass
        Total mass of the uniform part, relative to the data's (dimensionless, >= 0);
        every bin gets at least pseudo_mass / B / (1 + pseudo_mass).
    """
    counts = np.asarray(counts, dtype=float)
    if pseudo_mass < 0:
        raise InputError(f"pseudo_mass must be >= 0, got {pseudo_mass}")
    total = counts.sum()
    if total <= 0:
        raise InputError("cannot normalise a histogram of no frames")
    return (counts / total + pseudo_mass / counts.size) / (1.0 + pseudo_mass)


def regularised_histogram(
    samples: np.ndarray, edges: Sequence[np.ndarray], pseudo_mass: float
) -> np.ndarray:
    """Normalised, regularised histogram of ``samples`` [n, d] (d = 1 or 2) on ``edges``.

    :func:`histogram_counts` (outside samples clipped into the edge bins), then
    :func:`regularise` with ``pseudo_mass``; sums to 1, shape [n_bins_1(, n_bins_2)].
    """
    return regularise(histogram_counts(samples, edges), pseudo_mass)


def _distributions(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise InputError(f"histograms of different shapes {p.shape} and {q.shape}")
    for name, h in (("p", p), ("q", q)):
        if (h < 0).any() or not math.isclose(h.sum(), 1.0, abs_tol=1e-6):
            raise InputError(f"{name} is not a normalised histogram (sum {h.sum():.6g})")
    return p.ravel(), q.ravel()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback-Leibler divergence D(p || q) = sum p ln(p / q) in nats.

    Bins with p = 0 contribute 0; infinite where q = 0 and p > 0 (regularise q). Not
    symmetric: the caller chooses the direction.
    """
    p, q = _distributions(p, q)
    support = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[support] * np.log(p[support] / q[support])))


def js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in nats, (D(p || m) + D(q || m)) / 2 with m = (p + q) / 2;
    0 for p = q, ln 2 for disjoint supports (Lin 1991, IEEE Trans. Inf. Theory 37, 145)."""
    p, q = _distributions(p, q)
    m = 0.5 * (p + q)
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def free_energy_rmse(
    p: np.ndarray,
    q: np.ndarray,
    populated_p: np.ndarray,
    populated_q: np.ndarray,
    kT: float = 1.0,
) -> float:
    """RMS difference of the free energies F = -kT ln p and -kT ln q over shared bins.

    Over the bins populated in both (raw count > 0 in ``populated_p`` and in
    ``populated_q``), each free energy is shifted to zero mean over those bins (free
    energies are defined up to a constant), and the root mean square of their difference
    is taken, every bin weighing the same: the population standard deviation of
    kT ln(q / p) over the shared bins.

    Parameters
    ----------
    p, q
        Normalised histograms of one shape.
    populated_p, populated_q
        Raw counts (or booleans) of the frames behind ``p`` and ``q``, same shape.
    kT
        Thermal energy; the result is in its units (kT = 1: in kT; kT in kJ/mol: in kJ/mol).

    Returns
    -------
    float
        The RMSE, NaN when no bin is populated in both.
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    shapes = {p.shape, q.shape, np.shape(populated_p), np.shape(populated_q)}
    if len(shapes) != 1:
        raise InputError(f"histograms and count masks of different shapes {sorted(shapes)}")
    shared = (np.asarray(populated_p) > 0) & (np.asarray(populated_q) > 0)
    if not shared.any():
        return math.nan
    if (p[shared] <= 0).any() or (q[shared] <= 0).any():
        raise InputError("a bin with counts has zero probability: counts and histogram differ")
    difference = kT * (np.log(q[shared]) - np.log(p[shared]))  # F_p - F_q
    return float(np.sqrt(np.mean((difference - difference.mean()) ** 2)))


# --- intervals ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A number with its confidence interval [low, high] at ``level`` (units of the
    number)."""

    value: float
    low: float
    high: float
    level: float = LEVEL

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies in [low, high]."""
        return self.low <= x <= self.high

    @property
    def width(self) -> float:
        """high - low."""
        return self.high - self.low


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval: the (1 - level) / 2 and (1 + level) / 2 quantiles of
    ``values`` (a bootstrap distribution), in their units."""
    values = np.asarray(values, dtype=float).ravel()
    if not 0 < level < 1:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    if not len(values):
        raise InputError("no values to take an interval of")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _estimate(value: float, resampled: Sequence[float], level: float) -> Estimate:
    low, high = interval(np.asarray(resampled), level)
    return Estimate(float(value), low, high, level)


# --- autocorrelation ------------------------------------------------------------------------
def _series(x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Trajectories of a scalar observable: [n_frames] (one), [n_traj, n_frames] or a list
    of 1-D arrays (lengths may differ)."""
    if isinstance(x, np.ndarray) and x.ndim in (1, 2):
        series = [x] if x.ndim == 1 else list(x)
    elif isinstance(x, np.ndarray):
        raise InputError(f"observable of shape {x.shape}: expected [n_traj, n_frames]")
    else:
        series = [np.asarray(s) for s in x]
    series = [np.asarray(s, dtype=float) for s in series]
    if not series or any(s.ndim != 1 for s in series) or max(len(s) for s in series) < 2:
        raise InputError("an autocorrelation needs 1-D trajectories, one of >= 2 frames")
    if not all(np.isfinite(s).all() for s in series):
        raise InputError("the observable has non-finite values")
    return series


def autocorrelation_function(x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Normalised autocorrelation rho(t) of a scalar observable, t = 0 .. max length - 1
    frames, pooled over trajectories.

    Deviations are taken from the mean over all trajectories (not each trajectory's own),
    so that trajectories stuck in different states show as slow correlation; the
    autocovariance at lag t is the sum over every trajectory's pairs (i, i + t) divided by
    the total number of frames (the biased, positive-definite estimator of Sokal 1997).

    Parameters
    ----------
    x
        [n_traj, n_frames], or a list of 1-D trajectories of any lengths, or one
        trajectory [n_frames]; frames in time order, equally spaced.

    Returns
    -------
    np.ndarray
        [max n_frames] rho, rho(0) = 1.
    """
    series = _series(x)
    mean = np.concatenate(series).mean()
    longest = max(len(s) for s in series)
    autocovariance = np.zeros(longest)
    for s in series:
        n = len(s)
        size = 1 << (2 * n - 1).bit_length()  # zero-padded: no circular wrap-around
        spectrum = np.fft.rfft(s - mean, size)
        autocovariance[:n] += np.fft.irfft(spectrum * spectrum.conj(), size)[:n]
    if autocovariance[0] <= 1e-300 * sum(len(s) for s in series):
        raise InputError("the observable is constant: its autocorrelation is undefined")
    return autocovariance / autocovariance[0]


def autocorrelation_time(
    x: np.ndarray | Sequence[np.ndarray], dt: float = 1.0, *, c: float = SOKAL_C
) -> float:
    """Integrated autocorrelation time of a scalar observable, in the units of ``dt``.

    tau_int = dt (1/2 + sum_{t=1}^{M} rho(t)) with rho from
    :func:`autocorrelation_function` and Sokal's automatic window M: the smallest M with
    M >= c tau_int(M) / dt. With this convention n frames hold n dt / (2 tau_int)
    independent samples of the mean; white noise has tau_int = dt / 2; an AR(1) process
    x_t = phi x_{t-1} + noise has tau_int = dt (1 + phi) / (2 (1 - phi)).

    Reliable when the trajectories are long against tau_int (total length >~ 50
    tau_int); where no window fits in the longest trajectory (it is shorter than
    ~c tau_int), the largest partial sum is returned, a lower bound, with a
    :class:`RuntimeWarning`.

    Parameters
    ----------
    x
        [n_traj, n_frames], a list of 1-D trajectories, or one trajectory [n_frames].
    dt
        Time between frames (ps).
    c
        Sokal's window constant.
    """
    rho = autocorrelation_function(x)
    partial = 0.5 + np.cumsum(rho[1:])  # tau_int(M) / dt for M = 1 .. len - 1
    window = np.arange(1, len(rho)) >= c * partial
    if window.any():
        return float(dt * partial[np.argmax(window)])
    warnings.warn(
        f"trajectories too short for the autocorrelation time (no window M >= {c} tau): "
        "the estimate is a lower bound",
        RuntimeWarning,
        stacklevel=2,
    )
    return float(dt * partial.max())


def relaxation_time_exp(
    x: np.ndarray | Sequence[np.ndarray], dt: float = 1.0, *, threshold: float = math.exp(-2)
) -> float:
    """Exponential relaxation time of a scalar observable, in the units of ``dt``.

    The slope of ln rho(t) = a - t / tau_exp fitted by least squares over the lags
    t = 1 .. T - 1 before rho first falls below ``threshold`` (free intercept a, so that
    fast modes of small amplitude change a rather than tau_exp). For an AR(1) process,
    tau_exp = -dt / ln(phi). Where rho(2) is already below ``threshold``, -dt / ln rho(1).

    Parameters
    ----------
    x
        [n_traj, n_frames], a list of 1-D trajectories, or one trajectory [n_frames].
    dt
        Time between frames (ps).
    threshold
        Lowest correlation used in the fit (default e^-2: two relaxation times).
    """
    rho = autocorrelation_function(x)
    below = np.flatnonzero(rho < threshold)
    end = int(below[0]) if len(below) else len(rho)
    if end <= 2:
        rho_1 = rho[1] if len(rho) > 1 else 0.0
        return float(-dt / math.log(rho_1)) if 0 < rho_1 < 1 else 0.0
    lags = np.arange(1, end)
    slope = np.polyfit(lags, np.log(rho[1:end]), 1)[0]
    return float(-dt / slope) if slope < 0 else math.inf


# --- resampling -----------------------------------------------------------------------------
def _trajectory_frames(trajectory_labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Frame indices of each trajectory (in order of first appearance), in frame order."""
    labels = np.asarray(trajectory_labels)
    if labels.ndim != 1 or not len(labels):
        raise InputError(f"trajectory labels must be [n_frames], n_frames >= 1, got {labels.shape}")
    _, first = np.unique(labels, return_index=True)
    return tuple(np.flatnonzero(labels == labels[i]) for i in np.sort(first))


def _circular_blocks(n_frames: int, block_length: int, rng: np.random.Generator) -> np.ndarray:
    """One circular block resample: [n_frames] indices in 0 .. n_frames - 1."""
    block_length = max(1, min(block_length, n_frames))
    n_blocks = -(-n_frames // block_length)
    starts = rng.integers(0, n_frames, n_blocks)
    return ((starts[:, None] + np.arange(block_length)) % n_frames).ravel()[:n_frames]


def _check_resamples(n_resamples: int) -> None:
    if n_resamples < 1:
        raise InputError(f"n_resamples must be >= 1, got {n_resamples}")


def block_bootstrap(
    n_frames: int, block_length: int, rng: np.random.Generator, n_resamples: int
) -> Iterator[np.ndarray]:
    """Circular block bootstrap of one trajectory (Politis & Romano 1992).

    Each resample is [n_frames] frame indices: ceil(n_frames / block_length) blocks of
    ``block_length`` consecutive frames, each starting at a uniformly drawn frame and
    wrapping around the end (so that every frame is drawn equally often), cut to
    n_frames.
    """
    if n_frames < 1 or block_length < 1:
        raise InputError(
            f"need n_frames >= 1 and block_length >= 1, got {n_frames}, {block_length}"
        )
    _check_resamples(n_resamples)
    for _ in range(n_resamples):
        yield _circular_blocks(n_frames, block_length, rng)


@dataclasses.dataclass(frozen=True, eq=False)
class Resampling:
    """How frames are resampled: whole trajectories with replacement (``block_lengths``
    None), or circular blocks within each trajectory (one block length, in frames, per
    trajectory). Build it with :func:`choose_resampling` or :func:`bootstrap_trajectories`.

    Attributes
    ----------
    trajectories
        Frame indices of each trajectory, in time order.
    block_lengths
        None, or the block length (frames) of each trajectory.
    variance_ratio
        The blocks' variance of the slowest observable's mean over Sokal's estimate of
        its true variance (in [:data:`MIN_VARIANCE_RATIO`, 1]); :func:`noise_floor_draws`
        divides by it. 1 over whole trajectories, or where no observable was given.
    autocorrelation_time
        tau_int (frames) of the slowest observable, or None where none was given.
    """

    trajectories: tuple[np.ndarray, ...]
    block_lengths: tuple[int, ...] | None = None
    variance_ratio: float = 1.0
    autocorrelation_time: float | None = None

    @property
    def resolution(self) -> float | None:
        """2 sqrt(tau_int / n) with n the median trajectory length (see
        :func:`floor_resolution`); None where the autocorrelation time is unknown."""
        if self.autocorrelation_time is None:
            return None
        return _resolution(self.autocorrelation_time, self.trajectories)

    @property
    def method(self) -> str:
        """The method: "trajectories" (bootstrap over trajectories) or "blocks" (within each)."""
        return "trajectories" if self.block_lengths is None else "blocks"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One resample: frame indices, trajectory by trajectory (a frame may repeat).

        Over trajectories: as many trajectories as there are, drawn with replacement,
        concatenated whole (the size varies with their lengths). In blocks: each trajectory
        resampled by :func:`block_bootstrap` to its own length, concatenated.
        """
        if self.block_lengths is None:
            chosen = rng.integers(0, len(self.trajectories), len(self.trajectories))
            return np.concatenate([self.trajectories[i] for i in chosen])
        return np.concatenate(
            [
                frames[_circular_blocks(len(frames), length, rng)]
                for frames, length in zip(self.trajectories, self.block_lengths, strict=True)
            ]
        )

    def resamples(self, rng: np.random.Generator, n_resamples: int) -> Iterator[np.ndarray]:
        """``n_resamples`` independent :meth:`draw` s."""
        _check_resamples(n_resamples)
        for _ in range(n_resamples):
            yield self.draw(rng)

    def describe(self) -> str:
        """One sentence for a report."""
        n = len(self.trajectories)
        if self.block_lengths is None:
            return f"bootstrap over {n} trajectories"
        lengths = sorted(set(self.block_lengths))
        shown = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
        text = f"circular block bootstrap within each of {n} trajectories ({shown}-frame blocks)"
        if self.variance_ratio < 1:
            missed = 1 - self.variance_ratio
            text += f"; noise floors corrected for the {missed:.0%} of the variance the blocks miss"
        return text


def bootstrap_trajectories(
    trajectory_labels: np.ndarray, rng: np.random.Generator, n_resamples: int
) -> Iterator[np.ndarray]:
    """Bootstrap over trajectories: each resample is the frame indices of as many
    trajectories as there are, drawn with replacement and concatenated whole.

    Parameters
    ----------
    trajectory_labels
        [n_frames] the trajectory of each frame; frames of a trajectory in time order.
    """
    return Resampling(_trajectory_frames(trajectory_labels)).resamples(rng, n_resamples)


def choose_resampling(
    trajectory_labels: np.ndarray,
    *,
    observable: np.ndarray | None = None,
    block_length: int | None = None,
    min_trajectories: int = MIN_TRAJECTORIES,
) -> Resampling:
    """The resampling for data of these trajectories.

    Bootstrap over trajectories when there are >= ``min_trajectories`` (see
    :data:`MIN_TRAJECTORIES` for why 5), else a circular block bootstrap within each
    trajectory with block length, per trajectory of n frames:

    - ``block_length`` frames if given (at most n);
    - else, given an ``observable``, ceil(:data:`BLOCK_FACTOR` tau_int) frames with tau_int
      the largest integrated autocorrelation time (frames, :func:`autocorrelation_time`
      pooled over trajectories) of its non-constant columns, capped at n /
      :data:`MIN_BLOCKS`;
    - else n / :data:`MIN_BLOCKS` (at least 1).

    Given an ``observable``, blocks also carry the variance they lose on its slowest
    column (:attr:`Resampling.variance_ratio`), by which :func:`noise_floor_draws`
    rescales a floor.

    Parameters
    ----------
    trajectory_labels
        [n_frames] the trajectory of each frame; frames of a trajectory in time order.
    observable
        [n_frames] or [n_frames, k] values whose correlation sets the block length (e.g.
        the projected values that are histogrammed, or a state indicator); angles are
        best given as cos/sin, as the jump at +-pi looks like decorrelation.
    block_length
        Block length in frames, overriding the observable.
    min_trajectories
        Fewest trajectories for the bootstrap over trajectories.
    """
    trajectories = _trajectory_frames(trajectory_labels)
    if len(trajectories) >= min_trajectories:
        return Resampling(trajectories)
    if block_length is not None and block_length < 1:
        raise InputError(f"block_length must be >= 1 frame, got {block_length}")
    slowest = None
    if observable is not None:
        slowest = _slowest_column(trajectories, _columns(observable, trajectory_labels))
    if block_length is not None:
        lengths = tuple(min(block_length, len(f)) for f in trajectories)
    else:
        longest = None if slowest is None else math.ceil(BLOCK_FACTOR * slowest[0])
        lengths = []
        for frames in trajectories:
            cap = max(1, len(frames) // MIN_BLOCKS)
            lengths.append(cap if longest is None else max(1, min(longest, cap)))
        lengths = tuple(lengths)
    if slowest is None:
        return Resampling(trajectories, lengths)
    tau, column = slowest
    ratio = _variance_ratio(trajectories, lengths, column, tau)
    return Resampling(trajectories, lengths, ratio, tau)


def _columns(observable: np.ndarray, trajectory_labels: np.ndarray) -> np.ndarray:
    """The observable as [n_frames, k], checked against the labels."""
    values = np.asarray(observable, dtype=float)
    values = values[:, None] if values.ndim == 1 else values.reshape(len(values), -1)
    if len(values) != len(np.asarray(trajectory_labels)):
        raise InputError(
            f"observable has {len(values)} frames, trajectory labels {len(trajectory_labels)}"
        )
    return values


def _slowest_column(
    trajectories: tuple[np.ndarray, ...], values: np.ndarray
) -> tuple[float, np.ndarray] | None:
    """(tau_int in frames, column [n_frames]) of the non-constant column with the largest
    autocorrelation time pooled over trajectories; None if every column is constant."""
    slowest = None
    for column in values.T:
        if np.ptp(column) > 0:
            tau = autocorrelation_time([column[f] for f in trajectories])
            if slowest is None or tau > slowest[0]:
                slowest = (tau, column)
    return slowest


def _resolution(tau: float, trajectories: tuple[np.ndarray, ...]) -> float:
    return 2.0 * math.sqrt(tau / float(np.median([len(f) for f in trajectories])))


def _block_mean_variance(x: np.ndarray, block_length: int) -> float:
    """Exact variance of the mean of one circular block resample of ``x`` [n], drawn as
    :func:`block_bootstrap` draws: n // L whole blocks and one block cut to n % L frames,
    every block starting at a uniformly drawn frame."""
    n = len(x)
    length = max(1, min(block_length, n))
    whole, rest = divmod(n, length)
    centred = x - x.mean()
    wrapped = np.concatenate([[0.0], np.cumsum(np.concatenate([centred, centred[:length]]))])
    starts = np.arange(n)
    variance = whole * np.var(wrapped[starts + length] - wrapped[starts])
    if rest:
        variance += np.var(wrapped[starts + rest] - wrapped[starts])
    return float(variance) / n**2


def _variance_ratio(
    trajectories: tuple[np.ndarray, ...],
    block_lengths: Sequence[int],
    column: np.ndarray,
    tau: float,
) -> float:
    """The blocks' variance of the pooled mean of ``column`` over Sokal's 2 tau var / N,
    clipped to [MIN_VARIANCE_RATIO, 1] (see the module docstring)."""
    total = len(column)
    blocks = sum(
        (len(f) / total) ** 2 * _block_mean_variance(column[f], length)
        for f, length in zip(trajectories, block_lengths, strict=True)
    )
    sokal = 2.0 * tau * np.var(column[np.concatenate(trajectories)]) / total
    return float(np.clip(blocks / sokal, MIN_VARIANCE_RATIO, 1.0)) if sokal > 0 else 1.0


def floor_resolution(trajectory_labels: np.ndarray, observable: np.ndarray) -> float:
    """How far a noise floor from blocks within these trajectories can be trusted:
    2 sqrt(tau_int / n), dimensionless.

    tau_int is the largest integrated autocorrelation time (frames, pooled over
    trajectories, :func:`autocorrelation_time`) of the observable's non-constant columns;
    n is the median trajectory length (frames): the blocks lose a fraction of about
    tau_int / L + L / n >= 2 sqrt(tau_int / n) of the variance within each trajectory
    whatever their length L, so this is the size of the correction a floor needs, and
    the relative error of tau_int, which sets the correction, grows as sqrt(tau_int / n)
    too. The median, because a reference's trajectories are mostly of one length and one
    short straggler should not condemn the rest. Above :data:`MAX_FLOOR_RESOLUTION` the
    floor is unreliable. 0 for a constant observable (no sampling noise).

    Parameters
    ----------
    trajectory_labels
        [n_frames] the trajectory of each frame; frames of a trajectory in time order.
    observable
        [n_frames] or [n_frames, k] the slow values (e.g. those that are histogrammed).
    """
    trajectories = _trajectory_frames(trajectory_labels)
    slowest = _slowest_column(trajectories, _columns(observable, trajectory_labels))
    return 0.0 if slowest is None else _resolution(slowest[0], trajectories)


def _per_replica(
    values: Mapping[object, object] | np.ndarray | Sequence[object],
    labels: np.ndarray,
    replicas: tuple[np.ndarray, ...],
    name: str,
) -> list[object]:
    """One value per replica (in the order of ``replicas``), from a mapping by replica
    label, an array per frame ([n_frames], one value within each replica) or an array
    per replica ([n_replicas], in order of first appearance)."""
    if isinstance(values, Mapping):
        missing = [labels[f[0]] for f in replicas if labels[f[0]] not in values]
        if missing:
            raise InputError(f"{name} has no entry for replica {missing[0]}")
        return [values[labels[f[0]]] for f in replicas]
    array = np.asarray(values)
    if array.ndim != 1 or len(array) not in (len(labels), len(replicas)):
        raise InputError(
            f"{name} of shape {array.shape}: expected [{len(labels)}] (per frame) or "
            f"[{len(replicas)}] (per replica)"
        )
    if len(array) == len(replicas):
        return list(array)
    for f in replicas:
        if (array[f] != array[f[0]]).any():
            raise InputError(f"{name} changes within replica {labels[f[0]]}")
    return [array[f[0]] for f in replicas]


@dataclasses.dataclass(frozen=True, eq=False)
class DesignResampling:
    """Resampling of CG replicas by their start design: within each start group (e.g. the
    start state), the group's distinct start frames are resampled, each drawn start
    bringing its own replicas whole. Build it with :func:`design_resampling`; it draws
    frame indices like :class:`Resampling`.

    Attributes
    ----------
    groups
        Per start group, per distinct start frame: the frame indices of each of its
        replicas (in time order).
    """

    groups: tuple[tuple[tuple[np.ndarray, ...], ...], ...]

    @property
    def method(self) -> str:
        """The method: "design"."""
        return "design"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One resample: frame indices, group by group (a frame may repeat).

        In a group of R replicas from S >= 2 distinct start frames, S - 1 start frames are
        drawn with replacement (McCarthy & Snowden 1985), and the replicas of each, in a
        random order and repeated in turn, fill R / (S - 1) replica slots (R // (S - 1),
        one more for the first R % (S - 1)), so that the group keeps its R replicas and
        its weight. In a group with one start frame, its replicas are drawn with
        replacement (nothing tells how much the start matters there).
        """
        parts = []
        for starts in self.groups:
            n_replicas = sum(len(replicas) for replicas in starts)
            if len(starts) == 1:
                chosen = rng.integers(0, n_replicas, n_replicas)
                parts += [starts[0][i] for i in chosen]
                continue
            slots = len(starts) - 1
            drawn = rng.integers(0, len(starts), slots)
            for j, start in enumerate(drawn):
                size = n_replicas // slots + (j < n_replicas % slots)
                order = rng.permutation(len(starts[start]))
                parts += [starts[start][i] for i in np.resize(order, size)]
        return np.concatenate(parts)

    def resamples(self, rng: np.random.Generator, n_resamples: int) -> Iterator[np.ndarray]:
        """``n_resamples`` independent :meth:`draw` s."""
        _check_resamples(n_resamples)
        for _ in range(n_resamples):
            yield self.draw(rng)

    def describe(self) -> str:
        """One sentence for a report."""
        n_replicas = sum(len(r) for starts in self.groups for r in starts)
        n_starts = sum(len(starts) for starts in self.groups)
        return (
            f"bootstrap of {n_replicas} replicas by design: their {n_starts} start frames "
            f"resampled within each of {len(self.groups)} start groups"
        )


def design_resampling(
    replica_of_frame: np.ndarray,
    start_group_of_replica: Mapping[object, object] | np.ndarray | Sequence[object],
    start_frame_of_replica: Mapping[object, object] | np.ndarray | Sequence[object],
) -> DesignResampling:
    """The resampling of a CG sample that follows how its replicas were started.

    Replicas are started by design (half from each of two start states; several may
    share a start frame), so they are not independent draws of one population: replicas
    of one start frame share its memory for as long as the model takes to forget it, and
    each start group holds its share of replicas by construction. The bootstrap follows
    the design (a stratified two-stage sample): strata are the start groups, which keep
    their numbers of replicas; clusters are the distinct start frames, drawn with
    replacement within their group; a drawn start brings its replicas whole.

    Drawing S - 1 of S start frames (McCarthy & Snowden 1985, "The bootstrap and finite
    population sampling"; Rao & Wu 1988, JASA 83, 231) makes the bootstrap variance of a
    mean unbiased for the variance over repeats of the whole design with new start
    frames: the spread of the S start means, sum (x_s - x)^2 / (S - 1), estimates both
    the spread between starts and the replicas' noise around them. Drawing S of S
    underestimates it by (S - 1) / S, 1/2 at 2 start frames per group; resampling the
    replicas of each drawn start again (the two-stage bootstrap) counts their noise
    twice. Where every replica has its own start frame, this is the bootstrap over
    replicas within groups, with R - 1 of R drawn.

    Parameters
    ----------
    replica_of_frame
        [n_frames] the replica of each sample frame; frames of a replica in time order.
    start_group_of_replica
        Each replica's start group (e.g. the start state's name): a mapping by replica
        label, an array per frame [n_frames], or one per replica in order of first
        appearance in ``replica_of_frame``.
    start_frame_of_replica
        Each replica's start frame (e.g. its index in the reference), in the same forms.
        Replicas with equal start frames in one group share a cluster.

    Returns
    -------
    DesignResampling
        With :meth:`~DesignResampling.draw`, :meth:`~DesignResampling.resamples` and
        :meth:`~DesignResampling.describe` as :class:`Resampling` has them.
    """
    labels = np.asarray(replica_of_frame)
    replicas = _trajectory_frames(labels)
    groups = _per_replica(start_group_of_replica, labels, replicas, "start_group_of_replica")
    starts = _per_replica(start_frame_of_replica, labels, replicas, "start_frame_of_replica")
    design: dict[object, dict[object, list[np.ndarray]]] = {}
    for frames, group, start in zip(replicas, groups, starts, strict=True):
        design.setdefault(group, {}).setdefault(start, []).append(frames)
    return DesignResampling(
        tuple(tuple(tuple(r) for r in by_start.values()) for by_start in design.values())
    )


# --- estimates ------------------------------------------------------------------------------
def noise_floor_draws(
    reference_values: np.ndarray,
    trajectory_labels: np.ndarray,
    n_frames: int,
    score: Callable[[np.ndarray, np.ndarray], float | np.ndarray],
    rng: np.random.Generator,
    n_resamples: int = 200,
    *,
    resampling: Resampling | None = None,
    variance_exponent: float | Sequence[float] = 1.0,
) -> np.ndarray:
    """The bootstrap draws that :func:`noise_floor` summarises: the score that sampling
    noise alone gives a sample of ``n_frames`` frames, once per resample.

    A model's score is ``score(model_values, reference_values)``: a sample of n frames
    against the pooled reference. Its floor is the same score with the model replaced
    by the reference's own ensemble, in the bootstrap's world where the pooled reference
    is the truth. Each of ``n_resamples`` repeats draws

    1. a stand-in for the reference: one resample of the reference
       (:meth:`Resampling.draw`: by trajectory, or in blocks), as many frames as it has;
    2. a stand-in for the sample: an independent resample (concatenated with further
       ones while it has fewer than ``n_frames`` frames), of which ``n_frames`` frames
       are taken evenly spaced (``np.linspace(0, m - 1, n_frames).round()``, as
       :func:`cgpipe.data.evenly`), so that it keeps the reference's time correlation at
       the stride that gives n_frames;

    and scores the sample against the reference. Resampling the reference as well
    (rather than scoring against the pooled reference itself) puts in the reference's
    own sampling noise, which the model's score carries too, and keeps the sample
    independent of what it is compared to. Regularisation and binning are those of
    ``score``, so they match the model's score when the same ``score`` is used.

    In blocks (:class:`Resampling` with a ``variance_ratio`` f < 1), the draws are then
    extrapolated to the variance the blocks lose (module docstring): with e =
    ``variance_exponent`` and a baseline b, the mean of d^(1/e) over ``max(
    MIN_BASELINE_RESAMPLES, n_resamples / 4)`` further repeats with frames drawn one by
    one, each draw d becomes max(0, d^(1/e) + (d^(1/e) - b) (1 - f) / (f - r))^e, with
    r = 1 / (2 tau_int); so
    that the draws spread like the score of an independent replicate of the reference,
    not like that of a resample of it.

    The reference stand-ins come from a generator of their own (spawned from ``rng``),
    so that draw i of two calls with generators in the same state is scored against
    the same reference stand-in whatever ``n_frames``. To pool several folds' floors
    (every fold scored against the one reference), call with generators in one state,
    average the draws resample by resample (``np.mean([draws_a, draws_b], axis=0)``)
    and take the interval of the averages.

    Parameters
    ----------
    reference_values
        [n, d] the reference's values (e.g. the 2-D projection, rad or nm).
    trajectory_labels
        [n] the trajectory of each reference frame; frames in time order.
    n_frames
        Frames of the sample that is scored (the model's frame count).
    score
        score(sample [n_frames, d], reference [m, d]) -> float, or a 1-D array of k
        scores (computed from the same resamples, e.g. from one pair of histograms).
    rng
        Random generator.
    n_resamples
        Number of bootstrap repeats.
    resampling
        How to resample the reference; default :func:`choose_resampling` with the
        reference values as the observable.
    variance_exponent
        How each score scales with the sampling variance (one number, or one per score):
        1 for a divergence of histograms (JS, KL: ~ 1 / n_eff), 0.5 for an RMSE of free
        energies (~ 1 / sqrt(n_eff)).

    Returns
    -------
    np.ndarray
        [n_resamples] draws, or [n_resamples, k] where ``score`` returns k scores
        (units of ``score``).

    Warns
    -----
    RuntimeWarning
        Where the reference is resampled in blocks and its :func:`floor_resolution`
        exceeds :data:`MAX_FLOOR_RESOLUTION`: too short for a trustworthy floor.
    """
    values = np.asarray(reference_values)
    if len(values) != len(np.asarray(trajectory_labels)):
        raise InputError(
            f"reference has {len(values)} frames, trajectory labels {len(trajectory_labels)}"
        )
    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    _check_resamples(n_resamples)
    plan = resampling or choose_resampling(trajectory_labels, observable=values)
    resolution = plan.resolution
    if plan.method == "blocks" and resolution is not None and resolution > MAX_FLOOR_RESOLUTION:
        warnings.warn(
            f"reference trajectories too short for a noise floor: resolution "
            f"2 sqrt(tau_int / n) = {resolution:.2f} > {MAX_FLOOR_RESOLUTION} "
            f"(tau_int {plan.autocorrelation_time:.3g} frames); the floor is unreliable",
            RuntimeWarning,
            stacklevel=2,
        )
    reference_rng, sample_rng, baseline_rng = rng.spawn(3)
    table = _floor_scores(plan, values, n_frames, score, reference_rng, sample_rng, n_resamples)
    exponent = np.asarray(variance_exponent, dtype=float)
    if exponent.ndim and exponent.shape != table.shape[1:]:
        raise InputError(
            f"variance_exponent of shape {exponent.shape} does not match scores of shape "
            f"{table.shape[1:]}"
        )
    if (exponent <= 0).any():
        raise InputError(f"variance_exponent must be > 0, got {variance_exponent}")
    gain = _extrapolation_gain(plan)
    if not gain:
        return table
    frames = Resampling(plan.trajectories, tuple(1 for _ in plan.trajectories))
    n_baseline = max(MIN_BASELINE_RESAMPLES, -(-n_resamples // 4))
    baseline = _floor_scores(
        frames, values, n_frames, score, baseline_rng, baseline_rng, n_baseline
    )
    linear, base = table ** (1 / exponent), np.nanmean(baseline ** (1 / exponent), axis=0)
    return np.maximum(linear + gain * (linear - base), 0.0) ** exponent


def _floor_scores(
    plan: Resampling,
    values: np.ndarray,
    n_frames: int,
    score: Callable[[np.ndarray, np.ndarray], float | np.ndarray],
    reference_rng: np.random.Generator,
    sample_rng: np.random.Generator,
    n_resamples: int,
) -> np.ndarray:
    """[n_resamples] or [n_resamples, k] scores of a resampled sample against a
    resampled reference (steps 1 and 2 of :func:`noise_floor_draws`)."""
    scores = []
    for _ in range(n_resamples):
        reference = plan.draw(reference_rng)
        parts, size = [], 0
        while size < n_frames:
            parts.append(plan.draw(sample_rng))
            size += len(parts[-1])
        pool = np.concatenate(parts)
        sample = pool[np.linspace(0, len(pool) - 1, n_frames).round().astype(np.int64)]
        scores.append(np.asarray(score(values[sample], values[reference]), dtype=float))
    table = np.array(scores)
    if table.ndim > 2:
        raise InputError(f"score returned an array of shape {table.shape[1:]}, not [k]")
    return table


def _extrapolation_gain(plan: Resampling) -> float:
    """(1 - f) / (f - r): how far past the blocks a floor is extrapolated, for blocks that
    see a fraction f of the slowest observable's true variance and frames drawn one by
    one that see r = 1 / (2 tau_int) of it; 0 where there is nothing to correct."""
    f, tau = plan.variance_ratio, plan.autocorrelation_time
    if plan.block_lengths is None or tau is None or f >= 1:
        return 0.0
    r = 1.0 / (2.0 * tau)
    return 0.0 if f <= r else min((1.0 - f) / (f - r), 1.0 / MIN_VARIANCE_RATIO - 1.0)


def noise_floor(
    reference_values: np.ndarray,
    trajectory_labels: np.ndarray,
    n_frames: int,
    score: Callable[[np.ndarray, np.ndarray], float | np.ndarray],
    rng: np.random.Generator,
    n_resamples: int = 200,
    *,
    level: float = LEVEL,
    resampling: Resampling | None = None,
    variance_exponent: float | Sequence[float] = 1.0,
) -> Estimate | list[Estimate]:
    """The score that sampling noise alone gives a sample of ``n_frames`` frames: mean
    and percentile interval of :func:`noise_floor_draws` (same arguments; ``level`` the
    confidence level of the interval).

    Returns
    -------
    Estimate, or list[Estimate] (one per score) where ``score`` returns an array
        Mean of the draws, and their percentile interval (units of ``score``).
    """
    table = noise_floor_draws(
        reference_values,
        trajectory_labels,
        n_frames,
        score,
        rng,
        n_resamples,
        resampling=resampling,
        variance_exponent=variance_exponent,
    )
    if table.ndim == 1:
        return _estimate(float(table.mean()), table, level)
    return [_estimate(float(column.mean()), column, level) for column in table.T]


def populations(
    states: np.ndarray,
    trajectory_labels: np.ndarray,
    n_states: int,
    rng: np.random.Generator,
    n_resamples: int = 200,
    *,
    level: float = LEVEL,
    resampling: Resampling | None = None,
) -> list[Estimate]:
    """Population (fraction of frames, 0-1) of each state, with a bootstrap interval.

    Parameters
    ----------
    states
        [n] the state (basin) of each frame, 0 .. n_states - 1.
    trajectory_labels
        [n] the trajectory of each frame; frames in time order.
    n_states
        Number of states.
    rng, n_resamples, level
        Random generator, bootstrap repeats, confidence level.
    resampling
        Default :func:`choose_resampling` with the state indicators as the observable
        (block length from the slowest state's autocorrelation time).

    Returns
    -------
    list[Estimate]
        Per state: the fraction of all frames, and the percentile interval of the
        fraction over resamples.
    """
    states = np.asarray(states)
    if states.shape != np.shape(trajectory_labels) or states.ndim != 1:
        raise InputError(
            f"states {states.shape} and trajectory labels {np.shape(trajectory_labels)} differ"
        )
    bad = np.flatnonzero((states < 0) | (states >= n_states) | (states != np.round(states)))
    if len(bad):
        raise InputError(
            f"frame {int(bad[0])} has state {states[bad[0]]}, not in 0..{n_states - 1}"
        )
    states = states.astype(np.int64)
    _check_resamples(n_resamples)
    if resampling is None:
        indicator = np.eye(n_states)[states]
        resampling = choose_resampling(trajectory_labels, observable=indicator)

    def fractions(frames: np.ndarray) -> np.ndarray:
        return np.bincount(states[frames], minlength=n_states) / len(frames)

    value = fractions(np.arange(len(states)))
    resampled = np.array([fractions(f) for f in resampling.resamples(rng, n_resamples)])
    return [_estimate(value[k], resampled[:, k], level) for k in range(n_states)]


def block_bootstrap_difference(
    a: np.ndarray,
    b: np.ndarray,
    block_length: int | None,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    *,
    trajectory_labels: np.ndarray | None = None,
    level: float = LEVEL,
) -> Estimate:
    """Mean of the paired difference a - b, with a block-bootstrap interval.

    For a per-frame score of two methods on the same frames (e.g. the squared force
    error of the prior alone and of the model on held-out frames: Delta MSE =
    mean(a - b)), frames are resampled in pairs, so that the noise both share (the
    force noise of a frame) cancels in the difference.

    Parameters
    ----------
    a, b
        [n] per-frame values of one unit, frame i of ``a`` paired with frame i of ``b``.
    block_length
        Block length (frames); None: from the autocorrelation time of a - b
        (:func:`choose_resampling`).
    rng, n_resamples, level
        Random generator, bootstrap repeats, confidence level.
    trajectory_labels
        [n] the trajectory of each frame (frames in time order); default one trajectory.
        With >= :data:`MIN_TRAJECTORIES` trajectories they are resampled whole.

    Returns
    -------
    Estimate
        mean(a - b) and the percentile interval of the resampled means (units of a).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise InputError(f"paired values of shapes {a.shape} and {b.shape} (expected [n], [n])")
    difference = a - b
    labels = np.zeros(len(a), dtype=np.int64) if trajectory_labels is None else trajectory_labels
    observable = difference if block_length is None and np.ptp(difference) > 0 else None
    plan = choose_resampling(labels, observable=observable, block_length=block_length)
    means = [difference[frames].mean() for frames in plan.resamples(rng, n_resamples)]
    return _estimate(float(difference.mean()), means, level)
