"""Classifier-free and classifier guidance as denoiser wrappers: the scale's end points,
one batched pass equal to two, independence of the parameterization, the rescale, the
exact class-conditional score from the exact class posterior, and guided sampling of a
Gaussian mixture whose components are the classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.applications import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    MixtureClassPosterior,
    MixtureConditionalDenoiser,
    class_log_prob_gradient,
    rescale_guided,
)
from minidiff.diffusion import GaussianDiffusion, sample_ddim
from minidiff.nn import ToyMLP, UNet
from minidiff.process import linear_schedule
from minidiff.toy.mixture import GaussianMixture
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL_LOOSE, N_STANDARD_ERRORS, RTOL_LOOSE

PARAMETERIZATIONS = ("eps", "x0", "v")


def _toy_model(num_classes=3, seed=0):
    model = ToyMLP(2, (32, 32), 8, num_classes=num_classes,
                   generator=torch.Generator().manual_seed(seed)).double()  # fmt: skip
    return lambda x, t, y: model(x, t, y)


def _inputs(batch=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, generator=g, dtype=torch.float64)
    t = torch.randint(1, 50, (batch,), generator=g)
    y = torch.randint(0, 3, (batch,), generator=g)
    return x, t, y


@pytest.mark.parametrize("batched", [True, False])
def test_scale_one_is_the_conditional_and_zero_the_unconditional_prediction(batched):
    """s = 1 gives out(x_t, y) and s = 0 gives out(x_t, null), to float64 round-off."""
    model = _toy_model()
    x, t, y = _inputs()
    null = torch.full_like(y, 3)
    for scale, expected in ((1.0, model(x, t, y)), (0.0, model(x, t, null))):
        guided = ClassifierFreeGuidance(model, y, null, scale, batched=batched)(x, t)
        torch.testing.assert_close(guided, expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


def test_batched_pass_equals_two_separate_passes():
    """One forward pass over [x; x] with [y; null] equals two passes of B samples (a
    class-conditional U-Net in eval mode: GroupNorm and attention act per sample)."""
    unet = UNet.tiny(in_channels=1, num_classes=4).double().eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
        x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        t, y = torch.tensor([1, 10, 100]), torch.tensor([0, 3, 2])
        null = torch.full_like(y, 4)
        both = [ClassifierFreeGuidance(unet, y, null, 3.0, batched=b)(x, t) for b in (True, False)]
    torch.testing.assert_close(both[0], both[1], rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


@settings(max_examples=25)
@given(gaussian_mixtures(min_K=2, max_D=2), schedules(max_T=100), st.floats(0, 6), st.data())
def test_guidance_is_the_same_in_every_parameterization(mixture, schedule, scale, data):
    """Guiding eps, x0 or v gives the same step: the guided x0 and v outputs, turned into
    eps, equal the guided eps output (the maps are affine with weights summing to 1)."""
    x = torch.from_numpy(
        np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(5, mixture.D))
    )
    t = torch.tensor(data.draw(st.lists(st.integers(1, schedule.T), min_size=5, max_size=5)))
    y = torch.tensor(data.draw(st.lists(st.integers(0, mixture.K - 1), min_size=5, max_size=5)))
    null = torch.full_like(y, mixture.K)
    eps = {}
    for p in PARAMETERIZATIONS:
        model = MixtureConditionalDenoiser(mixture, schedule, p)
        out = ClassifierFreeGuidance(model, y, null, scale)(x, t)
        eps[p] = GaussianDiffusion(schedule, p).x0_eps_from_prediction(out, x, t)[1]
    for p in ("x0", "v"):
        np.testing.assert_allclose(eps[p], eps["eps"], rtol=1e-6, atol=1e-6)


def test_rescale_end_points():
    """phi = 0 leaves the guided output unchanged; phi = 1 gives it the conditional
    output's per-sample standard deviation (Lin et al. 2024, sec. 3.4)."""
    g = torch.Generator().manual_seed(3)
    guided = 3 * torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    conditional = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    torch.testing.assert_close(rescale_guided(guided, conditional, 0.0), guided)
    rescaled = rescale_guided(guided, conditional, 1.0)
    torch.testing.assert_close(rescaled.std(dim=(1, 2, 3)), conditional.std(dim=(1, 2, 3)))


def test_bad_arguments_are_refused():
    model = _toy_model()
    y = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="scale"):
        ClassifierFreeGuidance(model, y, y, -1.0)
    with pytest.raises(ValueError, match="rescale"):
        ClassifierFreeGuidance(model, y, y, 1.0, rescale=2.0)
    with pytest.raises(ValueError, match="null_condition"):
        ClassifierFreeGuidance(model, y, y[:1], 1.0)
    with pytest.raises(ValueError, match="form"):
        ClassifierGuidance(model, GaussianDiffusion(linear_schedule(10)), None, y, 1.0, form="x")


def _draw_batch(data, mixture, schedule, n):
    """x_t: (n, D) standard normal, t: (n,) in 1..T, y: (n,) in 0..K-1."""
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    steps = st.lists(st.integers(1, schedule.T), min_size=n, max_size=n)
    labels = st.lists(st.integers(0, mixture.K - 1), min_size=n, max_size=n)
    x = torch.from_numpy(rng.normal(size=(n, mixture.D)))
    return x, torch.tensor(data.draw(steps)), torch.tensor(data.draw(labels))


# -- classifier guidance with the exact class posterior ------------------------------------


