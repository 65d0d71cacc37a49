"""Proofs for minidiff.diffusion.score_matching: the geometric noise levels, the denoising
score matching loss of Song & Ermon (2019) (minimised by the score of the perturbed law,
checked with the exact Gaussian-mixture score), training a tiny NCSN, and annealed
Langevin dynamics (the same chain as the NumPy sampler of layer 0, and it recovers the
mode weights of a mixture)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.diffusion.score_matching import (
    dsm_loss,
    dsm_loss_terms,
    exact_score_net,
    geometric_sigmas,
    sample_ncsn,
)
from minidiff.markov import annealed_langevin
from minidiff.nn.mlp import ToyMLP
from minidiff.toy.mixture import GaussianMixture
from tests.strategies import gaussian_mixtures
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL

# -- noise levels ----------------------------------------------------------------------


@given(st.floats(1e-3, 1.0), st.floats(1.01, 1e3), st.integers(2, 50))
def test_geometric_sigmas_decrease_with_a_constant_ratio(sigma_min, spread, L):
    """sigma_1 = sigma_max, sigma_L = sigma_min, and sigma_{i+1} / sigma_i is the same
    number (sigma_min / sigma_max)^(1 / (L - 1)) < 1 for every i (Song & Ermon 2019,
    sec. 4.2)."""
    sigma_max = sigma_min * spread
    sigmas = geometric_sigmas(sigma_max, sigma_min, L).numpy()
    assert sigmas.shape == (L,) and sigmas[0] == sigma_max and sigmas[-1] == sigma_min
    ratio = (sigma_min / sigma_max) ** (1.0 / (L - 1))
    np.testing.assert_allclose(sigmas[1:] / sigmas[:-1], ratio, rtol=RTOL, atol=ATOL)
    assert np.all(np.diff(sigmas) < 0)


@pytest.mark.parametrize(
    "sigma_max, sigma_min, L, match",
    [(1.0, 0.1, 1, "L"), (1.0, 0.0, 5, "sigma_min"), (0.1, 1.0, 5, "sigma_max")],
)
def test_geometric_sigmas_rejects_bad_arguments(sigma_max, sigma_min, L, match):
    """L < 2, sigma_min <= 0 or sigma_max <= sigma_min raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        geometric_sigmas(sigma_max, sigma_min, L)


# -- the DSM loss and its minimiser -----------------------------------------------------

SIGMAS = geometric_sigmas(2.0, 0.05, 5)
N_MC = 4000  # Monte Carlo draws per example


