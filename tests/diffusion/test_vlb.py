"""Proofs for the variational bound (`minidiff.diffusion.vlb` and
`GaussianDiffusion.vlb_terms` / `prior_bpd`): the torch Gaussian KL and discretised
likelihood against the NumPy layer, each term of Ho et al. (2020), eq. 5, in bits per
dimension, and the scaling of the "vlb" loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff import process
from minidiff.diffusion import (
    PARAMETERIZATIONS,
    GaussianDiffusion,
    TorchDenoiser,
)
from minidiff.diffusion import vlb as torch_vlb
from minidiff.toy.mixture import GaussianMixture
from tests.diffusion.gaussian_helpers import (
    LOG_2,
    close,
    fixed_output,
    numpy_target,
    numpy_x0,
    on_bins,
    perfect_denoiser,
    tensor,
)
from tests.strategies import schedule_and_batched_t, schedules
from tests.tolerances import ATOL_LOOSE, N_STANDARD_ERRORS, RTOL_LOOSE


# -- the torch twins of the likelihood functions ------------------------------------------
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 16, 256]))
def test_discretized_likelihood_matches_process(seed, num_bins):
    """The torch discretised Gaussian log-likelihood equals
    `process.discretized_gaussian_log_likelihood` (Ho et al. 2020, sec. 3.3: same bins,
    the outer ones open) for means in [-4, 4] and log scales in [-9, 3], far tails
    included: relative error below 1e-8 where the probability is a normal float64
    (log p > -700); below that the torch value lies under -690 too (or is -inf), as
    float64 subnormals round too coarsely to compare."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, num_bins, size=400) / (num_bins - 1) * 2.0 - 1.0
    mean = rng.uniform(-4.0, 4.0, size=400)
    log_scale = rng.uniform(-9.0, 3.0, size=400)
    expected = process.discretized_gaussian_log_likelihood(x, mean, log_scale, num_bins)
    actual = torch_vlb.discretized_gaussian_log_likelihood(
        tensor(x), tensor(mean), tensor(log_scale), num_bins
    ).numpy()
    normal = expected > -700.0
    np.testing.assert_allclose(actual[normal], expected[normal], rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    assert np.all(actual[~normal] < -690.0)  # -inf included


@given(
    z=st.floats(min_value=8.0, max_value=30.0),
    width=st.floats(min_value=0.05, max_value=2.0),
    side=st.sampled_from([-1.0, 1.0]),
)
def test_discretized_likelihood_keeps_far_tails_in_float32(z, width, side):
    """A bin whose edges lie z and z + width standard deviations from the mean (either
    side) has a finite log probability in float32, equal to float64's log(Phi(u) - Phi(l))
    from erfc (which keeps its digits to z of about 37): no underflow to -inf where a float32
    difference of tail probabilities would give 0 (an untrained decoder at t = 1)."""
    x = 0.0 + 1.0 / 255.0  # bin 128 of 256: edges at 0 and 2 / 255
    scale = (2.0 / 255.0) / width
    mean = -z * scale if side > 0 else 2.0 / 255.0 + z * scale
    lower, upper = sorted(((0.0 - mean) / scale, (2.0 / 255.0 - mean) / scale), key=abs)
    expected = math.log(0.5 * (math.erfc(abs(lower) / math.sqrt(2.0))
                               - math.erfc(abs(upper) / math.sqrt(2.0))))  # fmt: skip
    as32 = lambda value: torch.tensor([value], dtype=torch.float32)  # noqa: E731
    got = torch_vlb.discretized_gaussian_log_likelihood(
        as32(x), as32(mean), as32(math.log(scale)), num_bins=256
    )
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.double().item(), expected, rtol=1e-3, atol=0)


@given(st.integers(0, 2**32 - 1))
def test_normal_kl_matches_process(seed):
    """The torch KL(N(m1, e^{l1}) || N(m2, e^{l2})) equals `process.normal_kl`."""
    rng = np.random.default_rng(seed)
    mean1, mean2 = rng.normal(size=(2, 50)) * 3
    log_var1, log_var2 = rng.uniform(-14.0, 2.0, size=(2, 50))
    expected = process.normal_kl(mean1, log_var1, mean2, log_var2)
    actual = torch_vlb.normal_kl(tensor(mean1), tensor(log_var1), tensor(mean2), tensor(log_var2))
    close(actual, expected)


# -- the terms of the bound -----------------------------------------------------------------
@given(schedules(zero_terminal_snr=True), st.integers(0, 2**32 - 1))
def test_prior_term_is_the_process_kl_to_the_standard_normal(schedule, seed):
    """L_T = KL(N(sqrt(alpha_bar_T) x_0, 1 - alpha_bar_T) || N(0, 1)), averaged over the
    dimensions, in bits (Ho et al. 2020, eq. 5), equals `process.normal_kl` / log 2; it is
    0 for a zero-terminal-SNR schedule."""
    x0 = np.random.default_rng(seed).normal(size=(3, 2, 2))
    T = schedule.T
    with np.errstate(divide="ignore"):
        log_var = np.log(schedule.one_minus_alpha_bar[T])
    kl = process.normal_kl(schedule.sqrt_alpha_bar[T] * x0, log_var, 0.0, 0.0)
    actual = GaussianDiffusion(schedule).prior_bpd(tensor(x0))
    close(actual, kl.reshape(3, -1).mean(axis=1) / LOG_2)


