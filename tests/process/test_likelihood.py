"""Gaussian log densities, the Gaussian KL divergence and the discretised decoder
likelihood (minidiff.process.likelihood; Ho et al. 2020, eq. 5 and sec. 3.3).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    normal_kl,
    standard_normal_cdf,
)
from tests.process.helpers import assert_close
from tests.strategies import arrays
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL

NUM_BINS = 256
CENTRES = -1.0 + 2.0 * np.arange(NUM_BINS) / (NUM_BINS - 1)
EDGES = -1.0 + (2.0 * np.arange(NUM_BINS - 1) + 1.0) / (NUM_BINS - 1)


def means():
    return st.floats(-10.0, 10.0)


def log_vars():
    return st.floats(-20.0, 20.0)


@given(means(), log_vars())
def test_gaussian_log_prob_integrates_to_one(mean, log_var):
    """exp(gaussian_log_prob(x, mean, var)) is a density: its integral over x is 1
    (trapezoid rule on mean +- 12 sd with 2001 points, whose error for a Gaussian is far
    below round-off), and it peaks at the mean with value -log(2 pi var) / 2."""
    var = math.exp(log_var)
    x = mean + math.sqrt(var) * np.linspace(-12.0, 12.0, 2001)
    density = np.exp(gaussian_log_prob(x, mean, var))
    np.testing.assert_allclose(np.trapezoid(density, x), 1.0, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        gaussian_log_prob(mean, mean, var), -0.5 * math.log(2 * math.pi * var), rtol=RTOL, atol=ATOL
    )


@given(arrays(scale=10.0), arrays(scale=20.0), arrays(scale=10.0), arrays(scale=20.0))
def test_normal_kl_nonnegative(mean1, log_var1, mean2, log_var2):
    """KL(N(m1, v1) || N(m2, v2)) >= 0 elementwise (Gibbs' inequality), also in float64:
    expm1(d) - d >= 0 for every float d."""
    assert np.all(normal_kl(mean1, log_var1, mean2, log_var2) >= 0.0)


@given(arrays(scale=10.0), arrays(scale=20.0), arrays(scale=10.0), arrays(scale=20.0))
def test_normal_kl_zero_exactly_for_equal_gaussians(mean1, log_var1, mean2, log_var2):
    """KL(p || p) = 0 exactly; for different Gaussians KL > 0 wherever the difference is
    resolvable in float64: a log-variance gap d above 1e-15 (the variance term is
    (expm1(d) - d) / 2, about d^2 / 4, and expm1(d) rounds to d once |d| is below about
    2e-16), or a squared mean gap in units of the variance above the smallest normal float
    (below it, KL underflows to 0)."""
    np.testing.assert_array_equal(normal_kl(mean1, log_var1, mean1, log_var1), 0.0)
    kl = normal_kl(mean1, log_var1, mean2, log_var2)
    tiny = np.finfo(np.float64).tiny
    resolvable = (np.abs(log_var1 - log_var2) > 1e-15) | (
        (mean1 - mean2) ** 2 * np.exp(-log_var2) > tiny
    )
    assert np.all(kl[resolvable] > 0.0)


@given(means(), log_vars(), means(), log_vars())
def test_normal_kl_equals_expected_log_density_ratio(mean1, log_var1, mean2, log_var2):
    """KL(p || q) = E_p[log p(x) - log q(x)] with, for p = N(m1, v1), the closed form
    E_p[log N(x; m, v)] = log N(m1; m, v) - v1 / (2 v), since E_p[(x - m)^2] = v1 + (m1 -
    m)^2. Checked against gaussian_log_prob; the round-off is relative to the size of the
    terms."""
    v1, v2 = math.exp(log_var1), math.exp(log_var2)
    expected_log_p = gaussian_log_prob(mean1, mean1, v1) - 0.5
    expected_log_q = gaussian_log_prob(mean1, mean2, v2) - 0.5 * v1 / v2
    magnitude = abs(expected_log_p) + abs(expected_log_q) + 1.0
    kl = normal_kl(mean1, log_var1, mean2, log_var2)
    assert_close(kl, expected_log_p - expected_log_q, rtol=RTOL, atol=RTOL * magnitude)


@pytest.mark.parametrize(
    "mean1, log_var1, mean2, log_var2",
    [(0.0, 0.0, 0.0, 0.0), (0.5, 0.0, -0.5, 0.0), (0.0, -2.0, 0.3, 1.0), (1.0, 1.0, 0.0, -0.5)],
)
def test_normal_kl_matches_monte_carlo(mean1, log_var1, mean2, log_var2):
    """The sample mean of log p(x) - log q(x) over x ~ p (n = 100,000, fixed seed) lies
    within N_STANDARD_ERRORS standard errors of normal_kl(p, q)."""
    rng = np.random.default_rng(20200611)
    x = mean1 + math.exp(0.5 * log_var1) * rng.standard_normal(100_000)
    ratio = gaussian_log_prob(x, mean1, math.exp(log_var1)) - gaussian_log_prob(
        x, mean2, math.exp(log_var2)
    )
    standard_error = ratio.std(ddof=1) / math.sqrt(x.size)
    kl = normal_kl(mean1, log_var1, mean2, log_var2)
    assert abs(ratio.mean() - kl) <= N_STANDARD_ERRORS * standard_error + ATOL


def extreme_means():
    """Means anywhere, and exactly on or a hair off bin centres and bin edges."""
    on_grid = st.sampled_from(np.concatenate([CENTRES, EDGES]).tolist())
    nudged = st.tuples(on_grid, st.sampled_from([-1e-15, 1e-15, -1e-9, 1e-9])).map(sum)
    return st.one_of(st.floats(-1e6, 1e6), st.floats(-1.5, 1.5), on_grid, nudged)


@given(extreme_means(), st.one_of(st.floats(-800.0, 800.0), st.floats(-10.0, 3.0)))
def test_discretized_probabilities_sum_to_one(mean, log_scale):
    """The probabilities of the 256 bins of the discretised Gaussian (Ho et al. 2020, sec.
    3.3) sum to 1 for any mean and log scale, including scales far below the bin width
    with the mean on a bin edge, and scales so large or small that they overflow."""
    log_prob = discretized_gaussian_log_likelihood(CENTRES, mean, log_scale)
    assert np.all(log_prob <= 0.0) and not np.any(np.isnan(log_prob))
    np.testing.assert_allclose(np.exp(log_prob).sum(), 1.0, rtol=RTOL, atol=ATOL)


@given(st.floats(-1.0, 1.0), st.floats(math.log(0.5), math.log(10.0)), st.integers(1, 254))
def test_discretized_matches_density_times_bin_width_for_wide_gaussian(mean, log_scale, i):
    """For a Gaussian much wider than a bin (sd >= 0.5, bin width w = 2/255), the
    probability of an interior bin is its density at the centre times w, up to the
    midpoint rule's error: relative error <= (w / sd)^2 (1 + (|z| + w / sd)^2) / 12 with
    z = (x - mean) / sd (twice the leading term w^2 f'' / 24, to cover the change of the
    density over the bin); here at most about 4e-4."""
    sd = math.exp(log_scale)
    width = 2.0 / (NUM_BINS - 1)
    x = CENTRES[i]
    prob = math.exp(discretized_gaussian_log_likelihood(x, mean, log_scale))
    density_times_width = math.exp(gaussian_log_prob(x, mean, sd**2)) * width
    z = (x - mean) / sd
    rtol = (width / sd) ** 2 * (1.0 + (abs(z) + width / sd) ** 2) / 12.0
    np.testing.assert_allclose(prob, density_times_width, rtol=rtol, atol=ATOL)


@given(st.floats(-40.0, 40.0))
def test_standard_normal_cdf_symmetric_and_increasing(z):
    """Phi(z) + Phi(-z) = 1, 0 <= Phi <= 1, and Phi is non-decreasing."""
    np.testing.assert_allclose(
        standard_normal_cdf(z) + standard_normal_cdf(-z), 1.0, rtol=RTOL, atol=ATOL
    )
    values = standard_normal_cdf(z + np.array([0.0, 0.1, 1.0]))
    assert np.all((values >= 0) & (values <= 1)) and np.all(np.diff(values) >= 0)


def test_discretized_rejects_data_off_the_bins():
    """x outside [-1, 1], x between bin centres, or num_bins < 2 raise ValueError."""
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        discretized_gaussian_log_likelihood(1.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="bin centres"):
        discretized_gaussian_log_likelihood(CENTRES[3] + 0.3 * (CENTRES[4] - CENTRES[3]), 0.0, 0.0)
    with pytest.raises(ValueError, match="num_bins"):
        discretized_gaussian_log_likelihood(0.0, 0.0, 0.0, num_bins=1)