def _draws(mixture, seed, n=N_MC):
    """x ~ mixture, a uniform level index and z ~ N(0, I), as float64 tensors."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(mixture.sample(n, rng))
    index = torch.from_numpy(rng.integers(0, len(SIGMAS), size=n))
    z = torch.from_numpy(rng.standard_normal((n, mixture.D)))
    return x, index, z


def _within(values, expected_mean=0.0):
    """The mean of iid values lies within N_STANDARD_ERRORS standard errors of its expectation."""
    values = np.asarray(values)
    error = values.std(ddof=1) / np.sqrt(values.shape[0])
    return abs(values.mean() - expected_mean) <= N_STANDARD_ERRORS * error


@settings(max_examples=30)
@given(gaussian_mixtures(max_D=2), st.integers(0, 2**32 - 1))
def test_dsm_loss_excess_over_the_exact_score_is_half_sigma_squared_error(mixture, seed):
    """The exact score s* of p_sigma = p * N(0, sigma^2 I) minimises the DSM loss: for any
    perturbation s = s* + g, E[l(s)] - E[l(s*)] = 1/2 sigma^2 E||g(x~)||^2 (the cross term
    E[(sigma s*(x~) + z) . g(x~)] vanishes because E[z | x~] = -sigma s*(x~), Tweedie).
    Checked per example, paired, for a nonlinear g and random levels: the mean excess
    minus the mean of 1/2 sigma^2 ||g||^2 is within 4 standard errors of 0."""
    x, index, z = _draws(mixture, seed)
    exact = exact_score_net(mixture, SIGMAS)

    def g(x_tilde):
        return torch.tanh(x_tilde) + 0.3

    def perturbed(x_tilde, i):
        return exact(x_tilde, i) + g(x_tilde)

    loss_exact = dsm_loss_terms(exact, x, SIGMAS, index, z)
    loss_perturbed = dsm_loss_terms(perturbed, x, SIGMAS, index, z)
    sigma = SIGMAS[index][:, None]
    x_tilde = x + sigma * z
    expected_excess = 0.5 * (sigma * g(x_tilde)).pow(2).sum(dim=1)
    assert _within((loss_perturbed - loss_exact - expected_excess).numpy())
    assert float(loss_perturbed.mean()) > float(loss_exact.mean())


@settings(max_examples=30)
@given(gaussian_mixtures(max_D=2), st.integers(0, 2**32 - 1))
def test_dsm_loss_at_the_exact_score_equals_its_minimum_value(mixture, seed):
    """At the exact score, E[l] = 1/2 (D - sigma^2 E||grad log p_sigma(x~)||^2) (expand
    the square; E[z . s*(x + sigma z)] = -sigma E||s*||^2 by Stein's identity). The paired
    per-example difference has mean within 4 standard errors of 0."""
    x, index, z = _draws(mixture, seed)
    exact = exact_score_net(mixture, SIGMAS)
    loss = dsm_loss_terms(exact, x, SIGMAS, index, z)
    sigma = SIGMAS[index][:, None]
    score = exact(x + sigma * z, index)
    minimum = 0.5 * (mixture.D - (sigma * score).pow(2).sum(dim=1))
    assert _within((loss - minimum).numpy())


def test_dsm_loss_draws_the_level_then_the_noise_from_the_generator():
    """dsm_loss = the batch mean of dsm_loss_terms at index ~ randint(0, L) and z ~ randn,
    drawn in that order from the generator."""
    mixture = GaussianMixture.isotropic([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.3)
    exact = exact_score_net(mixture, SIGMAS)
    x = torch.from_numpy(mixture.sample(64, np.random.default_rng(0)))
    loss = dsm_loss(exact, x, SIGMAS, generator=torch.Generator().manual_seed(3))
    replay = torch.Generator().manual_seed(3)
    index = torch.randint(0, len(SIGMAS), (64,), generator=replay)
    z = torch.randn(x.shape, generator=replay, dtype=x.dtype)
    expected = dsm_loss_terms(exact, x, SIGMAS, index, z).mean()
    np.testing.assert_allclose(float(loss), float(expected), rtol=RTOL, atol=ATOL)


def test_condition_sigma_calls_the_network_with_the_noise_level():
    """condition="sigma": the network receives sigma_i (B,) in x's dtype; "index" gives i."""
    seen = {}

    def recorder(key):
        def net(x, c):
            seen[key] = c
            return torch.zeros_like(x)

        return net

    x = torch.zeros(3, 2, dtype=torch.float64)
    index = torch.tensor([0, 2, 4])
    dsm_loss_terms(recorder("sigma"), x, SIGMAS, index, x, condition="sigma")
    dsm_loss_terms(recorder("index"), x, SIGMAS, index, x)
    np.testing.assert_array_equal(seen["sigma"], SIGMAS[index])
    assert seen["sigma"].dtype == torch.float64
    np.testing.assert_array_equal(seen["index"], index)
    with pytest.raises(ValueError, match="condition"):
        dsm_loss_terms(recorder("bad"), x, SIGMAS, index, x, condition="time")


def test_dsm_loss_terms_rejects_bad_inputs():
    """An index outside 0..L-1, z of the wrong shape or increasing sigmas raise ValueError."""
    x = torch.zeros(2, 2)

    def net(x, c):
        return torch.zeros_like(x)

    with pytest.raises(ValueError, match="index"):
        dsm_loss_terms(net, x, SIGMAS, torch.tensor([0, 5]), x)
    with pytest.raises(ValueError, match="z must"):
        dsm_loss_terms(net, x, SIGMAS, torch.tensor([0, 1]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="decreasing"):
        dsm_loss_terms(net, x, SIGMAS.flip(0), torch.tensor([0, 1]), x)


def test_a_tiny_ncsn_trained_on_a_mixture_approaches_the_minimum_loss():
    """A ToyMLP score network s(x, i) = net(x, i) / sigma_i (the output scaling of Song &
    Ermon 2020) trained with dsm_loss for 300 Adam steps on a 2-D mixture: on a fixed
    evaluation set (same levels and noise), its excess loss over the exact score falls
    below half of the untrained network's, by more than 4 standard errors of the paired
    difference."""
    mixture = GaussianMixture.isotropic([0.3, 0.7], [[-1.5, 0.0], [1.5, 0.5]], 0.4)
    sigmas = geometric_sigmas(2.0, 0.1, 5, dtype=torch.float32)
    net = ToyMLP(2, (64, 64), 16, generator=torch.Generator().manual_seed(0))

    def score_net(x, i):
        return net(x, i) / sigmas[i][:, None]

    x_eval, index, z = _draws(mixture, 1, n=4000)
    x_eval, z = x_eval.float(), z.float()
    exact = exact_score_net(mixture, sigmas)

    def excess():
        with torch.no_grad():
            return dsm_loss_terms(score_net, x_eval, sigmas, index, z) - dsm_loss_terms(
                exact, x_eval, sigmas, index, z
            )

    before = excess()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    data = torch.from_numpy(mixture.sample(20_000, np.random.default_rng(2))).float()
    for _ in range(300):
        batch = data[torch.randint(0, data.shape[0], (256,), generator=generator)]
        loss = dsm_loss(score_net, batch, sigmas, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = excess()
    difference = (0.5 * before - after).double().numpy()
    error = difference.std(ddof=1) / np.sqrt(difference.shape[0])
    assert difference.mean() > N_STANDARD_ERRORS * error


# -- annealed Langevin dynamics -----------------------------------------------------------


class ReplayGenerator(np.random.Generator):
    """A test double: a NumPy Generator whose standard_normal returns given draws in order."""

    def __init__(self, draws):
        super().__init__(np.random.PCG64(0))
        self.draws = list(draws)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        draw = self.draws.pop(0)
        assert draw.shape == tuple(size)
        return draw


@given(gaussian_mixtures(max_D=2), st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 3))
def test_annealed_langevin_equals_the_numpy_sampler_given_the_same_noise(
    mixture, seed, L, n_steps_each
):
    """Without the final denoising step, sample_ncsn is
    minidiff.markov.annealed_langevin (Song & Ermon 2019, Algorithm 1) step for step: fed
    the same start and the same z (drawn once per step, in order), the two agree to
    float64 round-off."""
    sigmas = geometric_sigmas(3.0, 0.2, L + 1)[:L] if L > 1 else torch.tensor([0.5])
    exact = exact_score_net(mixture, sigmas)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((6, mixture.D)))
    got = sample_ncsn(
        exact, x, sigmas, eps=0.01, n_steps_each=n_steps_each, denoise_last=False,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    replay = torch.Generator().manual_seed(seed)
    draws = [
        torch.randn(x.shape, generator=replay, dtype=torch.float64).numpy()
        for _ in range(L * n_steps_each)
    ]

    def numpy_score(x, sigma):
        eye = np.eye(mixture.D)
        return GaussianMixture(mixture.weights, mixture.means, mixture.covs + sigma**2 * eye).score(
            x
        )

    expected = annealed_langevin(
        numpy_score, x.numpy(), sigmas.numpy(), 0.01, n_steps_each, ReplayGenerator(draws)
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=RTOL, atol=ATOL)


def test_annealed_langevin_recovers_the_mode_weights_of_a_mixture():
    """Song & Ermon (2019), sec. 3.2 and Fig. 3: for p = 1/5 N((-5, -5), I) + 4/5
    N((5, 5), I), Langevin dynamics at a single small noise level cannot find the modes'
    weights, annealed Langevin (sigma from 20 to 1, 10 levels, eps = 0.1, 100 steps each)
    can: the fraction of 2,000 samples in the (-5, -5) mode is within 4 standard errors
    of 1/5 (binomial standard error sqrt(w (1 - w) / n)); 1,000 steps at sigma = 1 alone
    miss it by more than that."""
    mixture = GaussianMixture.isotropic([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], 1.0)
    sigmas = geometric_sigmas(20.0, 1.0, 10)
    n = 2000
    x = sample_ncsn(
        exact_score_net(mixture, sigmas), (n, 2), sigmas, eps=0.1, n_steps_each=100,
        generator=torch.Generator().manual_seed(0), dtype=torch.float64,
    )  # fmt: skip
    fraction = float((x.sum(dim=1) < 0).double().mean())
    assert abs(fraction - 0.2) <= N_STANDARD_ERRORS * np.sqrt(0.2 * 0.8 / n)
    # the power of the check: as many steps at the single level sigma = 1, from the same
    # wide start N(0, 20^2 I), leave each chain in the mode of its half-plane (about 1/2)
    x_start = 20.0 * torch.randn(
        (n, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    one_level = torch.tensor([1.0], dtype=torch.float64)
    x = sample_ncsn(
        exact_score_net(mixture, one_level), x_start, one_level, eps=0.1, n_steps_each=1000,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    fraction = float((x.sum(dim=1) < 0).double().mean())
    assert abs(fraction - 0.2) > N_STANDARD_ERRORS * np.sqrt(0.2 * 0.8 / n)


def test_annealed_langevin_final_denoising_step_is_tweedie():
    """denoise_last adds sigma_L^2 s(x, sigma_L) to the last state: with a constant score
    c the two outputs differ by exactly sigma_L^2 c."""
    sigmas = geometric_sigmas(1.0, 0.3, 3)

    def constant(x, i):
        return torch.full_like(x, 2.0)

    x = torch.zeros(4, 2, dtype=torch.float64)
    args = dict(eps=0.05, n_steps_each=2)
    plain = sample_ncsn(
        constant, x, sigmas, denoise_last=False, generator=torch.Generator().manual_seed(1), **args
    )
    denoised = sample_ncsn(constant, x, sigmas, generator=torch.Generator().manual_seed(1), **args)
    np.testing.assert_allclose(denoised - plain, 0.3**2 * 2.0, rtol=RTOL, atol=ATOL)