@settings(max_examples=25)
@given(
    gaussian_mixtures(min_K=2, max_D=2),
    schedules(max_T=200),
    st.sampled_from(PARAMETERIZATIONS),
    st.data(),
)
def test_classifier_guidance_with_the_exact_posterior_gives_the_class_conditional_score(
    mixture, schedule, parameterization, data
):
    """Bayes: grad log q_t(x | y) = grad log q_t(x) + grad log p(y | x_t), so at s = 1 the
    eps form eps - sqrt(1 - alpha_bar_t) grad log p(y | x_t) applied to the exact marginal
    denoiser equals the exact denoiser of component y, in every parameterization. Compared
    as eps = -sqrt(1 - alpha_bar_t) x score: an x0 output near zero SNR carries the eps
    round-off divided by sqrt(alpha_bar_t), down to 1e-10 on the drawn schedules."""
    x = torch.from_numpy(
        np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(5, mixture.D))
    )
    t = torch.tensor(data.draw(st.lists(st.integers(1, schedule.T), min_size=5, max_size=5)))
    y = torch.tensor(data.draw(st.lists(st.integers(0, mixture.K - 1), min_size=5, max_size=5)))
    exact = MixtureConditionalDenoiser(mixture, schedule, parameterization)
    marginal = lambda xt, tt: exact(xt, tt, torch.full_like(y, mixture.K))  # noqa: E731
    diffusion = GaussianDiffusion(schedule, parameterization)
    posterior = MixtureClassPosterior(mixture, schedule)
    score = lambda out: diffusion.x0_eps_from_prediction(out, x, t)[1]  # noqa: E731
    guided = ClassifierGuidance(marginal, diffusion, posterior.log_prob, y, 1.0, form="eps")
    np.testing.assert_allclose(score(guided(x, t)), score(exact(x, t, y)), rtol=1e-8, atol=1e-8)
    unguided = ClassifierGuidance(marginal, diffusion, posterior.log_prob, y, 0.0, form="eps")
    np.testing.assert_allclose(score(unguided(x, t)), score(marginal(x, t)), rtol=1e-8, atol=1e-8)


@settings(max_examples=20)
@given(gaussian_mixtures(min_K=2, max_D=2), schedules(min_T=2, max_T=200), st.floats(0, 5),
       st.sampled_from(["mean", "xt"]), st.data())  # fmt: skip
def test_mean_form_shifts_the_reverse_mean_by_s_sigma_times_the_gradient(
    mixture, schedule, scale, gradient_at, data
):
    """Algorithm 1 of Dhariwal & Nichol: the guided step's mean is mu + s Sigma g, with g
    the gradient of log p(y | .) at mu and step t - 1 (or at x_t and step t)."""
    x = torch.from_numpy(
        np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(4, mixture.D))
    )
    t = torch.tensor(data.draw(st.lists(st.integers(1, schedule.T), min_size=4, max_size=4)))
    y = torch.tensor(data.draw(st.lists(st.integers(0, mixture.K - 1), min_size=4, max_size=4)))
    diffusion = GaussianDiffusion(schedule, "eps")
    denoiser = lambda xt, tt: torch.from_numpy(mixture.denoiser(schedule)(xt.numpy(), tt.numpy()))  # noqa: E731
    posterior = MixtureClassPosterior(mixture, schedule)
    guided = ClassifierGuidance(denoiser, diffusion, posterior.log_prob, y, scale,
                                form="mean", gradient_at=gradient_at)  # fmt: skip
    plain = diffusion.p_mean_variance(denoiser(x, t), x, t)
    point, at = (plain["mean"], t - 1) if gradient_at == "mean" else (x, t)
    g = class_log_prob_gradient(posterior.log_prob, point, at, y)
    shifted = diffusion.p_mean_variance(guided(x, t), x, t)["mean"]
    np.testing.assert_allclose(
        shifted, plain["mean"] + scale * plain["var"] * g, rtol=1e-7, atol=1e-7
    )


# -- guided sampling of a mixture -----------------------------------------------------------

MIXTURE = GaussianMixture.isotropic([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], 0.3)
N = 2000


def _guided_samples(y: int, scale: float) -> np.ndarray:
    schedule = linear_schedule(1000)
    model = MixtureConditionalDenoiser(MIXTURE, schedule, "eps")
    labels = torch.full((N,), y)
    guided = ClassifierFreeGuidance(model, labels, torch.full((N,), MIXTURE.K), scale)
    x_T = torch.randn(N, 2, generator=torch.Generator().manual_seed(y), dtype=torch.float64)
    return sample_ddim(guided, GaussianDiffusion(schedule), x_T, steps=100, eta=0.0).numpy()


@pytest.mark.parametrize("y", [0, 2])
def test_guided_sampler_at_scale_one_reproduces_the_class_component(y):
    """s = 1 with the exact class-conditional denoiser: the samples follow N(mu_y, 0.3^2 I):
    every sample is assigned to component y, and the sample mean lies within 4 standard
    errors (0.3 / sqrt(N) per coordinate) of mu_y."""
    x0 = _guided_samples(y, 1.0)
    assert np.all(MIXTURE.responsibilities(x0).argmax(axis=1) == y)
    bound = N_STANDARD_ERRORS * 0.3 / np.sqrt(N)
    np.testing.assert_array_less(np.abs(x0.mean(axis=0) - MIXTURE.means[y]), bound)


def test_guided_sampler_at_scale_zero_reproduces_the_marginal():
    """s = 0 ignores the label: whatever class is asked for, the share of samples in each
    component lies within 4 standard errors sqrt(w (1 - w) / N) of its weight w_k."""
    x0 = _guided_samples(0, 0.0)
    shares = np.bincount(MIXTURE.responsibilities(x0).argmax(axis=1), minlength=3) / N
    bound = N_STANDARD_ERRORS * np.sqrt(MIXTURE.weights * (1 - MIXTURE.weights) / N)
    np.testing.assert_array_less(np.abs(shares - MIXTURE.weights), bound)
