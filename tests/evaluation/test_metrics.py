"""FID, IS, KID and precision/recall: closed forms, identities and Monte Carlo bias checks."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.evaluation.frechet import frechet_distance
from minidiff.evaluation.metrics import (
    fid_bias,
    frechet_inception_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from tests.strategies import rngs
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE


@given(rngs(), st.integers(1, 6))
def test_fid_closed_form_for_commuting_covariances(rng, d):
    """Covariances sharing eigenvectors Q: FID = |m1 - m2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(m1, (q * a) @ q.T, m2, (q * b) @ q.T)
    assert math.isclose(got, expected, rel_tol=RTOL_LOOSE, abs_tol=1e-9)


@given(rngs())
def test_fid_two_by_two_trace_sqrt_closed_form(rng):
    """In 2 x 2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M = C1^{1/2} C2 C1^{1/2}, so
    FID = |m1 - m2|^2 + tr C1 + tr C2 - 2 sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2))."""
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    c1, c2 = a @ a.T + 0.1 * np.eye(2), b @ b.T + 0.1 * np.eye(2)
    m1, m2 = rng.normal(size=2), rng.normal(size=2)
    trace_sqrt = math.sqrt(np.trace(c1 @ c2) + 2 * math.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * trace_sqrt
    assert math.isclose(frechet_distance(m1, c1, m2, c2), expected, rel_tol=1e-8, abs_tol=1e-9)


def test_fid_bias_and_kid_centred_monte_carlo():
    """Two samples of size n from the same N(0, I_d): the mean FID over R repetitions is
    d (d + 5) / (2 n) and the mean KID is 0, each within 4 standard errors of the mean (n
    large enough that the O(1/n^2) remainder of FID's bias is far below one standard error)."""
    rng = np.random.default_rng(0)
    d, n, repeats = 4, 400, 300
    fids, kids = [], []
    for _ in range(repeats):
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        fids.append(frechet_inception_distance(x, y).value)
        kids.append(kernel_inception_distance(x, y, subsets=1, subset_size=n).mean)
    fids, kids = np.array(fids), np.array(kids)
    fid_se, kid_se = fids.std(ddof=1) / math.sqrt(repeats), kids.std(ddof=1) / math.sqrt(repeats)
    assert abs(fids.mean() - fid_bias(d, n)) <= N_STANDARD_ERRORS * fid_se
    assert abs(kids.mean()) <= N_STANDARD_ERRORS * kid_se
    assert fids.mean() > 10 * fid_se  # FID's bias is many standard errors from 0


def test_fid_refuses_n_not_above_feature_dimension_unless_asked():
    """n <= F: a clear error naming n and F; with allow_singular the value is real and finite."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
    with pytest.raises(ValueError, match=r"n = 5 .* 8 features"):
        frechet_inception_distance(x, y)
    result = frechet_inception_distance(x, y, allow_singular=True)
    assert isinstance(result.value, float) and math.isfinite(result.value) and result.value >= 0
    assert (result.n1, result.n2, result.dim) == (5, 30, 8)


@given(st.integers(2, 20), st.integers(1, 5), st.integers(1, 40))
def test_is_of_uniform_predictor_is_one(k, splits, per_split):
    """p(y | x) = 1 / K for every x: KL(p(y|x) || p(y)) = 0, IS = 1 on every part."""
    n = splits * per_split
    score = inception_score(np.zeros((n, k)), splits=splits)
    assert math.isclose(score.mean, 1.0, rel_tol=RTOL, abs_tol=ATOL) and score.std <= ATOL
    assert score.n == n and score.splits == splits


@given(st.integers(2, 12), st.integers(1, 6))
def test_is_of_balanced_one_hot_is_number_of_classes(k, copies):
    """Balanced one-hot predictions over K classes, one part: IS = exp(log K) = K."""
    p = np.tile(np.eye(k), (copies, 1))
    score = inception_score(p, splits=1, probabilities=True)
    assert math.isclose(score.mean, k, rel_tol=RTOL, abs_tol=ATOL)


@given(st.lists(st.integers(1, 9), min_size=1, max_size=8))
def test_is_of_one_hot_with_class_shares_is_exp_entropy(counts):
    """One-hot predictions with class shares pi: IS = exp(H(pi))."""
    counts = np.array(counts)
    p = np.repeat(np.eye(len(counts)), counts, axis=0)
    pi = counts / counts.sum()
    score = inception_score(p, splits=1, probabilities=True)
    assert math.isclose(score.mean, math.exp(-(pi * np.log(pi)).sum()), rel_tol=RTOL, abs_tol=ATOL)


def test_is_of_class_sorted_splits_is_one_and_shuffling_restores_it():
    """Balanced one-hot over 10 classes sorted by class, 10 unshuffled parts: every part is
    one class, IS = 1 (the unshuffled-splits bug); a seeded shuffle gives nearly 10."""
    p = np.repeat(np.eye(10), 100, axis=0)  # sorted by class
    assert inception_score(p, splits=10, shuffle=False, probabilities=True).mean == pytest.approx(
        1.0
    )
    assert inception_score(p, splits=10, shuffle=True, probabilities=True).mean > 9.0


def test_is_logits_equal_their_softmax_probabilities():
    """Logits and their softmax give the same score."""
    logits = np.random.default_rng(2).normal(size=(50, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    a, b = inception_score(logits, splits=5), inception_score(p, splits=5, probabilities=True)
    assert math.isclose(a.mean, b.mean, rel_tol=RTOL_LOOSE) and math.isclose(
        a.std, b.std, rel_tol=1e-6
    )


@given(rngs())
def test_kid_of_a_set_with_itself_equals_its_algebraic_value(rng):
    """KID of a set with itself: the unbiased estimator reduces to 2 (mean of the
    off-diagonal kernel - mean of the whole kernel), computed here by hand."""
    x = rng.normal(size=(12, 3))
    kernel = (x @ x.T / 3 + 1) ** 3
    m = len(x)
    expected = 2 * (kernel.sum() - np.trace(kernel)) / (m * (m - 1)) - 2 * kernel.mean()
    got = kernel_inception_distance(x, x, subsets=1, subset_size=m).mean
    assert math.isclose(got, expected, rel_tol=RTOL_LOOSE, abs_tol=1e-9)


def test_precision_recall_of_identical_sets_is_one():
    """Every point lies in its own ball: precision = recall = 1."""
    x = np.random.default_rng(3).normal(size=(40, 2))
    result = precision_recall(x, x)
    assert (result.precision, result.recall, result.n_real, result.n_fake, result.k) == (
        1,
        1,
        40,
        40,
        3,
    )


def test_mode_dropping_lowers_recall_not_precision():
    """Real data on 4 well-separated modes, generated data on 1 of them: precision near 1,
    recall near 1/4 (within 4 binomial standard errors)."""
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], dtype=float)
    n = 800
    real = centres[rng.integers(0, 4, n)] + rng.normal(size=(n, 2))
    fake = centres[0] + rng.normal(size=(n, 2))
    result = precision_recall(real, fake)
    share = np.mean(np.all(np.abs(real - centres[0]) < 10, axis=1))  # real points in mode 0
    se = math.sqrt(share * (1 - share) / n)
    assert result.precision > 0.95
    assert abs(result.recall - share) <= N_STANDARD_ERRORS * se + 0.02  # + edge of the ball


def test_bad_inputs_are_refused():
    """Mismatched widths, too few rows, bad splits."""
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="features2"):
        frechet_inception_distance(np.ones((10, 2)) * np.arange(10)[:, None], x)
    with pytest.raises(ValueError, match="splits"):
        inception_score(x, splits=11)
    with pytest.raises(ValueError, match="real"):
        precision_recall(x[:3], x)
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(x - 1, probabilities=True)
