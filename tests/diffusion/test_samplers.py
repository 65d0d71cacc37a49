"""Proofs for minidiff.diffusion.samplers: the torch ancestral and DDIM samplers agree with
the NumPy ones, reproduce the mixture with the exact denoiser, DDIM is deterministic and
invertible and equals ancestral at eta = 1, and every parameterization gives the same
sampler."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.diffusion import GaussianDiffusion
from minidiff.diffusion.samplers import ddim_invert, sample_ancestral, sample_ddim
from minidiff.process import (
    SPACINGS,
    ddim_coefficients,
    linear_schedule,
    sampling_timesteps,
)
from minidiff.toy import sampling as numpy_sampling
from minidiff.toy.mixture import GaussianMixture
from tests.diffusion.sampler_helpers import (
    MIXTURE,
    SCHEDULE,
    assert_parameterizations_agree,
    assert_reproduces_mixture,
    exact,
    numpy_noise,
    starting_noise,
)
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL_LOOSE, RTOL_LOOSE

# -- torch against NumPy -------------------------------------------------------------


@settings(max_examples=20)
@given(
    schedules(max_T=30),
    gaussian_mixtures(),
    st.sampled_from(["fixed_small", "fixed_large"]),
    st.sampled_from([None, 1.0]),
    st.integers(0, 2**32 - 1),
)
def test_ancestral_matches_the_numpy_sampler(schedule, mixture, variance, clip_x0, seed):
    """Same eps denoiser (the exact oracle), same x_T, same draws (z = rng.standard_normal
    at t = T, ..., 2): torch `sample_ancestral` equals `minidiff.toy.sample_ancestral` to
    float64 round-off, for any schedule (T <= 30), mixture, variance and clipping."""
    denoiser, diffusion = exact(schedule, mixture=mixture, variance=variance)
    x_T = np.random.default_rng(seed).standard_normal((8, mixture.D))
    expected = numpy_sampling.sample_ancestral(
        mixture.denoiser(schedule), schedule, x_T, np.random.default_rng(seed + 1),
        variance=variance, clip_x0=clip_x0,
    )  # fmt: skip
    actual = sample_ancestral(
        denoiser, diffusion, torch.from_numpy(x_T), clip_x0=clip_x0,
        noise=numpy_noise(np.random.default_rng(seed + 1)),
    )  # fmt: skip
    np.testing.assert_allclose(actual.numpy(), expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=20)
@given(
    schedules(max_T=30),
    gaussian_mixtures(),
    st.sampled_from([0.0, 0.3, 1.0]),
    st.sampled_from(SPACINGS),
    st.sampled_from([None, 1.0]),
    st.data(),
)
def test_ddim_matches_the_numpy_sampler(schedule, mixture, eta, spacing, clip_x0, data):
    """Same denoiser, x_T and draws: torch `sample_ddim` equals `minidiff.toy.sample_ddim`
    to float64 round-off for eta = 0 (deterministic) and eta > 0, every spacing and any
    number of steps."""
    seed = data.draw(st.integers(0, 2**32 - 1))
    steps = data.draw(st.integers(1, schedule.T))
    denoiser, diffusion = exact(schedule, mixture=mixture)
    x_T = np.random.default_rng(seed).standard_normal((8, mixture.D))
    options = dict(steps=steps, eta=eta, spacing=spacing, clip_x0=clip_x0)
    expected = numpy_sampling.sample_ddim(
        mixture.denoiser(schedule), schedule, x_T, np.random.default_rng(seed + 1), **options
    )
    actual = sample_ddim(
        denoiser, diffusion, torch.from_numpy(x_T),
        noise=numpy_noise(np.random.default_rng(seed + 1)), **options,
    )  # fmt: skip
    np.testing.assert_allclose(actual.numpy(), expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


# -- the exact denoiser reproduces the mixture ---------------------------------------


def test_ancestral_with_the_exact_denoiser_reproduces_the_mixture():
    """Algorithm 2, T = 1000 (linear), exact eps of the 8-Gaussian mixture: MMD^2 to the
    reference below the exact-vs-exact bound (mean + 4 sd of 20 null replicates)."""
    denoiser, diffusion = exact()
    x0 = sample_ancestral(
        denoiser, diffusion, starting_noise(), generator=torch.Generator().manual_seed(2)
    )
    assert_reproduces_mixture(x0)


@pytest.mark.parametrize("eta, spacing", [(0.0, "uniform"), (1.0, "quadratic")])
def test_ddim_with_100_steps_and_the_exact_denoiser_reproduces_the_mixture(eta, spacing):
    """DDIM with 100 steps (eta = 0 uniform; eta = 1 quadratic), exact eps: MMD^2 below
    the exact-vs-exact bound."""
    denoiser, diffusion = exact()
    x0 = sample_ddim(
        denoiser, diffusion, starting_noise(), steps=100, eta=eta, spacing=spacing,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    assert_reproduces_mixture(x0)


# -- determinism, inversion, eta = 1 --------------------------------------------------


def test_ddim_with_eta_zero_is_deterministic_and_draws_no_noise():
    """eta = 0: the same x_T gives the same x_0 whatever the generator, and the generator
    is not advanced."""
    denoiser, diffusion = exact(linear_schedule(100))
    x_T = starting_noise(64)
    generator = torch.Generator().manual_seed(7)
    state = generator.get_state()
    first = sample_ddim(denoiser, diffusion, x_T, steps=20, generator=generator)
    second = sample_ddim(
        denoiser, diffusion, x_T, steps=20, generator=torch.Generator().manual_seed(8)
    )
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert torch.equal(generator.get_state(), state)


SMOOTH = GaussianMixture.isotropic([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], 0.5)


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_ddim_inversion_then_decoding_returns_the_input(parameterization):
    """ddim_invert then sample_ddim (eta = 0, the same 200-step grid of a T = 1000 linear
    schedule) returns x_0 within 10 / steps = 0.05 (max abs error; data scale 1, a
    two-Gaussian mixture of std 0.5): each jump's encoder evaluates eps at the lower state
    and the decoder at the upper one, an O(h^2) mismatch per jump and O(h) = O(1 / steps)
    over the round trip (the next test checks that order). x_T itself lies 5 times
    further from x_0 than that bound (mean abs difference)."""
    denoiser, diffusion = exact(SCHEDULE, parameterization, mixture=SMOOTH)
    x0 = torch.from_numpy(SMOOTH.sample(200, np.random.default_rng(4)))
    x_T = ddim_invert(denoiser, diffusion, x0, steps=200)
    decoded = sample_ddim(denoiser, diffusion, x_T, steps=200)
    assert float((decoded - x0).abs().max()) <= 10 / 200
    assert float((x_T - x0).abs().mean()) > 5 * 10 / 200  # the encoding is no identity


def test_ddim_inversion_round_trip_converges_at_first_order():
    """The round-trip error max |decode(invert(x_0)) - x_0| over 25, 50, 100, 200 steps
    falls like steps^-p with a fitted slope p in [0.8, 1.3]: the inversion converges to
    the ODE's exact inverse at the order of its Euler steps."""
    denoiser, diffusion = exact(SCHEDULE, mixture=SMOOTH)
    x0 = torch.from_numpy(SMOOTH.sample(100, np.random.default_rng(5)))
    grid = np.array([25, 50, 100, 200])
    errors = []
    for steps in grid:
        x_T = ddim_invert(denoiser, diffusion, x0, steps=int(steps))
        decoded = sample_ddim(denoiser, diffusion, x_T, steps=int(steps))
        errors.append(float((decoded - x0).abs().max()))
    slope = -np.polyfit(np.log(grid), np.log(errors), 1)[0]
    assert 0.8 <= slope <= 1.3, (errors, slope)


