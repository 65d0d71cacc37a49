"""Tests of the NumPy MLP: hand-written backprop against finite differences, the time
embedding, and the parameter API."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.toy.mlp import (
    ACTIVATIONS,
    MLP,
    gelu_tanh,
    gelu_tanh_with_grad,
    silu,
    silu_with_grad,
    sinusoidal_embedding,
    softplus,
    softplus_with_grad,
)
from tests.strategies import arrays
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL

# Central differences in float64: the truncation error is O(h^2) ~ 1e-10 and the
# round-off O(eps_machine |L| / h) ~ 1e-11 |L|, so a correct gradient agrees to a relative
# error far below FD_RELATIVE_ERROR, while a wrong one (a missing factor, a transposed
# matrix, a wrong derivative) misses by O(1). Gradients whose norm is below GRAD_FLOOR
# (a saturated unit, a tiny network) are measured against GRAD_FLOOR instead, that is
# at an absolute 1e-8, still far above the round-off.
FD_STEP = 1e-5
FD_RELATIVE_ERROR = 1e-6
GRAD_FLOOR = 1e-2


def central_difference(f, array: np.ndarray) -> np.ndarray:
    """d f / d array by central differences, perturbing ``array`` in place entry by entry."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + FD_STEP
        f_plus = f()
        array[index] = saved - FD_STEP
        f_minus = f()
        array[index] = saved
        grad[index] = (f_plus - f_minus) / (2 * FD_STEP)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||, GRAD_FLOOR)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), GRAD_FLOOR))


