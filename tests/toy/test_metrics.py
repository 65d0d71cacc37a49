"""Proofs for minidiff.toy.metrics: sliced Wasserstein, MMD and the energy distance."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import standard_normal_cdf
from minidiff.toy.metrics import DEFAULT_BANDWIDTHS, energy_distance, mmd, sliced_wasserstein
from tests.strategies import arrays, rngs
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE


def two_samples(n=6, m=9, d=2):
    """Two finite samples of shapes (n, d) and (m, d)."""
    return st.tuples(arrays((n, d)), arrays((m, d)))


def wasserstein_1_by_cdfs(x, y):
    """W_1 of two 1-D empirical laws as the integral of |F(s) - G(s)| ds, summed exactly
    over the intervals between the merged points (independent of the quantile form)."""
    points = np.sort(np.concatenate([x, y]))
    F = np.searchsorted(np.sort(x), points[:-1], side="right") / len(x)
    G = np.searchsorted(np.sort(y), points[:-1], side="right") / len(y)
    return float(np.sum(np.abs(F - G) * np.diff(points)))


# -- sliced Wasserstein --------------------------------------------------------------


@given(arrays((12, 2)), rngs())
def test_sliced_wasserstein_of_a_sample_with_itself_is_zero(x, rng):
    """SW_p(x, x) = 0, and also against the same points repeated (the same empirical law
    at another sample size, through the quantile integral)."""
    assert sliced_wasserstein(x, x, rng) == 0.0
    assert sliced_wasserstein(x, np.repeat(x, 3, axis=0), rng) <= 1e-12


@given(two_samples(), st.integers(0, 2**32 - 1), st.sampled_from([1.0, 2.0]))
def test_sliced_wasserstein_is_symmetric(samples, seed, p):
    """SW_p(x, y) = SW_p(y, x) for the same directions (same seed), equal or unequal sizes."""
    x, y = samples
    forward = sliced_wasserstein(x, y, np.random.default_rng(seed), p=p)
    backward = sliced_wasserstein(y, x, np.random.default_rng(seed), p=p)
    np.testing.assert_allclose(forward, backward, rtol=RTOL, atol=ATOL)


@given(arrays((7, 1)), arrays((11, 1)), rngs())
def test_sliced_wasserstein_in_one_dimension_is_the_exact_w1(x, y, rng):
    """For D = 1 every direction is +-1, so SW_1 is the 1-D W_1, here against the CDF form
    integral |F - G| (unequal sizes 7 and 11)."""
    expected = wasserstein_1_by_cdfs(x[:, 0], y[:, 0])
    np.testing.assert_allclose(sliced_wasserstein(x, y, rng, 8), expected, rtol=RTOL, atol=ATOL)


@given(arrays((10, 1)), st.floats(-5, 5), rngs())
def test_sliced_wasserstein_of_a_translation_in_one_dimension_is_the_shift(x, c, rng):
    """SW_1(x, x + c) = |c| in 1-D (sorted matching of a shifted sample is the shift)."""
    np.testing.assert_allclose(sliced_wasserstein(x, x + c, rng, 4), abs(c), rtol=RTOL, atol=1e-12)


def test_sliced_wasserstein_of_a_translation_in_two_dimensions():
    """In 2-D, SW_1(x, x + c) is the mean over directions of |<c, theta>|, whose expectation
    is 2 |c| / pi (theta uniform on the circle); its standard deviation |c| sqrt(1/2 - 4 / pi^2)
    over 4096 directions gives the bound of 4 standard errors."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    c = np.array([0.6, -0.8])
    value = sliced_wasserstein(x, x + c, rng, n_projections=4096)
    se = math.sqrt(0.5 - 4 / math.pi**2) / math.sqrt(4096)
    assert abs(value - 2 / math.pi) <= N_STANDARD_ERRORS * se


