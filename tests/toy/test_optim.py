"""Tests of Adam (Kingma & Ba 2015, Algorithm 1), gradient clipping and the weight EMA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.toy.optim import Adam, clip_grad_norm, ema_update, global_norm
from tests.strategies import arrays
from tests.tolerances import ATOL, RTOL


def adam_by_hand(
    gradient_of, theta0: float, steps: int, lr: float, beta1: float, beta2: float, eps: float
):
    """Scalar Adam written from the closed forms of the bias-corrected moments,
    m_hat_t = sum_i (1 - b1) b1^(t-i) g_i / (1 - b1^t) and likewise v_hat_t with g_i^2
    (Kingma & Ba 2015, sec. 3), rather than from the recursions the optimizer uses."""
    theta, gradients, path = theta0, [], []
    for t in range(1, steps + 1):
        gradients.append(gradient_of(theta))
        m_hat = sum((1 - beta1) * beta1 ** (t - i) * g for i, g in enumerate(gradients, 1)) / (
            1 - beta1**t
        )
        v_hat = sum((1 - beta2) * beta2 ** (t - i) * g * g for i, g in enumerate(gradients, 1)) / (
            1 - beta2**t
        )
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(theta)
    return path


def test_adam_matches_hand_computation_on_a_quadratic():
    """On f(theta) = a/2 (theta - c)^2 the first five Adam iterates equal the closed-form
    moment sums computed by hand, for each coordinate of a parameter vector."""
    a, c = np.array([0.5, 3.0, 10.0]), np.array([1.0, -2.0, 0.25])
    theta = np.array([4.0, 0.5, -1.0])
    lr, betas, eps = 0.1, (0.9, 0.999), 1e-8
    params = {"theta": theta.copy()}
    optimizer = Adam(params, lr=lr, betas=betas, eps=eps)
    iterates = []
    for _ in range(5):
        optimizer.step({"theta": a * (params["theta"] - c)})
        iterates.append(params["theta"].copy())
    for k in range(3):
        expected = adam_by_hand(lambda x, k=k: a[k] * (x - c[k]), theta[k], 5, lr, *betas, eps)
        np.testing.assert_allclose([it[k] for it in iterates], expected, rtol=RTOL, atol=ATOL)
    assert optimizer.t == 5


def test_adam_first_step_worked_example():
    """Worked by hand: with g_1 = 2, m_1 = 0.2, v_1 = 0.004, m_hat = 2, v_hat = 4, so the
    first step is -lr * 2 / (2 + eps); a second gradient g_2 = -1 gives m_2 = 0.08,
    v_2 = 0.004996, m_hat = 0.08 / 0.19, v_hat = 0.004996 / 0.001999."""
    params = {"w": np.array([1.0])}
    optimizer = Adam(params, lr=0.5, eps=1e-8)
    optimizer.step({"w": np.array([2.0])})
    step1 = 1.0 - 0.5 * 2.0 / (2.0 + 1e-8)
    np.testing.assert_allclose(params["w"], [step1], rtol=RTOL, atol=ATOL)
    optimizer.step({"w": np.array([-1.0])})
    m_hat, v_hat = 0.08 / 0.19, 0.004996 / (1 - 0.999**2)
    np.testing.assert_allclose(
        params["w"], [step1 - 0.5 * m_hat / (np.sqrt(v_hat) + 1e-8)], rtol=RTOL, atol=ATOL
    )


@given(
    grad=arrays(shape=(12,), scale=1e3).filter(lambda g: np.all(g != 0)),
    lr=st.floats(1e-6, 1.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
)
def test_adam_first_step_is_lr_times_sign_of_gradient(grad, lr, beta1, beta2):
    """After bias correction m_hat_1 = g and v_hat_1 = g^2, so the first step is
    -lr g / (|g| + eps): lr * sign(g) up to lr * eps / (|g| + eps), for any betas."""
    theta0 = np.linspace(-1.0, 1.0, grad.size)
    params = {"theta": theta0.copy()}
    Adam(params, lr=lr, betas=(beta1, beta2), eps=1e-8).step({"theta": grad})
    step = params["theta"] - theta0
    bound = lr * 1e-8 / (np.abs(grad) + 1e-8) + 4 * np.finfo(float).eps * (1 + lr)
    assert np.all(np.abs(step + lr * np.sign(grad)) <= bound)


def test_adam_converges_on_an_ill_conditioned_quadratic():
    """On f = sum_i a_i/2 (theta_i - c_i)^2 with curvatures a_i spanning 1e-2..1e2, Adam
    (lr 0.01, default betas) reaches every minimiser c_i to within 1e-3 in 5,000 steps:
    Adam's steps are invariant to the gradient scale, so every coordinate, flat or steep,
    moves at about lr per step until it is near its minimum."""
    a = np.logspace(-2, 2, 6)
    c = np.linspace(-3.0, 3.0, 6)
    params = {"theta": np.zeros(6) + 5.0}
    optimizer = Adam(params, lr=0.01)
    for _ in range(5000):
        optimizer.step({"theta": a * (params["theta"] - c)})
    np.testing.assert_allclose(params["theta"], c, rtol=0, atol=1e-3)


def test_adam_weight_decay_adds_an_l2_penalty():
    """With weight decay lambda the gradient is g + lambda theta, so for the linear loss
    f = b theta Adam converges to the minimiser of b theta + lambda/2 theta^2: -b/lambda."""
    b, weight_decay = np.array([0.3, -0.6]), 0.5
    params = {"theta": np.zeros(2)}
    optimizer = Adam(params, lr=0.01, weight_decay=weight_decay)
    for _ in range(5000):
        optimizer.step({"theta": b.copy()})
    np.testing.assert_allclose(params["theta"], -b / weight_decay, rtol=0, atol=1e-3)


@given(
    grads=st.lists(arrays(shape=(3,), scale=100.0), min_size=1, max_size=3),
    max_norm=st.floats(1e-3, 1e3),
)
def test_clip_grad_norm_caps_the_global_norm_and_keeps_the_direction(grads, max_norm):
    """After clipping, the global norm is min(||g||, max_norm) and every gradient is the
    original times the same factor in (0, 1]."""
    grads = {f"p{i}": g for i, g in enumerate(grads)}
    clipped, norm = clip_grad_norm(grads, max_norm)
    np.testing.assert_allclose(norm, global_norm(grads), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(global_norm(clipped), min(norm, max_norm), rtol=RTOL, atol=ATOL)
    scale = 1.0 if norm <= max_norm else max_norm / norm
    for name in grads:
        np.testing.assert_allclose(clipped[name], scale * grads[name], rtol=RTOL, atol=ATOL)


@given(
    start=arrays(shape=(4,)),
    target=arrays(shape=(4,)),
    decay=st.floats(0.0, 1.0),
    k=st.integers(0, 20),
)
def test_ema_of_a_constant_decays_geometrically(start, target, decay, k):
    """Averaging toward constant parameters theta for k steps gives
    theta + decay^k (ema_0 - theta)."""
    ema = {"w": start.copy()}
    for _ in range(k):
        ema_update(ema, {"w": target}, decay)
    np.testing.assert_allclose(ema["w"], target + decay**k * (start - target), rtol=1e-9, atol=1e-9)


def test_bad_arguments_raise_errors_naming_them():
    """Invalid learning rates, betas, eps, decays and mismatched gradients are rejected."""
    params = {"w": np.zeros(2)}
    for kwargs, match in [
        ({"lr": -1.0}, "lr"),
        ({"betas": (1.0, 0.9)}, "betas"),
        ({"eps": 0.0}, "eps"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ]:
        with pytest.raises(ValueError, match=match):
            Adam(params, **kwargs)
    with pytest.raises(ValueError, match="params"):
        Adam({})
    with pytest.raises(TypeError, match="float64"):
        Adam({"w": np.zeros(2, dtype=np.float32)})
    optimizer = Adam(params)
    with pytest.raises(ValueError, match="keys"):
        optimizer.step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match="shape"):
        optimizer.step({"w": np.zeros(3)})
    with pytest.raises(ValueError, match="decay"):
        ema_update(params, params, 1.5)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(params, 0.0)