@st.composite
def tiny_problems(draw):
    """A small MLP of random architecture, a batch (x, t) and a random output weighting R
    that defines the scalar loss L = sum(R * out)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dim = draw(st.integers(1, 3))
    hidden = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    embed_dim = 2 * draw(st.integers(1, 3))
    activation = draw(st.sampled_from(ACTIVATIONS))
    batch = draw(st.integers(1, 4))
    model = MLP(dim, rng, hidden=hidden, embed_dim=embed_dim, activation=activation)
    # Random non-zero biases so that every parameter's gradient is exercised.
    for name in model.params:
        if name.startswith("b"):
            model.params[name][...] = rng.normal(size=model.params[name].shape)
    x = rng.normal(scale=2.0, size=(batch, dim))
    t = rng.integers(0, 1000, size=batch)
    weights = rng.normal(size=(batch, dim))
    return model, x, t, weights


@given(tiny_problems())
def test_backward_matches_central_differences_for_every_parameter(problem):
    """For L = sum(R * MLP(x, t)), the hand-written gradient dL/dtheta of every parameter
    array agrees with central finite differences to relative error < 1e-6 (the relative
    error is ||g_fd - g|| / max(||g_fd||, ||g||, 0.01) per parameter array, in float64)."""
    model, x, t, weights = problem
    model.forward(x, t)
    grads = model.backward(weights)
    assert set(grads) == set(model.params)
    for name, param in model.params.items():
        numeric = central_difference(lambda: float(np.sum(weights * model(x, t))), param)
        assert grads[name].shape == param.shape
        assert relative_error(grads[name], numeric) < FD_RELATIVE_ERROR, name


@given(tiny_problems())
def test_backward_input_gradient_matches_central_differences(problem):
    """The input gradient dL/dx from `backward(..., return_input_grad=True)` agrees with
    central finite differences in x to relative error < 1e-6 (measured as above)."""
    model, x, t, weights = problem
    model.forward(x, t)
    _, grad_x = model.backward(weights, return_input_grad=True)
    numeric = central_difference(lambda: float(np.sum(weights * model(x, t))), x)
    assert grad_x.shape == x.shape
    assert relative_error(grad_x, numeric) < FD_RELATIVE_ERROR


ACTIVATION_PAIRS = [
    (silu, silu_with_grad),
    (gelu_tanh, gelu_tanh_with_grad),
    (softplus, softplus_with_grad),
]


@pytest.mark.parametrize("function, with_grad", ACTIVATION_PAIRS, ids=list(ACTIVATIONS))
@given(z=arrays(shape=(16,), scale=30.0))
def test_activation_derivative_matches_central_differences(function, with_grad, z):
    """Each activation's derivative, written next to it, equals (f(z + h) - f(z - h)) / 2h
    up to the O(h^2) truncation and round-off, for |z| <= 30; the value returned with it
    is f(z) itself."""
    value, derivative = with_grad(z)
    numeric = (function(z + FD_STEP) - function(z - FD_STEP)) / (2 * FD_STEP)
    np.testing.assert_allclose(derivative, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(value, function(z), rtol=RTOL, atol=ATOL)


def test_activations_do_not_overflow_for_large_inputs():
    """The activations and their derivatives are finite for |z| up to 1e6 (no exp overflow)
    and have the right limits: silu(z) -> z and softplus(z) -> z as z -> +inf, both -> 0
    as z -> -inf."""
    z = np.array([-1e6, -800.0, 0.0, 800.0, 1e6])
    for function, with_grad in ACTIVATION_PAIRS:
        assert np.all(np.isfinite(function(z)))
        assert all(np.all(np.isfinite(part)) for part in with_grad(z))
    np.testing.assert_allclose(silu(z)[[0, -1]], [0.0, 1e6], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(softplus(z)[[0, -1]], [0.0, 1e6], rtol=RTOL, atol=ATOL)


@given(t=st.lists(st.integers(0, 10_000), min_size=1, max_size=8), half=st.integers(1, 16))
def test_sinusoidal_embedding_pairs_lie_on_the_unit_circle(t, half):
    """emb(t) = [sin(t w), cos(t w)]: for every frequency sin^2 + cos^2 = 1, the first
    frequency is w_0 = 1 (so column 0 is sin t) and at t = 0 the sines are 0, cosines 1."""
    t = np.array(t)
    emb = sinusoidal_embedding(t, 2 * half)
    assert emb.shape == (len(t), 2 * half)
    np.testing.assert_allclose(emb[:, :half] ** 2 + emb[:, half:] ** 2, 1.0, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(emb[:, 0], np.sin(t), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        sinusoidal_embedding(np.array([0]), 2 * half),
        [[0.0] * half + [1.0] * half],
        rtol=RTOL,
        atol=ATOL,
    )


def test_embedding_distinguishes_every_time_step():
    """Distinct steps 0..1000 get distinct embeddings (the network can tell t apart)."""
    emb = sinusoidal_embedding(np.arange(1001), 32)
    distances = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 1e-3


def test_output_does_not_depend_on_previously_seen_steps():
    """The embedding of t is the same whether it is looked up in the model's table (small t,
    in any order of calls) or computed directly (t beyond the table): each output equals
    the network applied to [x, sinusoidal_embedding(t)]."""
    model = MLP(2, np.random.default_rng(0), hidden=(8,), embed_dim=6)
    x = np.random.default_rng(1).normal(size=(3, 2))
    params = model.params
    for t in (
        np.array([5, 1, 0]),
        np.array([900, 2, 3]),
        np.array([5, 1, 0]),
        np.array([10**6] * 3),
    ):
        h = np.concatenate([x, sinusoidal_embedding(t, 6)], axis=1)
        expected = silu(h @ params["W0"] + params["b0"]) @ params["W1"] + params["b1"]
        np.testing.assert_allclose(model(x, t), expected, rtol=RTOL, atol=ATOL)


def test_output_shape_and_scalar_t_broadcasts():
    """MLP(x, t) has the shape of x; a scalar t means the same t for the whole batch; the
    denoiser view and __call__ agree with forward."""
    model = MLP(2, np.random.default_rng(0), hidden=(8, 8))
    x = np.random.default_rng(1).normal(size=(5, 2))
    out = model.forward(x, np.full(5, 7))
    assert out.shape == (5, 2)
    np.testing.assert_array_equal(model(x, 7), out)
    np.testing.assert_array_equal(model.denoiser(x, np.full(5, 7)), out)


def test_init_is_deterministic_given_the_generator():
    """Two models built from generators with the same seed have identical parameters;
    different seeds give different ones."""
    a = MLP(2, np.random.default_rng(3)).state_dict()
    b = MLP(2, np.random.default_rng(3)).state_dict()
    c = MLP(2, np.random.default_rng(4)).state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["W0"], c["W0"])


def test_he_init_variance_matches_two_over_fan_in():
    """Hidden weights are N(0, 2 / fan_in) (He et al. 2015): the sample variance of the
    128 x 128 matrix W1 lies within 4 standard errors of 2/128 (the standard error of a
    sample variance of n normal draws is sigma^2 sqrt(2 / (n - 1)))."""
    weights = MLP(2, np.random.default_rng(0), hidden=(128, 128)).params["W1"]
    expected = 2.0 / 128
    standard_error = expected * np.sqrt(2.0 / (weights.size - 1))
    assert abs(weights.var() - expected) < N_STANDARD_ERRORS * standard_error
    assert weights.shape == (128, 128)


def test_state_dict_round_trip_reproduces_the_outputs():
    """Loading one model's state_dict into another of the same architecture makes their
    outputs equal; the state_dict is a copy, so changing it leaves the model unchanged."""
    source = MLP(2, np.random.default_rng(0), hidden=(16, 16))
    target = MLP(2, np.random.default_rng(1), hidden=(16, 16))
    x, t = np.random.default_rng(2).normal(size=(4, 2)), np.arange(4)
    state = source.state_dict()
    target.load_state_dict(state)
    np.testing.assert_array_equal(target(x, t), source(x, t))
    state["W0"] += 1.0
    np.testing.assert_array_equal(target(x, t), source(x, t))
    assert source.n_parameters() == sum(v.size for v in state.values())


def test_copy_is_independent():
    """A copy starts equal to the original and does not follow later changes to it."""
    model = MLP(2, np.random.default_rng(0), hidden=(4,))
    clone = model.copy()
    x, t = np.ones((1, 2)), np.array([3])
    np.testing.assert_array_equal(clone(x, t), model(x, t))
    model.params["b1"] += 1.0
    assert not np.array_equal(clone(x, t), model(x, t))


def test_bad_inputs_raise_errors_naming_the_argument():
    """Wrong shapes, non-integer t, unknown activations, mismatched state dicts and a
    backward pass without a forward pass raise errors naming what is wrong."""
    rng = np.random.default_rng(0)
    model = MLP(2, rng, hidden=(4,))
    with pytest.raises(ValueError, match="x must have shape"):
        model(np.zeros((3, 3)), np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="t must be an integer"):
        model(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="t must have shape"):
        model(np.zeros((3, 2)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="t must be >= 0"):
        model(np.zeros((1, 2)), np.array([-1]))
    with pytest.raises(ValueError, match="activation"):
        MLP(2, rng, activation="relu")
    with pytest.raises(ValueError, match="hidden"):
        MLP(2, rng, hidden=())
    with pytest.raises(ValueError, match="embed_dim"):
        MLP(2, rng, embed_dim=3)
    with pytest.raises(TypeError, match="rng"):
        MLP(2, 0)
    with pytest.raises(ValueError, match="keys"):
        model.load_state_dict({"W0": np.zeros((6, 4))})
    with pytest.raises(RuntimeError, match="forward"):
        MLP(2, rng, hidden=(4,)).backward(np.zeros((1, 2)))
    model.forward(np.zeros((3, 2)), 1)
    with pytest.raises(ValueError, match="grad_out"):
        model.backward(np.zeros((2, 2)))