def test_sliced_wasserstein_of_order_two_of_a_translation():
    """SW_2(x, x + c)^2 = mean over directions <c, theta>^2, with expectation |c|^2 / D:
    within 4 standard errors over 4096 directions (Var <c, theta>^2 = |c|^4 / 8 in 2-D)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 2))
    c = np.array([1.0, 1.0])  # |c|^2 = 2
    value = sliced_wasserstein(x, x + c, rng, n_projections=4096, p=2) ** 2
    se = math.sqrt(4.0 / 8.0) / math.sqrt(4096)
    assert abs(value - 1.0) <= N_STANDARD_ERRORS * se


# -- MMD and the energy distance ---------------------------------------------------


@given(arrays((10, 2)))
def test_biased_statistics_of_a_sample_with_itself_are_zero(x):
    """The V-statistics of MMD^2 and of the energy distance vanish for y = x."""
    assert mmd(x, x, estimator="biased") == 0.0
    assert energy_distance(x, x, estimator="biased") == 0.0


@given(arrays((10, 2)))
def test_unbiased_mmd_of_a_sample_with_itself_is_slightly_negative(x):
    """The U-statistic of MMD^2 at y = x equals 2 A / (n^2 (n - 1)) - 2 H / n with A the
    off-diagonal kernel sum and H the number of bandwidths: in [-2 H / n, 0]."""
    n, H = len(x), len(DEFAULT_BANDWIDTHS)
    value = mmd(x, x)
    assert -2 * H / n - 1e-12 <= value <= 1e-12


@given(two_samples(8, 5))
def test_kernel_statistics_are_symmetric(samples):
    """MMD^2 and the energy distance are symmetric in (x, y), for both estimators."""
    x, y = samples
    for estimator in ("unbiased", "biased"):
        for metric in (mmd, energy_distance):
            np.testing.assert_allclose(
                metric(x, y, estimator=estimator),
                metric(y, x, estimator=estimator),
                rtol=RTOL,
                atol=ATOL,
            )


@given(two_samples(8, 5))
def test_biased_statistics_are_nonnegative(samples):
    """The V-statistics are squared norms of a difference of mean embeddings: >= 0."""
    x, y = samples
    assert mmd(x, y, estimator="biased") >= -1e-12
    assert energy_distance(x, y, estimator="biased") >= -1e-10


def test_metrics_increase_with_the_shift_between_two_gaussians():
    """For x ~ N(0, I) and y ~ N(c e_1, I) in 2-D, each metric grows with c in 0, 0.5, 1, 2
    (fixed samples, so only the shift changes)."""
    rng = np.random.default_rng(2)
    x, z = rng.standard_normal((2, 400, 2))
    shifts = [0.0, 0.5, 1.0, 2.0]
    for metric in (
        lambda a, b: sliced_wasserstein(a, b, np.random.default_rng(0)),
        mmd,
        energy_distance,
    ):
        values = [metric(x, z + [c, 0.0]) for c in shifts]
        assert np.all(np.diff(values) > 0), values


def gaussian_rbf_expectation(delta2, variance, h, D):
    """E exp(-|Z|^2 / (2 h^2)) for Z ~ N(m, variance I_D) with |m|^2 = delta2."""
    return (h * h / (h * h + variance)) ** (D / 2) * math.exp(-delta2 / (2 * (h * h + variance)))


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_unbiased_mmd_has_the_closed_form_mean_for_two_gaussians(shift):
    """For X ~ N(0, s^2 I), Y ~ N(delta, s^2 I) in 2-D and the RBF sum kernel,
    MMD^2 = 2 sum_h (h^2 / (h^2 + 2 s^2)) (1 - exp(-|delta|^2 / (2 (h^2 + 2 s^2)))).
    The U-statistic is unbiased: its mean over 40 replicates (n = m = 200) lies within
    4 standard errors (their standard deviation / sqrt 40) of it."""
    s, D, R, n = 0.5, 2, 40, 200
    delta = np.array([shift, 0.0])
    exact = sum(
        2 * gaussian_rbf_expectation(0.0, 2 * s * s, h, D)
        - 2 * gaussian_rbf_expectation(shift**2, 2 * s * s, h, D)
        for h in DEFAULT_BANDWIDTHS
    )
    rng = np.random.default_rng(10)
    values = [
        mmd(s * rng.standard_normal((n, D)), delta + s * rng.standard_normal((n, D)))
        for _ in range(R)
    ]
    se = np.std(values, ddof=1) / math.sqrt(R)
    assert abs(np.mean(values) - exact) <= N_STANDARD_ERRORS * se + 1e-12


def expected_abs_normal(mean, variance):
    """E|Z| for Z ~ N(m, v): sqrt(2 v / pi) exp(-m^2 / 2v) + m (1 - 2 Phi(-m / sqrt v))."""
    sd = math.sqrt(variance)
    folded = sd * math.sqrt(2 / math.pi) * math.exp(-mean * mean / (2 * variance))
    return folded + mean * (1 - 2 * float(standard_normal_cdf(-mean / sd)))


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0])
def test_unbiased_energy_distance_has_the_closed_form_mean_in_one_dimension(shift):
    """For X ~ N(0, 1), Y ~ N(c, 1): 2 E|X - Y| - E|X - X'| - E|Y - Y'| with
    E|N(m, v)| = sqrt(2v / pi) exp(-m^2 / 2v) + m (1 - 2 Phi(-m / sqrt v)). The unbiased
    estimate, averaged over 40 replicates (n = m = 200), is within 4 standard errors."""
    R, n = 40, 200
    exact = 2 * expected_abs_normal(shift, 2.0) - 2 * expected_abs_normal(0.0, 2.0)
    rng = np.random.default_rng(11)
    values = [
        energy_distance(rng.standard_normal((n, 1)), shift + rng.standard_normal((n, 1)))
        for _ in range(R)
    ]
    se = np.std(values, ddof=1) / math.sqrt(R)
    assert abs(np.mean(values) - exact) <= N_STANDARD_ERRORS * se + 1e-12


def test_energy_distance_matches_direct_pairwise_sums():
    """The expansion |a|^2 + |b|^2 - 2 <a, b> used for distances agrees with the direct
    pairwise |a_i - b_j| sums (biased estimator) to round-off."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((20, 3)) + 1

    def mean_distance(a, b):
        return np.linalg.norm(a[:, None] - b[None], axis=-1).mean()

    direct = 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)
    np.testing.assert_allclose(
        energy_distance(x, y, estimator="biased"), direct, rtol=RTOL_LOOSE, atol=1e-9
    )


