"""Proofs for minidiff.toy.sampling: the ancestral and DDIM samplers checked against the
exact Gaussian-mixture oracle (their grid and variances are proved in tests/process)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.process import (
    SPACINGS,
    ddim_posterior_mean_var,
    linear_schedule,
    posterior_mean_var,
    reverse_variance,
    sampling_timesteps,
    x0_from_eps,
)
from minidiff.toy.datasets import eight_gaussians_mixture
from minidiff.toy.metrics import mmd
from minidiff.toy.sampling import sample_ancestral, sample_ddim
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL, ATOL_LOOSE, N_STANDARD_ERRORS, RTOL, RTOL_LOOSE

# -- the samplers against the exact oracle ------------------------------------------

MIXTURE = eight_gaussians_mixture()  # 8 modes of std 0.1: a demanding multimodal target
SCHEDULE = linear_schedule(1000)
N = 800  # points per sample
R = 20  # null replicates
# Kernel widths at the scale of one mode (std 0.1), where a sampler's errors show first;
# the wide kernels of DEFAULT_BANDWIDTHS add null variance and little power here.
BANDWIDTHS = (0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def mmd_null():
    """A fixed exact reference sample Y and the bound on MMD^2(., Y) (unbiased, RBF widths
    BANDWIDTHS) for a sample of the mixture: the mean + 4 standard deviations of
    MMD^2(X_r, Y) over R = 20 independent exact samples X_r of size N = 800 (fixed seeds).
    Conditionally on Y, an exact sampler's output is exchangeable with the X_r."""
    reference = MIXTURE.sample(N, np.random.default_rng(1000))
    null = np.array(
        [
            mmd(MIXTURE.sample(N, np.random.default_rng(2000 + r)), reference, BANDWIDTHS)
            for r in range(R)
        ]
    )
    return reference, null.mean() + N_STANDARD_ERRORS * null.std(ddof=1)


def starting_noise(seed=1):
    """x_T ~ N(0, I): (N, 2). For the linear schedule alpha_bar_T = 4e-5, so N(0, I) is
    q(x_T) up to a shift of the means by 0.009."""
    return np.random.default_rng(seed).standard_normal((N, 2))


def test_ancestral_sampling_with_the_exact_denoiser_reproduces_the_mixture(mmd_null):
    """Algorithm 2 with T = 1000 (linear schedule, fixed_small) and the exact eps of the
    8-Gaussian mixture: MMD^2 to the reference is below the null's mean + 4 sd."""
    reference, bound = mmd_null
    x0 = sample_ancestral(
        MIXTURE.denoiser(SCHEDULE), SCHEDULE, starting_noise(), np.random.default_rng(2)
    )
    assert mmd(x0, reference, BANDWIDTHS) <= bound


@pytest.mark.parametrize("eta, spacing", [(0.0, "uniform"), (1.0, "quadratic")])
def test_ddim_with_100_steps_and_the_exact_denoiser_reproduces_the_mixture(mmd_null, eta, spacing):
    """DDIM with 100 steps, eta = 0 (the deterministic sampler) and eta = 1 (stochastic,
    on the quadratic grid, finer near the data), with the exact eps: MMD^2 to the
    reference is below the null's mean + 4 sd."""
    reference, bound = mmd_null
    x0 = sample_ddim(
        MIXTURE.denoiser(SCHEDULE), SCHEDULE, starting_noise(), np.random.default_rng(3),
        steps=100, eta=eta, spacing=spacing,
    )  # fmt: skip
    assert mmd(x0, reference, BANDWIDTHS) <= bound


def test_mmd_bound_rejects_a_slightly_wrong_law(mmd_null):
    """The bound has power: exact samples of the 8 Gaussians with std 0.15 instead of 0.1,
    or with unequal mode weights (0.175 and 0.075), lie above it."""
    reference, bound = mmd_null
    wider = eight_gaussians_mixture(0.15).sample(N, np.random.default_rng(5))
    weights = np.repeat([0.175, 0.075], 4)
    unequal = (
        type(MIXTURE).isotropic(weights, MIXTURE.means, 0.1).sample(N, np.random.default_rng(6))
    )
    assert mmd(wider, reference, BANDWIDTHS) > bound
    assert mmd(unequal, reference, BANDWIDTHS) > bound


# -- determinism, noise order and the eta = 1 identity ------------------------------


