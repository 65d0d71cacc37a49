"""Proofs for minidiff.diffusion.flow_matching: the linear path and its velocity, the exact
velocity of a Gaussian mixture (minimiser of the loss, equal to the score formula), the
flow ODE on the linear path and DDIM (eta = 0) as one ODE, the orders of the Euler and
Heun samplers, and the exact flow reproducing the mixture."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.diffusion.flow_matching import (
    exact_velocity,
    flow_matching_loss,
    flow_matching_loss_terms,
    flow_times,
    linear_path,
    sample_flow,
    velocity_target,
)
from minidiff.nn.mlp import ToyMLP
from minidiff.process import Schedule
from minidiff.toy.datasets import eight_gaussians_mixture
from minidiff.toy.metrics import mmd
from minidiff.toy.mixture import GaussianMixture
from minidiff.toy.sampling import sample_ddim
from tests.strategies import gaussian_mixtures
from tests.tolerances import ATOL, ATOL_LOOSE, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE

# -- the path and the loss ---------------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.floats(1e-3, 1.0))
def test_linear_path_joins_data_to_noise_with_velocity_eps_minus_x0(seed, t, h):
    """x_0 = data, x_1 = eps, and the path is a straight line:
    x_{t'} - x_t = (t' - t) (eps - x_0) for any t, t' (so d x_t / dt = eps - x_0)."""
    generator = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    ones = torch.ones(5, dtype=torch.float64)
    np.testing.assert_array_equal(linear_path(x0, 0 * ones, eps), x0)
    np.testing.assert_array_equal(linear_path(x0, ones, eps), eps)
    step = linear_path(x0, (t + h) * ones, eps) - linear_path(x0, t * ones, eps)
    np.testing.assert_allclose(step, h * velocity_target(x0, eps), rtol=1e-9, atol=1e-12)


def test_flow_matching_loss_draws_t_then_eps_from_the_generator():
    """flow_matching_loss = the mean of flow_matching_loss_terms at t ~ rand and eps ~ randn,
    drawn in that order."""
    mixture = eight_gaussians_mixture()
    velocity = exact_velocity(mixture)
    x0 = torch.from_numpy(mixture.sample(32, np.random.default_rng(0)))
    loss = flow_matching_loss(velocity, x0, generator=torch.Generator().manual_seed(4))
    replay = torch.Generator().manual_seed(4)
    t = torch.rand(32, generator=replay, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=replay, dtype=torch.float64)
    expected = flow_matching_loss_terms(velocity, x0, t, eps).mean()
    np.testing.assert_allclose(float(loss), float(expected), rtol=RTOL, atol=ATOL)


def test_flow_matching_loss_terms_reject_bad_inputs():
    """t outside [0, 1], integer t or eps of the wrong shape raise ValueError."""
    x0 = torch.zeros(2, 2)

    def net(x, t):
        return torch.zeros_like(x)

    with pytest.raises(ValueError, match="t must lie"):
        flow_matching_loss_terms(net, x0, torch.tensor([0.5, 1.5]), x0)
    with pytest.raises(ValueError, match="t must be"):
        flow_matching_loss_terms(net, x0, torch.tensor([0, 1]), x0)
    with pytest.raises(ValueError, match="eps"):
        flow_matching_loss_terms(net, x0, torch.tensor([0.5, 0.5]), torch.zeros(2, 3))


# -- the exact velocity of a mixture ---------------------------------------------------------


@given(gaussian_mixtures(max_D=3), st.floats(0.01, 0.99), st.integers(0, 2**32 - 1))
def test_exact_velocity_equals_the_score_formula(mixture, t, seed):
    """On the linear path p_t = sum_k w_k N(a mu_k, a^2 Sigma_k + t^2 I), a = 1 - t, and
    Tweedie's formula gives E[eps | x] = -t grad log p_t(x) and
    E[x_0 | x] = (x + t^2 grad log p_t(x)) / a, so v = E[eps - x_0 | x] =
    -t score - (x + t^2 score) / a. exact_velocity (through the VP posterior mean at
    x / sqrt(a^2 + t^2)) agrees to round-off."""
    a = 1.0 - t
    p_t = GaussianMixture(
        mixture.weights, a * mixture.means, a**2 * mixture.covs + t**2 * np.eye(mixture.D)
    )
    x = np.random.default_rng(seed).normal(0.0, 2.0, size=(16, mixture.D))
    score = p_t.score(x)
    expected = -t * score - (x + t**2 * score) / a
    got = exact_velocity(mixture)(torch.from_numpy(x), torch.full((16,), t, dtype=torch.float64))
    scale = 1.0 + np.abs(x).max() / a
    np.testing.assert_allclose(got.numpy(), expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE * scale)


