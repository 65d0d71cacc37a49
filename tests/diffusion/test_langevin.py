"""Proofs for minidiff.diffusion.langevin: the Langevin corrector is Song et al.'s VP step,
predictor-corrector without corrector is ancestral sampling, and with the exact score
both annealed Langevin and predictor-corrector reproduce the mixture."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.diffusion.langevin import langevin_corrector, sample_annealed_langevin, sample_pc
from minidiff.diffusion.samplers import sample_ancestral, sample_ddim
from minidiff.process import SPACINGS, linear_schedule, rescale_zero_terminal_snr
from minidiff.toy.mixture import GaussianMixture
from tests.diffusion.sampler_helpers import (
    assert_parameterizations_agree,
    assert_reproduces_mixture,
    exact,
    numpy_noise,
    starting_noise,
)
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL_LOOSE, N_STANDARD_ERRORS, RTOL_LOOSE


@settings(max_examples=20)
@given(schedules(max_T=50), gaussian_mixtures(), st.floats(0.01, 1.0), st.data())
def test_corrector_is_algorithm_5_step(schedule, mixture, snr, data):
    """One corrector step equals Song et al. (2021)'s VP corrector written out: score =
    -eps / sqrt(1 - alpha_bar_t), epsilon = 2 alpha_t (r ||z|| / ||score||)^2 with the
    norms over the data axes averaged over the batch, x + epsilon score +
    sqrt(2 epsilon) z."""
    t = data.draw(st.integers(1, schedule.T))
    seed = data.draw(st.integers(0, 2**32 - 1))
    denoiser, diffusion = exact(schedule, mixture=mixture)
    x = np.random.default_rng(seed).standard_normal((7, mixture.D))
    result = langevin_corrector(
        denoiser, diffusion, torch.from_numpy(x), t, snr=snr, alpha=schedule.alpha[t],
        noise=numpy_noise(np.random.default_rng(seed + 1)),
    )  # fmt: skip
    z = np.random.default_rng(seed + 1).standard_normal(x.shape)
    eps = denoiser(torch.from_numpy(x), torch.full((7,), t)).numpy()
    score = -eps / schedule.sqrt_one_minus_alpha_bar[t]
    norm = lambda a: np.linalg.norm(a, axis=1).mean()  # noqa: E731
    step = 2 * schedule.alpha[t] * (snr * norm(z) / norm(score)) ** 2
    expected = x + step * score + np.sqrt(2 * step) * z
    np.testing.assert_allclose(result.numpy(), expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=15)
@given(schedules(max_T=30), gaussian_mixtures(), st.sampled_from(SPACINGS), st.data())
def test_pc_without_corrector_is_ancestral_sampling_on_the_grid(schedule, mixture, spacing, data):
    """corrector_steps = 0: the predictor alone is DDIM with eta = 1 on the grid (the
    posterior step), the same draws in the same order; on the full grid that is
    Algorithm 2 of Ho et al. with the posterior variance. Equal to round-off."""
    steps = data.draw(st.integers(1, schedule.T))
    denoiser, diffusion = exact(schedule, mixture=mixture)
    x_T = torch.from_numpy(np.random.default_rng(0).standard_normal((8, mixture.D)))
    pc = sample_pc(denoiser, diffusion, x_T, steps=steps, spacing=spacing, corrector_steps=0,
                   generator=torch.Generator().manual_seed(1))  # fmt: skip
    ddim = sample_ddim(denoiser, diffusion, x_T, steps=steps, spacing=spacing, eta=1.0,
                       generator=torch.Generator().manual_seed(1))  # fmt: skip
    torch.testing.assert_close(pc, ddim, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    full = sample_pc(
        denoiser, diffusion, x_T, corrector_steps=0, generator=torch.Generator().manual_seed(2)
    )
    ancestral = sample_ancestral(
        denoiser, diffusion, x_T, generator=torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(full, ancestral, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


def test_corrector_keeps_the_noised_law():
    """Langevin steps target q_t: 30 corrector steps (r = 0.16) started from exact samples
    of q_t (a 1-D Gaussian of std 0.5 noised to t = 500 of a linear T = 1000 schedule;
    4,000 points) leave the mean and the variance within 4 standard errors of q_t's (the
    SNR rule's step is small, so the discretisation bias is far below that)."""
    schedule = linear_schedule(1000)
    data = GaussianMixture.isotropic([1.0], [[0.3]], 0.5)
    noised = data.noised(schedule, 500)
    denoiser, diffusion = exact(schedule, mixture=data)
    x = torch.from_numpy(noised.sample(4000, np.random.default_rng(3)))
    generator = torch.Generator().manual_seed(4)
    for _ in range(30):
        x = langevin_corrector(denoiser, diffusion, x, 500, snr=0.16, alpha=schedule.alpha[500],
                               generator=generator)  # fmt: skip
    mean, var = float(noised.mean[0]), float(noised.covariance[0, 0])
    n = x.shape[0]
    assert abs(float(x.mean()) - mean) <= N_STANDARD_ERRORS * np.sqrt(var / n)
    assert abs(float(x.var()) - var) <= N_STANDARD_ERRORS * var * np.sqrt(2 / (n - 1))