def test_ddim_with_eta_zero_is_deterministic_and_draws_no_noise():
    """eta = 0: the same x_T gives the same x_0 whatever the rng, and the rng is not used."""
    denoiser = MIXTURE.denoiser(SCHEDULE)
    x_T = starting_noise()[:64]
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    first = sample_ddim(denoiser, SCHEDULE, x_T, rng, steps=50)
    second = sample_ddim(denoiser, SCHEDULE, x_T, np.random.default_rng(8), steps=50)
    np.testing.assert_array_equal(first, second)
    assert rng.bit_generator.state == state


def test_ddim_with_eta_one_on_the_full_grid_equals_ancestral_sampling():
    """eta = 1 and steps = T: sigma_t(1)^2 = beta_tilde_t (DDIM eq. 16 with t_prev = t - 1)
    and eq. 12's mean is the posterior mean, and both samplers draw z at t = T, ..., 2 in
    that order: with the same seed they agree to round-off (T = 1000, 8-Gaussian oracle)."""
    denoiser = MIXTURE.denoiser(SCHEDULE)
    x_T = starting_noise()[:64]
    ancestral = sample_ancestral(denoiser, SCHEDULE, x_T, np.random.default_rng(9))
    ddim = sample_ddim(denoiser, SCHEDULE, x_T, np.random.default_rng(9), eta=1.0)
    np.testing.assert_allclose(ddim, ancestral, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@given(schedules(max_T=30), gaussian_mixtures(), st.integers(0, 2**32 - 1))
def test_ddim_with_eta_one_equals_ancestral_for_any_schedule(schedule, mixture, seed):
    """The same identity for arbitrary valid schedules and random mixtures (T <= 30)."""
    denoiser = mixture.denoiser(schedule)
    x_T = np.random.default_rng(seed).standard_normal((8, mixture.D))
    ancestral = sample_ancestral(denoiser, schedule, x_T, np.random.default_rng(seed + 1))
    ddim = sample_ddim(denoiser, schedule, x_T, np.random.default_rng(seed + 1), eta=1.0)
    np.testing.assert_allclose(ddim, ancestral, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


class RecordingDenoiser:
    """A test double: returns eps = x_t / 2 and records the steps it is called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, xt, t):
        self.calls.append(np.array(t))
        return 0.5 * xt


@given(schedules(max_T=20), st.integers(0, 2**32 - 1))
def test_ancestral_sampling_is_algorithm_2_with_one_draw_per_step(schedule, seed):
    """sample_ancestral equals Algorithm 2 written out here: the denoiser is called with
    t_batch = full(B, t) for t = T, ..., 1, x_{t-1} = mu_tilde_t(x_t, x0-hat) + sigma_t z
    with z = rng.standard_normal(x.shape) drawn once for each t = T, ..., 2, and no noise
    at t = 1; afterwards the rng has made exactly those T - 1 draws."""
    B, T = 5, schedule.T
    x_T = np.random.default_rng(seed).standard_normal((B, 3))
    denoiser = RecordingDenoiser()
    rng = np.random.default_rng(seed + 1)
    result = sample_ancestral(denoiser, schedule, x_T, rng, variance="fixed_large")

    replay = np.random.default_rng(seed + 1)
    sigma = np.sqrt(reverse_variance(schedule, "fixed_large"))
    x = x_T.copy()
    for t in range(T, 0, -1):
        eps = 0.5 * x
        x0 = (x - schedule.sqrt_one_minus_alpha_bar[t] * eps) / schedule.sqrt_alpha_bar[t]
        mean = posterior_mean_var(schedule, x0, x, t)[0]
        x = mean + sigma[t] * replay.standard_normal(x.shape) if t > 1 else mean
    np.testing.assert_allclose(result, x, rtol=RTOL, atol=ATOL)
    assert rng.bit_generator.state == replay.bit_generator.state
    assert [int(c[0]) for c in denoiser.calls] == list(range(T, 0, -1))
    assert all(c.shape == (B,) and np.all(c == c[0]) for c in denoiser.calls)


# -- robustness ----------------------------------------------------------------------


@given(
    schedules(max_T=30),
    gaussian_mixtures(),
    st.sampled_from(["fixed_small", "fixed_large"]),
    st.floats(0.0, 1.0),
    st.sampled_from(SPACINGS),
    st.sampled_from([None, 1.0, 3.0]),
    st.data(),
)
def test_samplers_with_the_exact_denoiser_never_produce_nan(
    schedule, mixture, variance, eta, spacing, clip_x0, data
):
    """For any valid schedule (T <= 30), mixture and options, both samplers return finite
    samples (and no floating-point overflow or invalid operation is raised)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    denoiser = mixture.denoiser(schedule)
    x_T = rng.standard_normal((16, mixture.D))
    steps = data.draw(st.integers(1, schedule.T))
    ancestral = sample_ancestral(denoiser, schedule, x_T, rng, variance=variance, clip_x0=clip_x0)
    ddim = sample_ddim(
        denoiser, schedule, x_T, rng, steps=steps, eta=eta, spacing=spacing, clip_x0=clip_x0
    )
    assert np.all(np.isfinite(ancestral)) and np.all(np.isfinite(ddim))


def test_trajectories_have_the_documented_layout():
    """Both in the order of sampling, as the torch samplers: ancestral (T + 1, B, D) with
    trajectory[T - t] = x_t; DDIM (steps + 1, B, D) with trajectory[i] the state at
    sampling_timesteps(schedule, steps)[i] (the default spacing); trajectory[0] = x_T,
    trajectory[-1] = x_0."""
    schedule = linear_schedule(50)
    denoiser = MIXTURE.denoiser(schedule)
    x_T = starting_noise()[:10]
    x0, trajectory = sample_ancestral(
        denoiser, schedule, x_T, np.random.default_rng(0), return_trajectory=True
    )
    assert trajectory.shape == (51, 10, 2)
    np.testing.assert_array_equal(trajectory[0], x_T)
    np.testing.assert_array_equal(trajectory[-1], x0)
    x0, trajectory = sample_ddim(
        denoiser, schedule, x_T, np.random.default_rng(0), steps=7, eta=0.5, return_trajectory=True
    )
    assert trajectory.shape == (8, 10, 2)
    np.testing.assert_array_equal(trajectory[0], x_T)
    np.testing.assert_array_equal(trajectory[-1], x0)
    # the last jump, grid[-2] -> 0, adds no noise: x_0 is DDIM's eq. 7 mean at trajectory[-2]
    t = np.full(10, sampling_timesteps(schedule, 7)[-2])
    x0_hat = x0_from_eps(schedule, trajectory[-2], t, denoiser(trajectory[-2], t))
    mean, _ = ddim_posterior_mean_var(schedule, x0_hat, trajectory[-2], t, 0, 0.0)
    np.testing.assert_allclose(trajectory[-1], mean, rtol=RTOL, atol=ATOL)


def test_samplers_leave_x_T_unchanged_and_show_progress_without_changing_results():
    """x_T is not modified, and progress=True (a tqdm bar) gives the same samples."""
    schedule = linear_schedule(20)
    denoiser = MIXTURE.denoiser(schedule)
    x_T = starting_noise()[:10]
    copy = x_T.copy()
    quiet = sample_ancestral(denoiser, schedule, x_T, np.random.default_rng(0))
    loud = sample_ancestral(denoiser, schedule, x_T, np.random.default_rng(0), progress=True)
    np.testing.assert_array_equal(quiet, loud)
    np.testing.assert_array_equal(
        sample_ddim(denoiser, schedule, x_T, np.random.default_rng(0), steps=5),
        sample_ddim(denoiser, schedule, x_T, np.random.default_rng(0), steps=5, progress=True),
    )
    np.testing.assert_array_equal(x_T, copy)


@pytest.mark.parametrize("sampler", [sample_ancestral, sample_ddim])
def test_clipping_keeps_the_final_sample_in_range(sampler):
    """With clip_x0 = c the last step returns the clipped x0-hat itself (the posterior mean
    at t = 1, and eq. 12 at t_prev = 0, have coefficient 1 on x0-hat and 0 on x_t), so
    x_0 lies in [-c, c]."""
    schedule = linear_schedule(30)
    x0 = sampler(
        MIXTURE.denoiser(schedule),
        schedule,
        3 * starting_noise()[:50],
        np.random.default_rng(0),
        clip_x0=0.5,
    )
    assert np.all(np.abs(x0) <= 0.5)


def test_samplers_reject_bad_arguments():
    """A non-Generator rng (TypeError), x_T without a batch axis, an unknown variance, a
    non-positive clip_x0 and a denoiser output of the wrong shape (ValueError)."""
    schedule = linear_schedule(5)
    denoiser = MIXTURE.denoiser(schedule)
    x_T = np.zeros((4, 2))
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="rng"):
        sample_ancestral(denoiser, schedule, x_T, 0)
    with pytest.raises(ValueError, match="x_T"):
        sample_ddim(denoiser, schedule, np.zeros(4), rng)
    with pytest.raises(ValueError, match="variance"):
        sample_ancestral(denoiser, schedule, x_T, rng, variance="learned")
    with pytest.raises(ValueError, match="clip_x0"):
        sample_ddim(denoiser, schedule, x_T, rng, clip_x0=0.0)
    with pytest.raises(ValueError, match="shape"):
        sample_ancestral(lambda x, t: x[:, :1], schedule, x_T, rng)