def test_exact_velocity_at_the_end_points():
    """v(x, 0) = -x (eps is independent of x_0) and v(x, 1) = x - E[x_0] (x_1 = eps carries
    no information on x_0)."""
    mixture = eight_gaussians_mixture()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 2)))
    velocity = exact_velocity(mixture)
    np.testing.assert_array_equal(velocity(x, torch.zeros(8, dtype=torch.float64)), -x)
    np.testing.assert_allclose(
        velocity(x, torch.ones(8, dtype=torch.float64)).numpy(), x.numpy() - mixture.mean,
        rtol=RTOL, atol=ATOL,
    )  # fmt: skip


@settings(max_examples=30)
@given(gaussian_mixtures(max_D=2), st.integers(0, 2**32 - 1))
def test_exact_velocity_minimises_the_flow_matching_loss(mixture, seed):
    """v* = E[eps - x_0 | x_t] minimises the loss: for a perturbation v = v* + g,
    E[l(v)] - E[l(v*)] = E||g(x_t, t)||^2 / D (the cross term E[(v* - u) . g] vanishes
    by the definition of v*). The paired per-example excess minus ||g||^2 / D has mean
    within 4 standard errors of 0 (4,000 draws of x_0, eps and t uniform on 16 points of
    [0.01, 0.99]: the oracle runs once per distinct t)."""
    rng = np.random.default_rng(seed)
    n = 4000
    x0 = torch.from_numpy(mixture.sample(n, rng))
    t = torch.from_numpy(rng.choice(np.linspace(0.01, 0.99, 16), size=n))  # 16 distinct times
    eps = torch.from_numpy(rng.standard_normal((n, mixture.D)))
    exact = exact_velocity(mixture)

    def g(x, t):
        return torch.sin(x) + t[:, None]

    def perturbed(x, t):
        return exact(x, t) + g(x, t)

    excess = flow_matching_loss_terms(perturbed, x0, t, eps) - flow_matching_loss_terms(
        exact, x0, t, eps
    )
    expected = g(linear_path(x0, t, eps), t).pow(2).mean(dim=1)
    difference = (excess - expected).numpy()
    error = difference.std(ddof=1) / np.sqrt(n)
    assert abs(difference.mean()) <= N_STANDARD_ERRORS * error


# -- the flow ODE and DDIM -------------------------------------------------------------------


def vp_schedule_of_linear_grid(times: np.ndarray) -> tuple[Schedule, np.ndarray]:
    """The VP schedule whose step k is the linear-path time times[k] (increasing, from 0):
    alpha_bar_k = a_k^2 / c_k^2 with a = 1 - t, c = sqrt(a^2 + t^2); and the c_k."""
    a = 1.0 - times
    c = np.hypot(a, times)
    return Schedule.from_alpha_bar((a / c) ** 2), c


@given(
    gaussian_mixtures(max_D=3),
    st.integers(1, 40),
    st.floats(0.3, 0.999),
    st.integers(0, 2**32 - 1),
)
def test_euler_flow_on_the_linear_path_is_ddim_on_the_vp_path(mixture, steps, t_start, seed):
    """Flow matching on the linear path and DDIM on the same Gaussian path are the same
    ODE: with the exact denoiser, Euler steps of dx/dt = v(x, t) from t_start to 0 on the
    grid t_k = t_start k / steps equal DDIM (eta = 0, Song et al. 2021, eq. 12) on the VP
    schedule alpha_bar_k = (1 - t_k)^2 / ((1 - t_k)^2 + t_k^2), after the change of
    variables x_vp = x_lin / sqrt((1 - t)^2 + t^2): both steps are
    x' = (t'/t) x + (1 - t'/t) E[x_0 | x_t]. Same x_T, same x_0, to round-off."""
    times = flow_times(steps, t_start)[::-1].copy()  # 0, ..., t_start
    schedule, c = vp_schedule_of_linear_grid(times)
    x_start = np.random.default_rng(seed).standard_normal((16, mixture.D))
    flow = sample_flow(exact_velocity(mixture), torch.from_numpy(x_start), steps, t_start=t_start)
    ddim = sample_ddim(
        mixture.denoiser(schedule, "eps"), schedule, x_start / c[-1],
        np.random.default_rng(0), steps=steps, eta=0.0,
    )  # fmt: skip
    np.testing.assert_allclose(flow.numpy(), ddim, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2)])