@given(
    schedules(max_T=40),
    st.sampled_from(PARAMETERIZATIONS),
    st.sampled_from(["fixed_small", "fixed_large"]),
    st.integers(0, 2**32 - 1),
)
def test_kl_terms_of_the_exact_posterior(schedule, parameterization, variance, seed):
    """With the denoiser that outputs the exact target for the x_0 behind x_t, the model
    mean is the posterior mean, so for t >= 2 L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p) is
    0 with fixed_small and KL(N(0, beta_tilde_t) || N(0, beta_t)) (`process.normal_kl`)
    with fixed_large; the bound is then the sum of its terms and the prior, and x0_hat and
    eps_hat carry no error."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(3, 2))
    diffusion = GaussianDiffusion(schedule, parameterization, variance)
    denoiser = perfect_denoiser(schedule, parameterization, x0)
    generator = torch.Generator().manual_seed(seed % 2**31)
    result = diffusion.vlb_terms(denoiser, tensor(x0), generator=generator, num_bins=None)
    assert result["terms"].shape == (3, schedule.T)
    t = np.arange(2, schedule.T + 1)
    if variance == "fixed_small":
        expected = np.zeros(t.shape)
    else:
        log_tilde, log_beta = np.log(schedule.posterior_var[t]), np.log(schedule.beta[t])
        expected = process.normal_kl(0.0, log_tilde, 0.0, log_beta) / LOG_2
    close(result["terms"][:, 1:], np.broadcast_to(expected, (3, t.shape[0])), atol=1e-10)
    total = result["terms"].sum(dim=1) + result["prior"]
    close(result["total"], total.numpy())
    close(result["x0_mse"], np.zeros((3, schedule.T)), atol=1e-10)
    close(result["eps_mse"], np.zeros((3, schedule.T)), atol=1e-10)


@given(
    schedule_and_batched_t(max_batch=3),
    st.sampled_from(PARAMETERIZATIONS),
    st.integers(0, 2**32 - 1),
)
def test_decoder_term_is_the_process_discretized_likelihood(schedule_t, parameterization, seed):
    """At t = 1 the bound's term is L_0 = -log p(x_0 | x_1) of the discretised Gaussian
    decoder (Ho et al. 2020, sec. 3.3): on 8-bit data (B, C, H, W) it equals
    -`process.discretized_gaussian_log_likelihood`(x_0; mu_tilde_1(x_1, x0_hat),
    exp(log_var / 2)) averaged over the dimensions / log 2, and the "vlb" loss is T times
    it. The prediction puts x0_hat within a few decoder scales of x_0, so that the
    log-likelihoods are finite and informative."""
    schedule, _ = schedule_t
    rng = np.random.default_rng(seed)
    shape = (2, 3, 2, 2)
    x0, eps = on_bins(rng, shape), rng.normal(size=shape)
    t = np.ones(2, dtype=np.int64)
    xt = process.q_sample(schedule, x0, t, eps)
    decoder_scale = np.exp(0.5 * schedule.posterior_log_var_clipped[1])
    x0_hat = x0 + decoder_scale * rng.normal(size=shape)
    eps_hat = process.eps_from_x0(schedule, xt, t, x0_hat)
    prediction = numpy_target(schedule, parameterization, x0_hat, t, eps_hat)
    mean, _, log_var = process.posterior_mean_var(
        schedule, numpy_x0(schedule, parameterization, xt, t, prediction), xt, t
    )
    log_p = process.discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var)
    assert np.all(np.isfinite(log_p))
    expected = -log_p.reshape(2, -1).mean(axis=1) / LOG_2
    diffusion = GaussianDiffusion(schedule, parameterization, loss="vlb")
    losses = diffusion.training_losses(
        fixed_output(tensor(prediction)), tensor(x0), t=1, eps=tensor(eps)
    )
    close(losses["vlb"] / schedule.T, expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    close(losses["loss"], losses["vlb"].numpy())


@given(schedules(max_T=30), st.sampled_from(PARAMETERIZATIONS), st.integers(0, 2**32 - 1))
def test_vlb_loss_is_T_times_the_term_an_unbiased_estimate_of_the_bound(
    schedule, parameterization, seed
):
    """The "vlb" loss at step t is T L_{t-1} (bits/dim), so its average over t uniform in
    1..T is sum_t L_{t-1} = total - L_T: checked with the exact-posterior denoiser and
    fixed_large, where every term depends on x_0 alone (not on the noise), on 8-bit data."""
    rng = np.random.default_rng(seed)
    x0 = on_bins(rng, (2, 3))
    diffusion = GaussianDiffusion(schedule, parameterization, "fixed_large", loss="vlb")
    denoiser = perfect_denoiser(schedule, parameterization, x0)
    generator = torch.Generator().manual_seed(seed % 2**31)
    bound = diffusion.vlb_terms(denoiser, tensor(x0), generator=generator)
    estimates = []
    for step in range(1, schedule.T + 1):
        losses = diffusion.training_losses(denoiser, tensor(x0), t=step, generator=generator)
        close(losses["vlb"], schedule.T * bound["terms"][:, step - 1].numpy(), rtol=RTOL_LOOSE)
        estimates.append(losses["vlb"])
    mean_estimate = torch.stack(estimates, dim=1).mean(dim=1)
    close(mean_estimate, (bound["total"] - bound["prior"]).numpy(), rtol=RTOL_LOOSE)


def test_bound_of_the_exact_oracle_is_at_least_the_data_entropy():
    """The negative ELBO bounds -log p_theta(x_0) for every x_0 (Ho et al. 2020, eq. 3), and
    E[-log p_theta(x_0)] >= E[-log q(x_0)] (cross-entropy >= entropy), so for continuous
    2-D mixture data the mean bound in bits/dim is at least the mixture's entropy
    E[-log q(x_0)] / (D log 2). Monte Carlo over x_0 (n = 400), with the exact oracle and
    both fixed variances: the mean of bound - (-log q(x_0)) / (D log 2) is above -4
    standard errors."""
    n = 400
    mixture = GaussianMixture.isotropic([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [0.4, 0.5])
    schedule = process.linear_schedule(50, 1e-3, 0.2)
    rng = np.random.default_rng(7)
    x0 = mixture.sample(n, rng)
    nll = -mixture.log_prob(x0) / (2 * LOG_2)
    for variance in ("fixed_small", "fixed_large"):
        diffusion = GaussianDiffusion(schedule, "eps", variance)
        oracle = TorchDenoiser(mixture.denoiser(schedule, "eps"))
        generator = torch.Generator().manual_seed(7)
        bound = diffusion.vlb_terms(oracle, tensor(x0), generator=generator, num_bins=None)
        gap = bound["total"].numpy() - nll
        assert np.all(np.isfinite(gap))
        assert gap.mean() >= -N_STANDARD_ERRORS * gap.std() / math.sqrt(n)


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_exact_oracle_minimises_every_expected_term_of_the_bound(variance):
    """With a fixed variance sigma_t^2 each term is the squared distance of the means,
    L_{t-1} = ||mu_tilde_t(x_t, x_0) - mu_theta(x_t)||^2 / (2 sigma_t^2) + const (Ho et al.
    2020, eq. 8; for t = 1 the continuous decoder -log N(x_0; mu_theta, sigma_1^2) has the
    same form), and E[mu_tilde_t | x_t] is the oracle's mean, so a perturbed denoiser
    raises the expected "vlb" loss by exactly T E||mu_f - mu_oracle||^2 / (2 sigma_t^2),
    the cross term having mean 0. Monte Carlo over (x_0, t, eps), n = 4000: the mean
    difference lies within 4 standard errors of that gap, which exceeds 4 standard errors."""
    n = 4000
    mixture = GaussianMixture.isotropic([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [0.3, 0.6])
    schedule = process.linear_schedule(100, 1e-3, 0.1)
    x0 = tensor(mixture.sample(n, np.random.default_rng(3)))
    oracle = TorchDenoiser(mixture.denoiser(schedule, "eps"))

    def perturbed(xt, t):
        return 1.5 * oracle(xt, t) + 0.2

    diffusion = GaussianDiffusion(schedule, "eps", variance, loss="vlb")
    generator = torch.Generator().manual_seed(3)
    t = torch.randint(1, schedule.T + 1, (n,), generator=generator)
    eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    kw = {"t": t, "eps": eps, "num_bins": None}
    difference = (
        diffusion.training_losses(perturbed, x0, **kw)["vlb"]
        - diffusion.training_losses(oracle, x0, **kw)["vlb"]
    )
    xt = diffusion.q_sample(x0, t, eps)
    exact = diffusion.p_mean_variance(oracle(xt, t), xt, t)
    other = diffusion.p_mean_variance(perturbed(xt, t), xt, t)
    squared = (other["mean"] - exact["mean"]) ** 2 / (2 * exact["var"])
    gap = schedule.T * squared.mean(dim=1) / LOG_2
    cross = difference - gap
    assert abs(float(cross.mean())) <= N_STANDARD_ERRORS * float(cross.std()) / math.sqrt(n)
    assert float(difference.mean()) > N_STANDARD_ERRORS * float(difference.std()) / math.sqrt(n)