# -- the exact denoiser reproduces the mixture ---------------------------------------


def test_pc_with_the_exact_denoiser_reproduces_the_mixture():
    """Predictor-corrector, 200 ancestral jumps each followed by one Langevin step
    (r = 0.16), exact eps of the 8-Gaussian mixture: MMD^2 to the reference below the
    exact-vs-exact bound (mean + 4 sd of 20 null replicates)."""
    denoiser, diffusion = exact()
    x0 = sample_pc(
        denoiser, diffusion, starting_noise(), steps=200, generator=torch.Generator().manual_seed(5)
    )
    assert_reproduces_mixture(x0)


def test_annealed_langevin_with_the_exact_denoiser_reproduces_the_mixture():
    """Annealed Langevin alone (no predictor): 100 noise levels on the quadratic grid, 5
    Langevin steps each (r = 0.16), then the denoising step: MMD^2 below the bound."""
    denoiser, diffusion = exact()
    x0 = sample_annealed_langevin(
        denoiser, diffusion, starting_noise(), steps=100, corrector_steps=5, snr=0.16,
        spacing="quadratic", generator=torch.Generator().manual_seed(6),
    )  # fmt: skip
    assert_reproduces_mixture(x0)


# -- robustness and interface --------------------------------------------------------


@settings(max_examples=20)
@given(schedules(max_T=12, zero_terminal_snr=True), st.data())
def test_float32_langevin_samplers_are_finite_for_any_schedule(schedule, data):
    """float32, any schedule with T <= 12 (zero terminal SNR with x0 or v prediction):
    predictor-corrector and annealed Langevin return finite samples."""
    parameterization = data.draw(
        st.sampled_from(["x0", "v"] if schedule.alpha_bar[-1] == 0 else ["eps", "x0", "v"])
    )
    steps = data.draw(st.integers(1, schedule.T))
    denoiser, diffusion = exact(schedule, parameterization)
    generator = torch.Generator().manual_seed(0)
    options = dict(steps=steps, dtype=torch.float32, generator=generator)
    for sampler in (sample_pc, sample_annealed_langevin):
        x0 = sampler(denoiser, diffusion, (32, 2), **options)
        assert x0.dtype == torch.float32 and bool(torch.isfinite(x0).all()), sampler.__name__


def test_langevin_samplers_reject_bad_arguments_and_document_their_trajectories():
    """snr <= 0 and negative corrector_steps raise ValueError; eps-prediction at
    alpha_bar_T = 0 raises ValueError; the PC trajectory is (steps + 1, B, D) along the
    grid and the annealed one (steps + 2, B, D) ending with the denoised x_0."""
    denoiser, diffusion = exact(linear_schedule(20))
    with pytest.raises(ValueError, match="snr"):
        sample_pc(denoiser, diffusion, (4, 2), snr=0.0)
    with pytest.raises(ValueError, match="corrector_steps"):
        sample_annealed_langevin(denoiser, diffusion, (4, 2), corrector_steps=-1)
    x0, trajectory = sample_pc(denoiser, diffusion, (4, 2), steps=5, return_trajectory=True)
    assert trajectory.shape == (6, 4, 2) and torch.equal(trajectory[-1], x0)
    x0, trajectory = sample_annealed_langevin(
        denoiser, diffusion, (4, 2), steps=5, return_trajectory=True
    )
    assert trajectory.shape == (7, 4, 2) and torch.equal(trajectory[-1], x0)
    zero_denoiser, zero = exact(rescale_zero_terminal_snr(linear_schedule(10)), "eps")
    for sampler in (sample_pc, sample_annealed_langevin):
        with pytest.raises(ValueError, match="zero terminal SNR"):
            sampler(zero_denoiser, zero, (4, 2))


@pytest.mark.parametrize("sampler, options", [
    (sample_pc, {"steps": 10, "corrector_steps": 2}),
    (sample_annealed_langevin, {"steps": 10, "corrector_steps": 2}),
])  # fmt: skip
def test_eps_x0_and_v_parameterizations_give_the_same_langevin_samplers(sampler, options):
    """With the exact oracle in each parameterization (eps, x0, v), the same x_T and the
    same generator seed give the same samples to round-off (linear schedule, T = 50)."""
    assert_parameterizations_agree(sampler, options)