@settings(max_examples=15)
@given(schedules(max_T=30), gaussian_mixtures(), st.integers(0, 2**32 - 1))
def test_ddim_with_eta_one_on_consecutive_steps_equals_ancestral(schedule, mixture, seed):
    """eta = 1 on the full grid: sigma_t(1)^2 = beta_tilde_t and eq. 12's mean is the
    posterior mean, and both samplers draw z at t = T, ..., 2: with generators seeded
    alike they agree to round-off (ancestral with the posterior variance, fixed_small)."""
    denoiser, diffusion = exact(schedule, mixture=mixture)
    x_T = torch.from_numpy(np.random.default_rng(seed).standard_normal((8, mixture.D)))
    ancestral = sample_ancestral(
        denoiser, diffusion, x_T, generator=torch.Generator().manual_seed(seed)
    )
    ddim = sample_ddim(
        denoiser, diffusion, x_T, eta=1.0, generator=torch.Generator().manual_seed(seed)
    )
    torch.testing.assert_close(ddim, ancestral, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


# -- parameterizations ---------------------------------------------------------------


@pytest.mark.parametrize("sampler, options", [
    (sample_ancestral, {}),
    (sample_ddim, {"steps": 10, "eta": 0.0}),
    (sample_ddim, {"steps": 10, "eta": 0.5, "spacing": "trailing"}),
])  # fmt: skip
def test_eps_x0_and_v_parameterizations_give_the_same_sampler(sampler, options):
    """With the exact oracle in each parameterization (eps, x0, v), the same x_T and the
    same generator seed give the same samples to round-off (linear schedule, T = 50)."""
    assert_parameterizations_agree(sampler, options)


# -- float32 robustness, zero terminal SNR ------------------------------------------


@settings(max_examples=25)
@given(schedules(max_T=12, zero_terminal_snr=True), st.floats(0.0, 1.0), st.data())
def test_float32_samplers_are_finite_for_any_schedule(schedule, eta, data):
    """float32, any schedule with T <= 12 (zero terminal SNR included): the DDIM tables
    are finite with sigma >= 0 and sqrt(1 - alpha_bar_{t_prev} - sigma^2) >= 0, and
    ancestral and DDIM return finite samples. Where alpha_bar_T = 0 the x0 and v
    parameterizations are used (eps-prediction raises, see the next test)."""
    parameterization = data.draw(
        st.sampled_from(["x0", "v"] if schedule.alpha_bar[-1] == 0 else ["eps", "x0", "v"])
    )
    steps = data.draw(st.integers(1, schedule.T))
    spacing = data.draw(st.sampled_from(SPACINGS))
    grid = sampling_timesteps(schedule, steps, spacing)
    ddim = ddim_coefficients(schedule, grid[:-1], grid[1:], eta)
    for values in (ddim.signal, ddim.direction, ddim.sigma):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    denoiser, diffusion = exact(schedule, parameterization, variance="fixed_large")
    generator = torch.Generator().manual_seed(0)
    for x0 in (
        sample_ancestral(denoiser, diffusion, (32, 2), dtype=torch.float32, generator=generator),
        sample_ddim(denoiser, diffusion, (32, 2), steps=steps, eta=eta, spacing=spacing,
                    dtype=torch.float32, generator=generator),
    ):  # fmt: skip
        assert x0.dtype == torch.float32 and bool(torch.isfinite(x0).all())


def test_eps_prediction_at_zero_terminal_snr_raises_an_informative_error():
    """alpha_bar_T = 0: x_T = eps carries no information on x_0 and x0 = (x_T - eps) / 0;
    every sampler starting at T refuses eps-prediction with a ValueError naming the cause
    and the remedy (v or x0)."""
    from minidiff.process import rescale_zero_terminal_snr

    schedule = rescale_zero_terminal_snr(linear_schedule(10))
    denoiser, diffusion = exact(schedule, "eps")
    for sampler in (sample_ancestral, sample_ddim):
        with pytest.raises(ValueError, match="zero terminal SNR.*'v'"):
            sampler(denoiser, diffusion, (4, 2))


# -- interface -----------------------------------------------------------------------


def test_shape_or_x_T_and_the_documented_trajectory_layout():
    """A shape draws x_T = torch.randn(shape, generator) in the given dtype; a tensor is
    used as x_T and left unchanged. Trajectories: ancestral (T + 1, B, D) with
    trajectory[T - t] = x_t; DDIM (steps + 1, B, D) along the grid; [0] = x_T, [-1] = x_0;
    progress=True changes nothing."""
    denoiser, diffusion = exact(linear_schedule(20))
    drawn = sample_ddim(denoiser, diffusion, (5, 2), steps=4, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    x_T = torch.randn((5, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    copy = x_T.clone()
    given_start = sample_ddim(denoiser, diffusion, x_T, steps=4)
    torch.testing.assert_close(drawn, given_start, rtol=0, atol=0)
    torch.testing.assert_close(x_T, copy, rtol=0, atol=0)
    x0, trajectory = sample_ancestral(denoiser, diffusion, x_T, return_trajectory=True,
                                      generator=torch.Generator().manual_seed(2))  # fmt: skip
    assert trajectory.shape == (21, 5, 2)
    assert torch.equal(trajectory[0], x_T) and torch.equal(trajectory[-1], x0)
    x0, trajectory = sample_ddim(
        denoiser, diffusion, x_T, steps=4, return_trajectory=True, progress=True
    )
    assert trajectory.shape == (5, 5, 2) and torch.equal(trajectory[-1], x0)
    torch.testing.assert_close(x0, given_start, rtol=0, atol=0)


def test_samplers_reject_bad_arguments():
    """A diffusion that is not a GaussianDiffusion (TypeError), a bad shape, a
    non-positive clip_x0 and an unknown spacing (ValueError)."""
    denoiser, diffusion = exact(linear_schedule(5))
    with pytest.raises(TypeError, match="diffusion"):
        sample_ancestral(denoiser, SCHEDULE, (4, 2))
    with pytest.raises(ValueError, match="x_T"):
        sample_ddim(denoiser, diffusion, (4,))
    with pytest.raises(ValueError, match="clip_x0"):
        sample_ancestral(denoiser, diffusion, (4, 2), clip_x0=0.0)
    with pytest.raises(ValueError, match="spacing"):
        sample_ddim(denoiser, diffusion, (4, 2), spacing="cubic")
    with pytest.raises(ValueError, match="noise"):
        sample_ancestral(denoiser, diffusion, (4, 2), noise=lambda shape: torch.zeros(3))
    assert isinstance(diffusion, GaussianDiffusion)


@pytest.mark.parametrize("T", [4, 6, 10])
@pytest.mark.parametrize("kind", ["cosine", "cosine zero-snr", "linear zero-snr"])
def test_every_sampler_in_float32_is_finite_on_short_cosine_and_zero_snr_schedules(T, kind):
    """float32, v-prediction, T = 4, 6, 10: the cosine schedule (whose last beta is
    clipped at 0.999) and zero-terminal-SNR schedules (alpha_bar_T = 0, beta_T = 1): every
    sampler of minidiff.diffusion, on its full grid, returns finite samples."""
    from minidiff.diffusion.langevin import sample_annealed_langevin, sample_pc
    from minidiff.diffusion.sde import sample_dpm_solver_pp_2m, sample_ode, sample_sde
    from minidiff.process import cosine_schedule, rescale_zero_terminal_snr

    base = cosine_schedule(T) if kind.startswith("cosine") else linear_schedule(T)
    schedule = rescale_zero_terminal_snr(base) if kind.endswith("zero-snr") else base
    denoiser, diffusion = exact(schedule, "v")
    samplers = (
        sample_ancestral, sample_ddim, sample_ode, sample_sde, sample_dpm_solver_pp_2m,
        sample_pc, sample_annealed_langevin,
    )  # fmt: skip
    for sampler in samplers:
        steps = {} if sampler is sample_ancestral else {"steps": T}
        x0 = sampler(
            denoiser, diffusion, (64, 2), dtype=torch.float32,
            generator=torch.Generator().manual_seed(T), **steps,
        )  # fmt: skip
        assert bool(torch.isfinite(x0).all()), sampler.__name__


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_torch_and_numpy_trajectories_have_the_same_layout(sampler):
    """return_trajectory gives the same (N + 1, B, D) array in both layers, in the order of
    sampling (x_T first, x_0 last), equal to float64 round-off for the same draws."""
    schedule = linear_schedule(30)
    denoiser, diffusion = exact(schedule)
    x_T = np.random.default_rng(3).standard_normal((6, 2))
    options = {"ancestral": {}, "ddim": {"steps": 7, "eta": 0.5}}[sampler]
    numpy_sampler = getattr(numpy_sampling, f"sample_{sampler}")
    torch_sampler = {"ancestral": sample_ancestral, "ddim": sample_ddim}[sampler]
    _, expected = numpy_sampler(
        MIXTURE.denoiser(schedule), schedule, x_T, np.random.default_rng(4),
        return_trajectory=True, **options,
    )  # fmt: skip
    _, actual = torch_sampler(
        denoiser, diffusion, torch.from_numpy(x_T), noise=numpy_noise(np.random.default_rng(4)),
        return_trajectory=True, **options,
    )  # fmt: skip
    steps = len(sampling_timesteps(schedule, options.get("steps")))
    assert actual.shape == expected.shape == (steps, 6, 2)
    np.testing.assert_array_equal(expected[0], x_T)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@pytest.mark.parametrize("name", ["ddim_invert", "sample_ode", "sample_dpm_solver_pp_2m"])
def test_deterministic_samplers_refuse_a_noise_source(name):
    """The deterministic samplers draw no z, so a ``noise`` source would be silently unused:
    they raise TypeError naming the option instead."""
    from minidiff import diffusion as torch_diffusion

    denoiser, diffusion = exact(linear_schedule(5))
    with pytest.raises(TypeError, match="'noise'"):
        getattr(torch_diffusion, name)(denoiser, diffusion, torch.zeros(4, 2), noise=torch.randn)


@pytest.mark.parametrize("sampler", [sample_ancestral, sample_ddim])
def test_samplers_refuse_an_unknown_option(sampler):
    """A misspelt option (here ``generater``) raises TypeError naming it, as a Python keyword
    argument would."""
    denoiser, diffusion = exact(linear_schedule(5))
    with pytest.raises(TypeError, match="'generater'"):
        sampler(denoiser, diffusion, (4, 2), generater=torch.Generator())
