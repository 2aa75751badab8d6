"""Statistics of the evaluation against independent results: analytic divergences of
Gaussians, a Gaussian tilt's free energy, the autocorrelation of an AR(1) process, and
the coverage of bootstrap intervals on data with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import norm

from cgpipe.errors import InputError
from cgpipe.evaluate import statistics as st

REPEATS = 40  # coverage checks: a 95 % interval should cover in >= 80 % of 40 repeats


def ar1(rng: np.random.Generator, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) series x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, unit variance,
    along the last axis."""
    noise = rng.standard_normal(shape)
    noise[..., 0] /= math.sqrt(1 - phi**2)  # start in the stationary distribution
    return lfilter([math.sqrt(1 - phi**2)], [1.0, -phi], noise, axis=-1)


# --- histograms and divergences -------------------------------------------------------------
def test_regularised_histogram_sums_to_one_with_frame_count_independent_weight() -> None:
    edges = [np.linspace(0, 1, 11)]
    pattern = np.array([0.05, 0.35, 0.35, 0.75])  # a fixed distribution on 3 of 10 bins
    small = st.regularised_histogram(np.tile(pattern, 25)[:, None], edges, 0.1)  # N = 100
    large = st.regularised_histogram(np.tile(pattern, 2500)[:, None], edges, 0.1)  # 10000
    assert small.sum() == pytest.approx(1.0) and large.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(small, large)
    # An empty bin holds pseudo_mass / B / (1 + pseudo_mass) whatever N.
    assert small[9] == pytest.approx(0.1 / 10 / 1.1)
    assert small[3] == pytest.approx((0.5 + 0.01) / 1.1)


def test_histogram_2d_clips_outside_samples_into_edge_bins() -> None:
    edges = [np.linspace(-1, 1, 5), np.linspace(0, 2, 3)]
    samples = np.array([[-5.0, 0.5], [5.0, 9.0], [1.0, 2.0], [0.1, 1.5]])
    counts = st.histogram_counts(samples, edges)
    assert counts.shape == (4, 2)
    assert counts[0, 0] == 1 and counts[3, 1] == 2 and counts[2, 1] == 1
    p = st.regularised_histogram(samples, edges, 0.0)
    np.testing.assert_allclose(p, counts / 4)
    with pytest.raises(InputError, match="frame 1"):
        st.histogram_counts(np.array([[0.0, 0.0], [np.nan, 0.0]]), edges)


def test_js_is_zero_for_identical_and_ln2_for_disjoint_histograms() -> None:
    edges = [np.linspace(0, 2, 3)]
    p = st.regularised_histogram(np.full(50, 0.5), edges, 0.01)
    assert st.js(p, p) == 0.0
    previous = 0.0
    for pseudo_mass in (1e-2, 1e-4, 1e-8):
        left = st.regularised_histogram(np.full(50, 0.5), edges, pseudo_mass)
        right = st.regularised_histogram(np.full(70, 1.5), edges, pseudo_mass)
        divergence = st.js(left, right)
        assert previous < divergence < math.log(2)
        previous = divergence
    assert previous == pytest.approx(math.log(2), abs=1e-6)


def test_kl_of_fine_gaussian_histograms_is_the_analytic_kl() -> None:
    edges = np.linspace(-10, 10, 801)

    def binned(mu: float, sigma: float) -> np.ndarray:
        # Bin masses from the lower tail's cdf and the upper tail's sf (no cancellation).
        below = np.diff(norm.cdf(edges, mu, sigma))
        above = -np.diff(norm.sf(edges, mu, sigma))
        mass = np.where(edges[1:] < mu, below, above)
        return mass / mass.sum()

    (mu1, s1), (mu2, s2) = (0.3, 1.0), (-0.5, 1.6)
    p, q = binned(mu1, s1), binned(mu2, s2)
    analytic = math.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5
    assert st.kl(p, q) == pytest.approx(analytic, rel=1e-3)
    reverse = math.log(s1 / s2) + (s2**2 + (mu1 - mu2) ** 2) / (2 * s1**2) - 0.5
    assert st.kl(q, p) == pytest.approx(reverse, rel=1e-3)


def test_free_energy_rmse_of_a_linear_tilt_is_the_tilts_rms() -> None:
    # N(a, 1) = N(0, 1) exp(a x) / Z: the free energies differ by u(x) = a x (kT) up to a
    # constant, so the RMSE over bins is a times the spread of the bin centres.
    a, kT = 0.4, 2.5
    edges = np.linspace(-3, 3, 301)
    centres = 0.5 * (edges[1:] + edges[:-1])
    p, q = (np.diff(norm.cdf(edges, mu)) for mu in (0.0, a))
    p, q = p / p.sum(), q / q.sum()
    everywhere = np.ones_like(p)
    rms = a * kT * centres.std()
    assert st.free_energy_rmse(p, q, everywhere, everywhere, kT) == pytest.approx(rms, rel=1e-4)
    # Bins empty in either count mask are left out.
    half = (centres > 0).astype(float)
    expected = a * kT * centres[centres > 0].std()
    assert st.free_energy_rmse(p, q, everywhere, half, kT) == pytest.approx(expected, rel=1e-4)
    assert math.isnan(st.free_energy_rmse(p, q, 1 - half, half))


# --- intervals and resampling ---------------------------------------------------------------
def test_interval_is_the_percentile_interval() -> None:
    assert st.interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0))
    estimate = st.Estimate(1.0, 0.5, 2.0)
    assert estimate.contains(1.9) and not estimate.contains(2.1) and estimate.width == 1.5
    with pytest.raises(InputError):
        st.interval(np.arange(3.0), level=1.0)


