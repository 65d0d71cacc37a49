"""Proofs for minidiff.diffusion.sde: the probability-flow ODE (Euler = DDIM eta = 0;
Euler first order, Heun second order), the reverse SDE (Euler-Maruyama),
DPM-Solver++(2M) and (3M), checked against DDIM, a fine-step reference, the exact ODE
solution for Gaussian data and the exact mixture."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.diffusion.samplers import sample_ddim
from minidiff.diffusion.sde import (
    sample_dpm_solver_pp_2m,
    sample_dpm_solver_pp_3m,
    sample_ode,
    sample_sde,
)
from minidiff.process import SPACINGS, cosine_schedule, linear_schedule, sampling_timesteps
from minidiff.toy.mixture import GaussianMixture
from tests.diffusion.sampler_helpers import (
    SCHEDULE,
    assert_parameterizations_agree,
    assert_reproduces_mixture,
    exact,
    numpy_noise,
    starting_noise,
)
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL_LOOSE, RTOL_LOOSE

# -- identities -----------------------------------------------------------------------


@settings(max_examples=20)
@given(
    schedules(max_T=30, zero_terminal_snr=True),
    gaussian_mixtures(),
    st.sampled_from(SPACINGS),
    st.data(),
)
def test_euler_on_the_probability_flow_ode_is_ddim_with_eta_zero(schedule, mixture, spacing, data):
    """In y = x / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar) the ODE is
    dy / dsigma = eps, and an Euler step gives sqrt(alpha_bar_{t_prev}) x0_hat +
    sqrt(1 - alpha_bar_{t_prev}) eps_hat: sample_ode(method="euler") equals sample_ddim
    with eta = 0 on the same grid, to round-off (any schedule, v-prediction so that
    alpha_bar_T = 0 is allowed)."""
    steps = data.draw(st.integers(1, schedule.T))
    denoiser, diffusion = exact(schedule, "v", mixture=mixture)
    x_T = torch.from_numpy(np.random.default_rng(1).standard_normal((8, mixture.D)))
    ode = sample_ode(denoiser, diffusion, x_T, steps=steps, method="euler", spacing=spacing)
    ddim = sample_ddim(denoiser, diffusion, x_T, steps=steps, spacing=spacing)
    torch.testing.assert_close(ode, ddim, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=20)
@given(schedules(max_T=30), gaussian_mixtures(), st.sampled_from(SPACINGS), st.integers(1, 2))
def test_dpm_solver_pp_with_two_steps_or_fewer_is_ddim(schedule, mixture, spacing, steps):
    """The first-order DPM-Solver++ step sigma_{t_prev} / sigma_t x + alpha_{t_prev}
    (1 - e^{-h}) x0_hat is DDIM's eq. 12 with eta = 0, and with 1 or 2 steps both jumps
    are first order (the first has no history, the last ends at lambda = inf): equal to
    sample_ddim to round-off."""
    steps = min(steps, schedule.T)
    denoiser, diffusion = exact(schedule, mixture=mixture)
    x_T = torch.from_numpy(np.random.default_rng(0).standard_normal((8, mixture.D)))
    dpm = sample_dpm_solver_pp_2m(denoiser, diffusion, x_T, steps=steps, spacing=spacing)
    ddim = sample_ddim(denoiser, diffusion, x_T, steps=steps, spacing=spacing)
    torch.testing.assert_close(dpm, ddim, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=20)
@given(schedules(max_T=30, zero_terminal_snr=True), gaussian_mixtures(), st.sampled_from(SPACINGS),
       st.integers(1, 3))  # fmt: skip
def test_dpm_solver_pp_3m_with_three_steps_or_fewer_is_2m(schedule, mixture, spacing, steps):
    """DPM-Solver++(3M) needs three predictions for a third-order jump, and the last jump
    is first order: with 1 to 3 steps it is DPM-Solver++(2M), to round-off (any schedule,
    v-prediction so that alpha_bar_T = 0 is allowed)."""
    steps = min(steps, schedule.T)
    denoiser, diffusion = exact(schedule, "v", mixture=mixture)
    x_T = torch.from_numpy(np.random.default_rng(0).standard_normal((8, mixture.D)))
    three = sample_dpm_solver_pp_3m(denoiser, diffusion, x_T, steps=steps, spacing=spacing)
    two = sample_dpm_solver_pp_2m(denoiser, diffusion, x_T, steps=steps, spacing=spacing)
    torch.testing.assert_close(three, two, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=15)
@given(schedules(max_T=20), st.integers(0, 2**32 - 1))
def test_sde_is_euler_maruyama_written_out(schedule, seed):
    """sample_sde on the full grid equals the reverse VP SDE's Euler-Maruyama step
    written out here: x <- x + h (x / 2 + score) + sqrt(h) z with h = beta_t
    (= 1 - alpha_bar_t / alpha_bar_{t-1}), score = -eps / sqrt(1 - alpha_bar_t), z from
    the same stream for t = T, ..., 2 and none at t = 1."""
    denoiser, diffusion = exact(schedule)
    rng = np.random.default_rng(seed)
    x_T = rng.standard_normal((6, 2))
    result = sample_sde(
        denoiser,
        diffusion,
        torch.from_numpy(x_T),
        noise=numpy_noise(np.random.default_rng(seed + 1)),
    )
    replay = np.random.default_rng(seed + 1)
    x = x_T.copy()
    for t in range(schedule.T, 0, -1):
        eps = denoiser(torch.from_numpy(x), torch.full((6,), t)).numpy()
        beta = schedule.beta[t]
        x = x + beta * (x / 2 - eps / schedule.sqrt_one_minus_alpha_bar[t])
        if t > 1:
            x = x + np.sqrt(beta) * replay.standard_normal(x.shape)
    np.testing.assert_allclose(result.numpy(), x, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


# -- the exact denoiser reproduces the mixture ---------------------------------------


@pytest.mark.parametrize("name, sampler, options", [
    ("ode heun 50", sample_ode, {"steps": 50, "method": "heun"}),
    ("sde 500", sample_sde, {"steps": 500}),
    ("dpm-solver++ 50", sample_dpm_solver_pp_2m, {"steps": 50, "spacing": "quadratic"}),
    ("dpm-solver++ 20", sample_dpm_solver_pp_2m, {"steps": 20, "spacing": "quadratic"}),
    ("dpm-solver++(3m) 20", sample_dpm_solver_pp_3m, {"steps": 20, "spacing": "quadratic"}),
])  # fmt: skip
def test_samplers_with_the_exact_denoiser_reproduce_the_mixture(name, sampler, options):
    """Heun on the probability-flow ODE (50 jumps, 99 calls), Euler-Maruyama on the reverse
    SDE (500 steps), DPM-Solver++(2M) (20 and 50 steps) and (3M) (20 steps) on the quadratic
    grid with the exact
    eps of the 8-Gaussian mixture (linear schedule, T = 1000): MMD^2 to the reference is
    below the exact-vs-exact bound (mean + 4 sd of 20 null replicates)."""
    denoiser, diffusion = exact()
    x0 = sampler(
        denoiser, diffusion, starting_noise(), generator=torch.Generator().manual_seed(4), **options
    )
    assert_reproduces_mixture(x0)


# -- orders of convergence ------------------------------------------------------------

SMOOTH = GaussianMixture.isotropic([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], 0.5)
STEPS = np.array([10, 20, 40, 80])


@pytest.fixture(scope="module")
def ode_reference():
    """(denoiser, diffusion, x_T, x_0): the ODE solved with Heun on all 1000 steps from a
    fixed x_T (200 points), for a smooth two-Gaussian mixture (std 0.5): a reference far
    more accurate than the coarse solutions compared with it."""
    denoiser, diffusion = exact(SCHEDULE, mixture=SMOOTH)
    x_T = starting_noise(200, seed=11)
    return denoiser, diffusion, x_T, sample_ode(denoiser, diffusion, x_T, steps=1000, method="heun")


def fitted_order(errors) -> float:
    """-slope of log(error) against log(steps)."""
    return -np.polyfit(np.log(STEPS), np.log(errors), 1)[0]


@pytest.mark.parametrize("method, spacing, low, high", [
    ("euler", "uniform", 0.8, 1.3),
    ("heun", "uniform", 1.7, 2.5),
    ("dpm-solver++", "quadratic", 1.5, 2.6),
])  # fmt: skip
def test_ode_solvers_converge_at_their_order(ode_reference, method, spacing, low, high):
    """RMS distance to the fine-step reference (same x_T) at 10, 20, 40, 80 jumps: the
    fitted slope of log error against log steps lies in [0.8, 1.3] for Euler (first
    order) and [1.7, 2.5] for Heun (second order) on the uniform grid, and in [1.5, 2.6]
    for DPM-Solver++(2M) on the quadratic grid (second order; its first and last jumps are
    first order, which the slope tolerates). A smooth target keeps the solution in the
    asymptotic regime at these step counts."""
    denoiser, diffusion, x_T, reference = ode_reference
    errors = []
    for steps in STEPS:
        if method == "dpm-solver++":
            x0 = sample_dpm_solver_pp_2m(
                denoiser, diffusion, x_T, steps=int(steps), spacing=spacing
            )
        else:
            x0 = sample_ode(
                denoiser, diffusion, x_T, steps=int(steps), method=method, spacing=spacing
            )
        errors.append(float(((x0 - reference) ** 2).sum(dim=1).mean().sqrt()))
    assert low <= fitted_order(errors) <= high, errors


def _gaussian_trajectory_error(sampler, steps: int) -> float:
    """Largest |x - x_exact| over the grid points before the data, for 1-D Gaussian data
    N(0.7, 0.3^2), where the ODE's solution is x_t = sqrt(alpha_bar_t) mu + c sqrt(alpha_bar_t
    s^2 + 1 - alpha_bar_t), c fixed by x_T (cosine schedule, T = 4000, x0-prediction, grid
    uniform in log SNR)."""
    mu, s, schedule = 0.7, 0.3, cosine_schedule(4000)
    gaussian = GaussianMixture(np.ones(1), np.array([[mu]]), np.array([[[s * s]]]))
    denoiser, diffusion = exact(schedule, "x0", mixture=gaussian)
    x_T = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)[:, None]
    _, trajectory = sampler(denoiser, diffusion, x_T, steps=steps, spacing="logsnr",
                            return_trajectory=True)  # fmt: skip
    grid = sampling_timesteps(schedule, steps, "logsnr")
    alpha_bar = schedule.alpha_bar[grid][:, None, None]
    spread = np.sqrt(alpha_bar * s * s + 1 - alpha_bar)
    c = (x_T.numpy() - np.sqrt(alpha_bar[0]) * mu) / spread[0]
    exact_path = np.sqrt(alpha_bar) * mu + c * spread
    return float(np.abs(trajectory.numpy() - exact_path)[1:-1].max())


@pytest.mark.parametrize("sampler, low, high", [
    (sample_dpm_solver_pp_2m, 3.0, 5.0),
    (sample_dpm_solver_pp_3m, 6.0, 10.0),
])  # fmt: skip
def test_dpm_solver_pp_error_falls_at_its_order_on_gaussian_data(sampler, low, high):
    """Against the exact ODE solution for Gaussian data, doubling the steps from 32 to 64
    divides the largest error along the grid by about 2^2 = 4 for DPM-Solver++(2M) (in
    [3, 5]) and 2^3 = 8 for (3M) (in [6, 10]): second and third order."""
    ratio = _gaussian_trajectory_error(sampler, 32) / _gaussian_trajectory_error(sampler, 64)
    assert low <= ratio <= high, ratio


@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_dpm_solver_pp_2m_on_the_trailing_grid_is_diffusers_scheduler(steps):
    """An independent implementation: diffusers' DPMSolverMultistepScheduler (its defaults
    but timestep_spacing="trailing"; its timestep s is step s + 1 here, same betas), driven
    by the same exact denoiser from the same x_T, lands where the default
    sample_dpm_solver_pp_2m does, within diffusers' float32 tables (1e-5 on x_0 of size
    about 1.5)."""
    import diffusers

    denoiser, diffusion = exact()
    x_T = torch.from_numpy(np.random.default_rng(0).standard_normal((50, 2)))
    scheduler = diffusers.DPMSolverMultistepScheduler(
        trained_betas=SCHEDULE.beta[1:], timestep_spacing="trailing"
    )
    scheduler.set_timesteps(steps)
    x = x_T.clone()
    for s in scheduler.timesteps:
        x = scheduler.step(denoiser(x, torch.full((50,), int(s) + 1)), s, x).prev_sample
    ours = sample_dpm_solver_pp_2m(denoiser, diffusion, x_T, steps=steps)
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)


# -- parameterizations and robustness -------------------------------------------------


@pytest.mark.parametrize("sampler, options", [
    (sample_ode, {"steps": 10, "method": "heun"}),
    (sample_sde, {"steps": 20}),
    (sample_dpm_solver_pp_2m, {"steps": 10}),
    (sample_dpm_solver_pp_3m, {"steps": 10}),
])  # fmt: skip
def test_eps_x0_and_v_parameterizations_give_the_same_sampler(sampler, options):
    """With the exact oracle in each parameterization, the same x_T and generator seed
    give the same samples to round-off (linear schedule, T = 50)."""
    assert_parameterizations_agree(sampler, options)


@settings(max_examples=25)
@given(schedules(max_T=12, zero_terminal_snr=True), st.data())
def test_float32_ode_sde_and_dpm_solver_are_finite_for_any_schedule(schedule, data):
    """float32, any schedule with T <= 12 (cosine at a few steps, zero terminal SNR
    included; x0 or v prediction where alpha_bar_T = 0): Heun, Euler-Maruyama and
    DPM-Solver++(2M) and (3M) return finite samples, and the SDE's step variances h lie
    in [0, 1]."""
    parameterization = data.draw(
        st.sampled_from(["x0", "v"] if schedule.alpha_bar[-1] == 0 else ["eps", "x0", "v"])
    )
    steps = data.draw(st.integers(1, schedule.T))
    spacing = data.draw(st.sampled_from(SPACINGS))
    grid = sampling_timesteps(schedule, steps, spacing)
    h = -np.expm1(schedule.log_alpha_bar[grid[:-1]] - schedule.log_alpha_bar[grid[1:]])
    assert np.all((h >= 0) & (h <= 1))
    denoiser, diffusion = exact(schedule, parameterization)
    generator = torch.Generator().manual_seed(0)
    options = dict(steps=steps, spacing=spacing, dtype=torch.float32, generator=generator)
    for sampler in (sample_ode, sample_sde, sample_dpm_solver_pp_2m, sample_dpm_solver_pp_3m):
        x0 = sampler(denoiser, diffusion, (32, 2), **options)
        assert x0.dtype == torch.float32 and bool(torch.isfinite(x0).all()), sampler.__name__


def test_heun_counts_and_rejects_bad_arguments():
    """Heun calls the denoiser 2 steps - 1 times (the last jump is Euler); an unknown
    method raises ValueError; eps-prediction at alpha_bar_T = 0 raises ValueError."""
    from minidiff.process import rescale_zero_terminal_snr

    denoiser, diffusion = exact(linear_schedule(20))
    calls = []

    def counting(xt, t):
        calls.append(int(t[0]))
        return denoiser(xt, t)

    sample_ode(counting, diffusion, (4, 2), steps=5, method="heun")
    assert len(calls) == 2 * 5 - 1
    with pytest.raises(ValueError, match="method"):
        sample_ode(denoiser, diffusion, (4, 2), method="rk4")
    zero = rescale_zero_terminal_snr(linear_schedule(10))
    denoiser, diffusion = exact(zero, "eps")
    for sampler in (sample_ode, sample_sde, sample_dpm_solver_pp_2m, sample_dpm_solver_pp_3m):
        with pytest.raises(ValueError, match="zero terminal SNR"):
            sampler(denoiser, diffusion, (4, 2), steps=5)