# -- input checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "same dimension"),
        (np.zeros((1, 2)), np.zeros((5, 2)), "n >= 2"),
        (np.zeros(5), np.zeros((5, 1)), "shape"),
        (np.full((3, 2), np.nan), np.zeros((5, 2)), "finite"),
    ],
)
def test_metrics_reject_bad_samples(x, y, match):
    """Samples must be finite (n, D) arrays with n >= 2 and the same D."""
    for metric in (
        lambda a, b: sliced_wasserstein(a, b, np.random.default_rng(0)),
        mmd,
        energy_distance,
    ):
        with pytest.raises(ValueError, match=match):
            metric(x, y)


def test_metrics_reject_bad_options():
    """Bad bandwidths, estimator, order p and projection count raise ValueError."""
    x = np.random.default_rng(0).standard_normal((5, 2))
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, x, bandwidths=(0.1, -1.0))
    with pytest.raises(ValueError, match="estimator"):
        mmd(x, x, estimator="plain")
    with pytest.raises(ValueError, match="estimator"):
        energy_distance(x, x, estimator="plain")
    with pytest.raises(ValueError, match="p must"):
        sliced_wasserstein(x, x, rng, p=0.5)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, rng, n_projections=0)
    with pytest.raises(TypeError, match="rng"):
        sliced_wasserstein(x, x, 0)