def test_sampler_error_shrinks_with_the_order_of_the_method(method, order):
    """For Gaussian data N(mu, s0^2 I) the exact flow map is x_0 = mu + s0 x_1 (the path
    x_t = a mu + sqrt(a^2 s0^2 + t^2) x_1 solves the ODE). Doubling the steps from 40 to 80
    divides the error by 2^order (within 25%): Euler is first order, Heun second."""
    mu, s0 = np.array([1.0, -0.5]), 0.3
    gaussian = GaussianMixture.isotropic([1.0], mu[None], s0)
    x1 = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 2)))
    exact = mu + s0 * x1.numpy()
    errors = [
        np.abs(sample_flow(exact_velocity(gaussian), x1, n, method=method).numpy() - exact).max()
        for n in (40, 80)
    ]
    assert 0.75 * 2**order <= errors[0] / errors[1] <= 1.25 * 2**order


def test_sample_flow_from_a_shape_draws_the_start_from_the_generator():
    """A shape starts from x_1 = randn(shape, generator): the same as passing that tensor."""
    velocity = exact_velocity(eight_gaussians_mixture())
    got = sample_flow(
        velocity, (10, 2), 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    x1 = torch.randn(10, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    np.testing.assert_array_equal(got, sample_flow(velocity, x1, 5))


def test_sample_flow_rejects_bad_arguments():
    """An unknown method, steps < 1 or t_start outside (0, 1] raise ValueError."""
    velocity = exact_velocity(eight_gaussians_mixture())
    x1 = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="method"):
        sample_flow(velocity, x1, 5, method="rk4")
    with pytest.raises(ValueError, match="steps"):
        sample_flow(velocity, x1, 0)
    with pytest.raises(ValueError, match="t_start"):
        sample_flow(velocity, x1, 5, t_start=1.5)


# -- the exact flow reproduces the mixture ----------------------------------------------------

MIXTURE = eight_gaussians_mixture()  # 8 modes of std 0.1, as in tests/toy/test_sampling.py
N = 800
R = 20
BANDWIDTHS = (0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def mmd_null():
    """The bound design of tests/toy/test_sampling.py: a fixed exact reference sample Y and
    the mean + 4 sd of MMD^2(X_r, Y) over R = 20 exact samples X_r of size N = 800."""
    reference = MIXTURE.sample(N, np.random.default_rng(1000))
    null = np.array(
        [
            mmd(MIXTURE.sample(N, np.random.default_rng(2000 + r)), reference, BANDWIDTHS)
            for r in range(R)
        ]
    )
    return reference, null.mean() + N_STANDARD_ERRORS * null.std(ddof=1)


def test_exact_flow_with_heun_reproduces_the_mixture(mmd_null):
    """The flow ODE with the exact velocity of the 8-Gaussian mixture, 50 Heun steps from
    x_1 ~ N(0, I) (exactly the law at t = 1): MMD^2 to the reference is below the null's
    mean + 4 sd; 3 Euler steps, far too coarse, land above it (the bound has power)."""
    reference, bound = mmd_null
    x1 = torch.from_numpy(np.random.default_rng(1).standard_normal((N, 2)))
    velocity = exact_velocity(MIXTURE)
    x0 = sample_flow(velocity, x1, 50, method="heun").numpy()
    assert mmd(x0, reference, BANDWIDTHS) <= bound
    coarse = sample_flow(velocity, x1, 3, method="euler").numpy()
    assert mmd(coarse, reference, BANDWIDTHS) > bound


def test_a_tiny_flow_network_approaches_the_minimum_loss():
    """A ToyMLP velocity network (time_scale = 1000) trained with flow_matching_loss for 300
    Adam steps on a 2-D mixture: on a fixed evaluation set, its excess loss over the exact
    velocity falls below half of the untrained network's, by more than 4 standard errors
    of the paired difference (evaluation times on the grid 0, 0.05, ..., 1)."""
    mixture = GaussianMixture.isotropic([0.3, 0.7], [[-1.5, 0.0], [1.5, 0.5]], 0.4)
    net = ToyMLP(2, (64, 64), 16, time_scale=1000.0, generator=torch.Generator().manual_seed(0))
    exact = exact_velocity(mixture)
    rng = np.random.default_rng(1)
    n = 4000
    x_eval = torch.from_numpy(mixture.sample(n, rng)).float()
    t = torch.from_numpy(rng.choice(np.linspace(0.0, 1.0, 21), size=n)).float()
    eps = torch.from_numpy(rng.standard_normal((n, 2))).float()

    def excess():
        with torch.no_grad():
            return flow_matching_loss_terms(net, x_eval, t, eps) - flow_matching_loss_terms(
                exact, x_eval, t, eps
            )

    before = excess()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    data = torch.from_numpy(mixture.sample(20_000, np.random.default_rng(2))).float()
    for _ in range(300):
        batch = data[torch.randint(0, data.shape[0], (256,), generator=generator)]
        loss = flow_matching_loss(net, batch, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    difference = (0.5 * before - excess()).double().numpy()
    error = difference.std(ddof=1) / np.sqrt(n)
    assert difference.mean() > N_STANDARD_ERRORS * error