def test_resamplings_draw_whole_trajectories_or_blocks() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([3, 1, 2, 7, 5, 4], [10, 20, 30, 10, 20, 30])
    for frames in st.bootstrap_trajectories(labels, rng, 5):
        # Whole trajectories (each as many times as it was drawn), in time order.
        drawn = labels[frames]
        for run in np.split(frames, np.flatnonzero(np.diff(drawn)) + 1):
            own = np.flatnonzero(labels == labels[run[0]])
            np.testing.assert_array_equal(run, np.tile(own, len(run) // len(own)))
    assert st.choose_resampling(labels).method == "trajectories"
    two = labels[labels < 3]
    few = st.choose_resampling(two)  # 2 trajectories: blocks of n / 10 frames
    assert few.method == "blocks" and few.block_lengths == (2, 3)
    frames = few.draw(rng)
    assert len(frames) == 50 and set(two[frames[:20]]) == {1} and set(two[frames[20:]]) == {2}
    blocks = list(st.block_bootstrap(10, 4, rng, 3))
    assert all(len(b) == 10 and set(np.diff(b[:4]) % 10) == {1} for b in blocks)


# --- autocorrelation ------------------------------------------------------------------------
@pytest.mark.parametrize("phi", [0.0, 0.8, 0.95])
def test_autocorrelation_time_of_ar1_is_analytic(phi: float) -> None:
    dt = 0.5  # ps
    x = ar1(np.random.default_rng(1), phi, (4, 25_000))
    analytic = dt * (1 + phi) / (2 * (1 - phi))
    assert st.autocorrelation_time(x, dt) == pytest.approx(analytic, rel=0.15)
    # Trajectories of different lengths, as a list.
    assert st.autocorrelation_time([x[0], x[1, :9000]], dt) == pytest.approx(analytic, rel=0.15)
    if phi:
        expected = -dt / math.log(phi)
        assert st.relaxation_time_exp(x, dt) == pytest.approx(expected, rel=0.15)


# --- estimates ------------------------------------------------------------------------------
def test_noise_floor_covers_a_fresh_samples_score_and_falls_with_frames() -> None:
    edges = [np.linspace(-4, 4, 17)]

    def score(sample: np.ndarray, reference: np.ndarray) -> float:
        return st.js(
            st.regularised_histogram(sample, edges, 1e-3),
            st.regularised_histogram(reference, edges, 1e-3),
        )

    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(10), 200)
    n_frames = 300
    covered = 0
    for _ in range(REPEATS):
        reference = rng.standard_normal((len(labels), 1))
        floor = st.noise_floor(reference, labels, n_frames, score, rng, n_resamples=100)
        fresh = rng.standard_normal((n_frames, 1))
        covered += floor.contains(score(fresh, reference))
    assert covered / REPEATS >= 0.8
    few = st.noise_floor(reference, labels, 100, score, rng, n_resamples=50)
    many = st.noise_floor(reference, labels, 10_000, score, rng, n_resamples=50)
    assert few.low > many.high


def two_state_trajectories(
    rng: np.random.Generator, n_traj: int, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """State 1 where a unit AR(1) series (phi = 0.95) exceeds 0.5: population 1 - Phi(0.5)."""
    latent = ar1(rng, 0.95, (n_traj, n_frames))
    return (latent > 0.5).astype(int).ravel(), np.repeat(np.arange(n_traj), n_frames)


@pytest.mark.parametrize("n_traj", [2, 10])  # blocks within trajectories; whole trajectories
def test_population_intervals_cover_the_stationary_population(n_traj: int) -> None:
    truth = 1 - norm.cdf(0.5)
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(REPEATS):
        states, labels = two_state_trajectories(rng, n_traj, 6000 // n_traj)
        estimate = st.populations(states, labels, 2, rng, n_resamples=100)
        assert estimate[0].value + estimate[1].value == pytest.approx(1.0)
        covered += estimate[1].contains(truth)
    assert covered / REPEATS >= 0.8


def test_block_bootstrap_is_wider_than_an_iid_bootstrap_on_correlated_data() -> None:
    rng = np.random.default_rng(4)
    states, labels = two_state_trajectories(rng, 2, 3000)
    blocks = st.populations(states, labels, 2, rng, n_resamples=200)[1]
    naive = st.choose_resampling(labels, block_length=1)  # frames drawn one by one
    iid = st.populations(states, labels, 2, rng, n_resamples=200, resampling=naive)[1]
    assert blocks.width > 2 * iid.width
    with pytest.raises(InputError, match="frame 5"):
        st.populations(np.array([0, 1, 0, 1, 1, 2]), np.zeros(6), 2, rng)


def test_paired_block_bootstrap_difference_covers_offset_and_cancels_shared_noise() -> None:
    offset, n = 0.1, 2000
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(REPEATS):
        shared = ar1(rng, 0.9, (n,))  # the noise both series share (a frame's force noise)
        a = offset + shared + 0.05 * rng.standard_normal(n)
        b = shared + 0.05 * rng.standard_normal(n)
        paired = st.block_bootstrap_difference(a, b, None, rng, n_resamples=200)
        covered += paired.contains(offset)
    assert covered / REPEATS >= 0.8
    unpaired = [
        a[i].mean() - b[j].mean()
        for i, j in zip(
            st.block_bootstrap(n, 100, rng, 200), st.block_bootstrap(n, 100, rng, 200), strict=True
        )
    ]
    low, high = st.interval(np.array(unpaired))
    assert paired.width < 0.2 * (high - low)
