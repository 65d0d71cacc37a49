"""The uniform and absorbing corruption chains of D3PM (Austin et al. 2021, sec. 3)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.markov import (
    CORRUPTIONS,
    absorbing_cumulative_matrix,
    absorbing_step_matrix,
    cumulative_matrix,
    law_after,
    step_matrix,
    uniform_cumulative_matrix,
    uniform_step_matrix,
    validate_transition_matrix,
)
from tests.strategies import paper_betas
from tests.tolerances import ATOL, ATOL_LOOSE, RTOL, RTOL_LOOSE

Ks = st.integers(2, 8)


@st.composite
def absorbing_settings(draw):
    """(K, mask_index) with the mask anywhere, or None for the default K - 1."""
    K = draw(Ks)
    return K, draw(st.one_of(st.none(), st.integers(0, K - 1)))


def _product_of_steps(kind, beta, t, K, mask_index=None):
    """Q_1 Q_2 ... Q_t by explicit multiplication (Q_bar_0 = I)."""
    Q_bar = np.eye(K)
    for s in range(1, t + 1):
        Q_bar = Q_bar @ step_matrix(kind, beta[s], K, mask_index)
    return Q_bar


@given(st.sampled_from(CORRUPTIONS), st.floats(0.0, 1.0), Ks)
def test_step_matrices_are_stochastic(kind, beta_t, K):
    """Both Q_t have non-negative entries and rows summing to 1; uniform columns too."""
    Q = step_matrix(kind, beta_t, K)
    validate_transition_matrix(Q, atol=1e-12)
    if kind == "uniform":
        np.testing.assert_allclose(Q.sum(axis=0), 1.0, rtol=RTOL, atol=ATOL)


@given(paper_betas(), Ks, st.data())
def test_uniform_closed_form_equals_product_of_steps(beta, K, data):
    """alpha_bar_t I + (1 - alpha_bar_t)/K 11^T = Q_1 ... Q_t for uniform Q_s, any betas."""
    t = data.draw(st.integers(0, beta.shape[0] - 1))
    np.testing.assert_allclose(
        uniform_cumulative_matrix(beta, t, K),
        _product_of_steps("uniform", beta, t, K),
        rtol=RTOL_LOOSE,
        atol=ATOL_LOOSE,
    )


@given(paper_betas(), absorbing_settings(), st.data())
def test_absorbing_closed_form_equals_product_of_steps(beta, K_and_mask, data):
    """alpha_bar_t I + (1 - alpha_bar_t) 1 e_m^T = Q_1 ... Q_t for absorbing Q_s, any betas."""
    K, mask_index = K_and_mask
    t = data.draw(st.integers(0, beta.shape[0] - 1))
    np.testing.assert_allclose(
        absorbing_cumulative_matrix(beta, t, K, mask_index),
        _product_of_steps("absorbing", beta, t, K, mask_index),
        rtol=RTOL_LOOSE,
        atol=ATOL_LOOSE,
    )


@given(st.sampled_from(CORRUPTIONS), paper_betas(min_T=2), Ks, st.data())
def test_cumulative_kernels_compose(kind, beta, K, data):
    """Q_bar_t = Q_bar_{t-1} Q_t, so x_0 Q_bar_t is the law of x_t (Chapman-Kolmogorov)."""
    t = data.draw(st.integers(1, beta.shape[0] - 1))
    Q_bar_t = cumulative_matrix(kind, beta, t, K)
    np.testing.assert_allclose(
        Q_bar_t,
        cumulative_matrix(kind, beta, t - 1, K) @ step_matrix(kind, beta[t], K),
        rtol=RTOL,
        atol=ATOL,
    )
    x0 = np.eye(K)[data.draw(st.integers(0, K - 1))]
    np.testing.assert_allclose(law_after(x0, Q_bar_t, 1), x0 @ Q_bar_t, rtol=RTOL, atol=ATOL)


@given(st.sampled_from(CORRUPTIONS), Ks)
def test_cumulative_kernel_at_t0_is_the_identity(kind, K):
    """beta[0] = 0 gives Q_bar_0 = I: index 0 is the data."""
    beta = np.array([0.0, 0.3, 0.5])
    np.testing.assert_array_equal(cumulative_matrix(kind, beta, 0, K), np.eye(K))


@given(absorbing_settings(), st.floats(0.0, 1.0))
def test_mask_state_is_absorbing(K_and_mask, beta_t):
    """Row m of the absorbing Q_t is e_m: once masked, a token stays masked."""
    K, mask_index = K_and_mask
    m = K - 1 if mask_index is None else mask_index
    np.testing.assert_array_equal(absorbing_step_matrix(beta_t, K, mask_index)[m], np.eye(K)[m])


@given(Ks, st.floats(0.0, 1.0))
def test_uniform_law_is_stationary_for_uniform_corruption(K, beta_t):
    """The uniform law u = 1/K satisfies u Q_t = u for every beta_t."""
    u = np.full(K, 1 / K)
    np.testing.assert_allclose(u @ uniform_step_matrix(beta_t, K), u, rtol=RTOL, atol=ATOL)


@given(st.sampled_from(CORRUPTIONS), Ks)
def test_beta_one_forgets_the_data(kind, K):
    """A step with beta_t = 1 makes every row of Q_bar_t the stationary law."""
    beta = np.array([0.0, 0.2, 1.0, 0.4])
    Q_bar = cumulative_matrix(kind, beta, 3, K)
    expected = np.full(K, 1 / K) if kind == "uniform" else np.eye(K)[K - 1]
    np.testing.assert_allclose(Q_bar, np.broadcast_to(expected, (K, K)), rtol=RTOL, atol=ATOL)


def test_bad_inputs_raise_errors_that_name_the_argument():
    """Betas out of [0, 1], beta[0] != 0, t out of range, a bad K or mask, an unknown kind."""
    with pytest.raises(ValueError, match=r"beta\[2\] = 1.5 is invalid"):
        uniform_cumulative_matrix([0.0, 0.1, 1.5], 1, 3)
    with pytest.raises(ValueError, match=r"beta\[0\] must be 0"):
        absorbing_cumulative_matrix([0.1, 0.2], 1, 3)
    with pytest.raises(ValueError, match="0 <= t <= T = 2, got 3"):
        uniform_cumulative_matrix([0.0, 0.1, 0.2], 3, 3)
    with pytest.raises(ValueError, match="beta_t must lie in"):
        uniform_step_matrix(np.nan, 3)
    with pytest.raises(ValueError, match="K .* must be an integer >= 2, got 1"):
        uniform_step_matrix(0.1, 1)
    with pytest.raises(ValueError, match=r"mask_index must lie in 0..2 \(K = 3\), got 3"):
        absorbing_step_matrix(0.1, 3, mask_index=3)
    with pytest.raises(ValueError, match="unknown corruption 'gaussian'"):
        step_matrix("gaussian", 0.1, 3)
    with pytest.raises(ValueError, match="mask_index is only used by the absorbing"):
        cumulative_matrix("uniform", [0.0, 0.1], 1, 3, mask_index=0)
