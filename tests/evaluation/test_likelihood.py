"""Likelihoods: the probability-flow ODE against the Gaussian mixture's exact log density,
Hutchinson-Skilling against the exact divergence, and the VLB as an upper bound."""

import math

import numpy as np
import pytest
import torch

from minidiff.diffusion import GaussianDiffusion
from minidiff.evaluation.likelihood import (
    mixture_denoiser,
    ode_bits_per_dim,
    ode_log_likelihood,
    vlb_bits_per_dim,
)
from minidiff.process import linear_schedule, ode_sigma
from minidiff.toy.mixture import GaussianMixture
from tests.tolerances import N_STANDARD_ERRORS

ODE_STEPS = 200  # Heun steps: a discretisation error below 0.02 nats here (1000 steps: 0.007)
ODE_ATOL = 0.02  # nats per point


@pytest.fixture(scope="module")
def problem():
    diffusion = GaussianDiffusion(linear_schedule(1000))
    mixture = GaussianMixture.isotropic([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [0.3, 0.5])
    x0 = torch.as_tensor(mixture.sample(48, np.random.default_rng(0)))
    sigma_1 = ode_sigma(diffusion.schedule)[1]
    smoothed = GaussianMixture(
        mixture.weights, mixture.means, mixture.covs + sigma_1**2 * np.eye(2)
    )
    exact = torch.as_tensor(smoothed.log_prob(x0.numpy()))  # log density of x0 + sigma_1 z
    return diffusion, mixture, x0, exact


def test_mixture_denoiser_equals_the_numpy_oracle(problem):
    """The differentiable torch oracle equals `GaussianMixture.denoiser` at several t."""
    diffusion, mixture, x0, _ = problem
    torch_oracle = mixture_denoiser(mixture, diffusion)
    numpy_oracle = mixture.denoiser(diffusion.schedule, "eps")
    for t in (1, 50, 500, 1000):
        got = torch_oracle(x0, torch.full((len(x0),), t)).detach().numpy()
        np.testing.assert_allclose(got, numpy_oracle(x0.numpy(), t), rtol=1e-8, atol=1e-10)


def test_ode_log_likelihood_equals_exact_mixture_density(problem):
    """With the exact score and the exact divergence, the ODE's log p equals the mixture's
    log density (smoothed by sigma_1) to the Heun discretisation error, point by point."""
    diffusion, mixture, x0, exact = problem
    log_p = ode_log_likelihood(mixture_denoiser(mixture, diffusion), diffusion, x0, steps=ODE_STEPS)
    assert float((log_p - exact).abs().max()) < ODE_ATOL


def test_hutchinson_estimate_is_unbiased(problem):
    """Hutchinson-Skilling's log p differs from the exact-divergence log p by noise whose
    mean is 0 within 4 standard errors; against the mixture's exact log density its mean
    error is within 4 standard errors plus the Heun discretisation bound."""
    diffusion, mixture, x0, exact_density = problem
    denoiser = mixture_denoiser(mixture, diffusion)
    exact = ode_log_likelihood(denoiser, diffusion, x0, steps=ODE_STEPS)
    estimate = ode_log_likelihood(
        denoiser, diffusion, x0, steps=ODE_STEPS, divergence="hutchinson",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    error = estimate - exact
    standard_error = float(error.std()) / math.sqrt(len(error))
    assert float(error.abs().max()) > 0  # it is an estimate
    assert abs(float(error.mean())) <= N_STANDARD_ERRORS * standard_error
    oracle_error = float((estimate - exact_density).mean())
    assert abs(oracle_error) <= N_STANDARD_ERRORS * standard_error + ODE_ATOL


def test_vlb_bounds_the_exact_negative_log_likelihood(problem):
    """The VLB (continuous decoder) in bits/dim is above the exact -log_2 p(x_0) / D,
    beyond 4 standard errors of the difference."""
    diffusion, mixture, x0, _ = problem
    vlb = diffusion.vlb_terms(mixture_denoiser(mixture, diffusion), x0, num_bins=None,
                              generator=torch.Generator().manual_seed(1))["total"]  # fmt: skip
    exact_bpd = -torch.as_tensor(mixture.log_prob(x0.numpy())) / (2 * math.log(2))
    gap = vlb - exact_bpd
    assert float(gap.mean()) > N_STANDARD_ERRORS * float(gap.std()) / math.sqrt(len(gap))
    result = vlb_bits_per_dim(mixture_denoiser(mixture, diffusion), diffusion, x0, num_bins=None,
                              generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert result.n == len(x0) and result.method == "vlb"
    assert math.isclose(result.mean, float(vlb.mean()), rel_tol=1e-12)


def test_dequantized_bits_per_dim_bound_discrete_probability():
    """Data on 3 levels {-1, 0, 1} in 1-D from a continuous density: the dequantized ODE
    bits/dim is >= -log_2 P(bin) (Jensen) within 4 standard errors, with P(bin) the exact
    probability of the smoothed law on each bin."""
    from scipy.stats import norm

    diffusion = GaussianDiffusion(linear_schedule(1000))
    mixture = GaussianMixture.isotropic([1.0], [[0.0]], [0.6])
    x0 = torch.tensor([[-1.0], [0.0], [1.0]]).repeat(16, 1)
    result = ode_bits_per_dim(mixture_denoiser(mixture, diffusion), diffusion, x0, num_bins=3,
                              steps=100, divergence="exact",
                              generator=torch.Generator().manual_seed(2))  # fmt: skip
    scale = math.sqrt(0.36 + ode_sigma(diffusion.schedule)[1] ** 2)
    probability = {v: norm.cdf(v + 0.5, scale=scale) - norm.cdf(v - 0.5, scale=scale)
                   for v in (-1.0, 0.0, 1.0)}  # fmt: skip
    exact = np.mean([-math.log2(probability[float(v)]) for v in x0[:, 0]])
    assert result.n == 48 and result.method == "ode-exact"
    assert result.mean >= exact - N_STANDARD_ERRORS * result.sem


def test_bad_arguments_are_refused(problem):
    diffusion, mixture, x0, _ = problem
    denoiser = mixture_denoiser(mixture, diffusion)
    with pytest.raises(ValueError, match="divergence"):
        ode_log_likelihood(denoiser, diffusion, x0, divergence="trace")
    with pytest.raises(ValueError, match="steps"):
        ode_log_likelihood(denoiser, diffusion, x0, steps=1000)
