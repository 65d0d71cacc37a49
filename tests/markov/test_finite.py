"""Finite-state chains: n-step kernels, laws, stationary laws, detailed balance, TV, paths."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.markov import (
    closed_classes,
    detailed_balance_residual,
    is_reversible,
    law_after,
    n_step_kernel,
    sample_path,
    stationary_distribution,
    tv_distance,
    validate_distribution,
    validate_transition_matrix,
)
from tests.strategies import (
    probability_vectors,
    rngs,
    stochastic_matrices,
    symmetric_weight_matrices,
)
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE


@st.composite
def chain_and_law(draw, **kw):
    P = draw(stochastic_matrices(**kw))
    return P, draw(probability_vectors(P.shape[0]))


def _block_diagonal(*blocks):
    K = sum(b.shape[0] for b in blocks)
    P, start = np.zeros((K, K)), 0
    for b in blocks:
        P[start : start + b.shape[0], start : start + b.shape[0]] = b
        start += b.shape[0]
    return P


def _drifting_cycle(p):
    """The walk on a 3-cycle that steps clockwise with probability p, else anticlockwise."""
    return np.array([[0.0, p, 1 - p], [1 - p, 0.0, p], [p, 1 - p, 0.0]])


# -- validation ---------------------------------------------------------------------------
@given(stochastic_matrices())
def test_validate_accepts_every_stochastic_matrix(P):
    """Every square, non-negative matrix whose rows sum to 1 is accepted unchanged."""
    np.testing.assert_array_equal(validate_transition_matrix(P), P)


@given(stochastic_matrices(), st.data())
def test_validation_error_names_the_row_that_does_not_sum_to_one(P, data):
    """Scaling row i of a valid P by c != 1 is rejected with a message naming row i."""
    i = data.draw(st.integers(0, P.shape[0] - 1))
    c = data.draw(st.sampled_from([0.5, 0.99, 1.01, 2.0]))
    bad = P.copy()
    bad[i] *= c
    with pytest.raises(ValueError, match=rf"row {i} of P sums to"):
        validate_transition_matrix(bad)


@pytest.mark.parametrize("value", [-0.25, np.nan, np.inf])
def test_validation_error_names_a_negative_or_non_finite_entry(value):
    """A negative, NaN or infinite entry is rejected with its position and row."""
    P = np.full((3, 3), 1 / 3)
    P[2, 1] = value
    with pytest.raises(ValueError, match=r"P\[2, 1\] = .* \(row 2\)"):
        validate_transition_matrix(P)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (0, 0), (2, 2, 2)])
def test_validation_rejects_non_square_shapes(shape):
    """A transition matrix must be a non-empty square (K, K) array."""
    with pytest.raises(ValueError, match="square"):
        validate_transition_matrix(np.ones(shape))


def test_distribution_validation_names_the_bad_row():
    """A batch of laws with one row summing to 0.9 is rejected naming that row."""
    p = np.full((3, 4), 0.25)
    p[1, 0] = 0.15
    with pytest.raises(ValueError, match="row 1 of p0 sums to"):
        validate_distribution(p, 4, name="p0")
    with pytest.raises(ValueError, match="3 states but the chain has K = 4"):
        validate_distribution(np.full(3, 1 / 3), 4)


# -- n-step kernels and laws ----------------------------------------------------------------
@given(stochastic_matrices(), st.integers(0, 40))
def test_n_step_kernel_equals_repeated_multiplication(P, n):
    """P^n (by repeated squaring) equals P P ... P (n factors), and P^0 = I."""
    expected = np.eye(P.shape[0])
    for _ in range(n):
        expected = expected @ P
    np.testing.assert_allclose(n_step_kernel(P, n), expected, rtol=RTOL_LOOSE, atol=ATOL)


@given(stochastic_matrices(), st.integers(0, 20), st.integers(0, 20))
def test_n_step_kernel_satisfies_chapman_kolmogorov(P, m, n):
    """P^{m+n} = P^m P^n, and P^n is itself a stochastic matrix."""
    Pmn = n_step_kernel(P, m + n)
    np.testing.assert_allclose(
        Pmn, n_step_kernel(P, m) @ n_step_kernel(P, n), rtol=RTOL_LOOSE, atol=ATOL
    )
    validate_transition_matrix(Pmn)


@given(chain_and_law(), st.integers(0, 30))
def test_law_after_n_steps_is_the_one_step_map_applied_n_times(P_and_p0, n):
    """p_n = p0 P^n equals p0 pushed through p -> p P n times, and is a law."""
    P, p0 = P_and_p0
    p = p0
    for _ in range(n):
        p = p @ P
    p_n = law_after(p0, P, n)
    np.testing.assert_allclose(p_n, p, rtol=RTOL_LOOSE, atol=ATOL)
    validate_distribution(p_n)


# -- stationary laws --------------------------------------------------------------------------
@given(stochastic_matrices())
def test_stationary_law_is_invariant_and_sums_to_one(P):
    """For any chain with one closed class, pi = pi P, pi >= 0 and sum(pi) = 1."""
    assume(len(closed_classes(P)) == 1)
    pi = stationary_distribution(P)
    assert np.all(pi >= 0.0)
    np.testing.assert_allclose(pi.sum(), 1.0, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(pi @ P, pi, rtol=RTOL_LOOSE, atol=1e-11)


@given(stochastic_matrices())
def test_stationary_law_puts_no_mass_on_transient_states(P):
    """States outside the closed class are transient: pi is exactly 0 there."""
    classes = closed_classes(P)
    assume(len(classes) == 1)
    transient = np.setdiff1d(np.arange(P.shape[0]), classes[0])
    np.testing.assert_array_equal(stationary_distribution(P)[transient], 0.0)


@given(stochastic_matrices())
def test_closed_classes_count_the_stationary_laws(P):
    """The number of closed classes equals dim{v : v P = v}, the nullity of P^T - I."""
    singular_values = np.linalg.svd(P.T - np.eye(P.shape[0]), compute_uv=False)
    assert np.sum(singular_values < 1e-9) == len(closed_classes(P))


@given(stochastic_matrices(max_K=4), stochastic_matrices(max_K=4))
def test_several_closed_classes_make_the_stationary_law_non_unique(P1, P2):
    """A chain made of two disconnected blocks has several stationary laws: it raises."""
    with pytest.raises(ValueError, match="closed communicating classes.*not unique"):
        stationary_distribution(_block_diagonal(P1, P2))


@given(symmetric_weight_matrices())
def test_stationary_law_of_a_weighted_random_walk_is_proportional_to_row_sums(W):
    """The walk P_ij = W_ij / w_i on symmetric weights has pi_i = w_i / sum(w), w = W 1."""
    row_sums = W.sum(axis=1)
    pi = stationary_distribution(W / row_sums[:, None])
    np.testing.assert_allclose(pi, row_sums / row_sums.sum(), rtol=RTOL_LOOSE, atol=ATOL)


# -- detailed balance -------------------------------------------------------------------------
@given(stochastic_matrices(reversible=True, irreducible=True))
def test_reversible_chains_satisfy_detailed_balance(P):
    """A walk on symmetric weights satisfies pi_i P_ij = pi_j P_ji for all i, j."""
    assert is_reversible(P)
    np.testing.assert_allclose(detailed_balance_residual(P), 0.0, atol=1e-12)


@given(stochastic_matrices(irreducible=True), st.data())
def test_detailed_balance_implies_stationarity(P, data):
    """Any law in detailed balance with P is stationary: sum_i pi_i P_ij = pi_j.

    Checked through the residual F: (pi P - pi)_j = sum_i F_ij, for any law pi.
    """
    pi = data.draw(probability_vectors(P.shape[0]))
    F = detailed_balance_residual(P, pi)
    np.testing.assert_allclose(F, -F.T, rtol=0, atol=0)
    np.testing.assert_allclose(F.sum(axis=0), pi @ P - pi, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.4, 0.6, 1.0])
def test_a_three_cycle_with_drift_is_not_reversible(p):
    """The drifting 3-cycle has pi uniform but a net flow (2p - 1) / 3 around the cycle."""
    P = _drifting_cycle(p)
    np.testing.assert_allclose(stationary_distribution(P), np.full(3, 1 / 3), rtol=RTOL, atol=ATOL)
    assert not is_reversible(P)
    np.testing.assert_allclose(
        detailed_balance_residual(P)[0, 1], (2 * p - 1) / 3, rtol=RTOL, atol=ATOL
    )


def test_a_three_cycle_without_drift_is_reversible():
    """With p = 1/2 the 3-cycle is the symmetric walk, hence reversible."""
    assert is_reversible(_drifting_cycle(0.5))


# -- total-variation convergence --------------------------------------------------------------
@given(chain_and_law(), st.integers(1, 30))
def test_tv_distance_to_stationarity_never_increases(P_and_p0, n):
    """||p0 P^{k+1} - pi||_TV <= ||p0 P^k - pi||_TV for every k and every initial law p0."""
    P, p0 = P_and_p0
    assume(len(closed_classes(P)) == 1)
    pi = stationary_distribution(P)
    distances = [tv_distance(law_after(p0, P, k), pi) for k in range(n + 1)]
    assert np.all(np.diff(distances) <= 1e-12)


@given(stochastic_matrices(), st.data())
def test_one_step_contracts_the_tv_distance_between_any_two_laws(P, data):
    """||p P - q P||_TV <= ||p - q||_TV: a Markov kernel never separates two laws."""
    p = data.draw(probability_vectors(P.shape[0]))
    q = data.draw(probability_vectors(P.shape[0]))
    assert tv_distance(p @ P, q @ P) <= tv_distance(p, q) + 1e-15


@given(st.integers(2, 8).flatmap(lambda K: st.tuples(*[probability_vectors(K)] * 3)))
def test_tv_distance_is_a_metric_in_zero_one(laws):
    """0 <= TV <= 1, TV(p, p) = 0, symmetry and the triangle inequality."""
    p, q, r = laws
    assert 0.0 <= tv_distance(p, q) <= 1.0
    assert tv_distance(p, p) == 0.0
    assert tv_distance(p, q) == tv_distance(q, p)
    assert tv_distance(p, r) <= tv_distance(p, q) + tv_distance(q, r) + 1e-15


def test_tv_distance_between_disjoint_laws_is_one():
    """Laws on disjoint sets of states are at distance 1."""
    assert tv_distance([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75]) == 1.0


# -- simulation -------------------------------------------------------------------------------
@given(stochastic_matrices(), rngs(), st.integers(0, 20))
def test_sample_path_only_takes_transitions_of_positive_probability(P, rng, n_steps):
    """Every simulated step i -> j has P_ij > 0, and the path starts where asked."""
    K = P.shape[0]
    starts = np.arange(K)
    path = sample_path(P, starts, n_steps, rng)
    assert path.shape == (n_steps + 1, K) and path.dtype == np.int64
    np.testing.assert_array_equal(path[0], starts)
    assert np.all(P[path[:-1], path[1:]] > 0.0)


def test_sample_path_law_matches_law_after():
    """The fraction of B chains in state j at step n is (p0 P^n)_j within 4 standard errors.

    Each fraction is a binomial proportion with standard error sqrt(p (1 - p) / B).
    """
    rng = np.random.default_rng(20240501)
    B, n = 40_000, 5
    P = rng.dirichlet(np.ones(5), size=5)
    p0 = np.array([0.6, 0.4, 0.0, 0.0, 0.0])
    path = sample_path(P, p0, n, rng, n_chains=B)
    for step in (0, 1, n):
        expected = law_after(p0, P, step)
        observed = np.bincount(path[step], minlength=5) / B
        standard_error = np.sqrt(expected * (1 - expected) / B)
        assert np.all(np.abs(observed - expected) <= N_STANDARD_ERRORS * standard_error + 1e-15)


def test_sample_path_of_one_chain_returns_a_1d_path():
    """An int start gives one path (n_steps + 1,); a law start without n_chains too."""
    P = _drifting_cycle(1.0)  # deterministic rotation 0 -> 1 -> 2 -> 0
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(sample_path(P, 0, 4, rng), [0, 1, 2, 0, 1])
    assert sample_path(P, np.array([0.0, 1.0, 0.0]), 3, rng).tolist() == [1, 2, 0, 1]


# -- bad input --------------------------------------------------------------------------------
def test_bad_inputs_raise_errors_that_name_the_argument():
    """Negative step counts, states outside 0..K-1, laws of the wrong size and a missing rng."""
    P = np.full((3, 3), 1 / 3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        n_step_kernel(P, -1)
    with pytest.raises(TypeError, match="n must be an integer"):
        n_step_kernel(P, 2.0)
    with pytest.raises(ValueError, match="p0 has 2 states but the chain has K = 3"):
        law_after([0.5, 0.5], P, 1)
    with pytest.raises(ValueError, match=r"start states must lie in 0..2, got \[0, 3\]"):
        sample_path(P, np.array([0, 3]), 2, rng)
    with pytest.raises(ValueError, match="n_chains is only used when start is a law"):
        sample_path(P, 0, 2, rng, n_chains=4)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        sample_path(P, 0, 2, rng=0)
    with pytest.raises(ValueError, match="q has 2 states"):
        tv_distance([1.0, 0.0, 0.0], [1.0, 0.0])
