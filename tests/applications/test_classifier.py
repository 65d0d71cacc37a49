"""The noise-aware classifier and the exact Gaussian-mixture oracles of
`minidiff.applications.classifier`."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.applications import (
    MixtureClassPosterior,
    MixtureConditionalDenoiser,
    NoiseAwareClassifier,
    train_noise_aware_classifier,
)
from minidiff.diffusion import GaussianDiffusion
from minidiff.process import linear_schedule
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import RTOL_LOOSE


@settings(max_examples=25)
@given(gaussian_mixtures(min_K=2), schedules(max_T=200), st.data())
def test_mixture_posterior_equals_the_noised_mixtures_responsibilities(mixture, schedule, data):
    """exp log p(k | x_t) equals `GaussianMixture.noised(schedule, t).responsibilities`,
    an independent NumPy computation, at any step."""
    t = data.draw(st.integers(0, schedule.T))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(6, mixture.D))
    posterior = MixtureClassPosterior(mixture, schedule)
    log_p = posterior.log_posterior(torch.from_numpy(x), torch.full((6,), t))
    expected = mixture.noised(schedule, t).responsibilities(x)
    np.testing.assert_allclose(log_p.exp().numpy(), expected, rtol=1e-8, atol=1e-12)


@settings(max_examples=15)
@given(gaussian_mixtures(min_K=2), schedules(max_T=200), st.data())
def test_null_label_gives_the_marginal_denoiser(mixture, schedule, data):
    """Label K (the null label) is the whole mixture's exact denoiser."""
    t = data.draw(st.integers(1, schedule.T))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(4, mixture.D))
    model = MixtureConditionalDenoiser(mixture, schedule)
    out = model(torch.from_numpy(x), torch.full((4,), t), torch.full((4,), mixture.K))
    np.testing.assert_allclose(out.numpy(), mixture.denoiser(schedule)(x, t), rtol=RTOL_LOOSE)


def test_noise_aware_classifier_learns_two_separable_classes():
    """Trained on noised copies of two constant images (-0.5 and +0.5 everywhere) for 40
    steps, the classifier's log p(y | x_t) is a normalised log-probability and it tells
    the clean images apart (accuracy 1 on 64 clean draws of each)."""
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(linear_schedule(100))
    images = torch.cat([torch.full((1, 1, 8, 8), -0.5), torch.full((1, 1, 8, 8), 0.5)])
    labels = torch.tensor([0, 1])
    classifier = NoiseAwareClassifier(1, 2)
    generator = torch.Generator().manual_seed(0)
    losses = train_noise_aware_classifier(
        classifier, diffusion, images, labels, steps=40, batch_size=16, generator=generator
    )
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    x = images.repeat_interleave(64, dim=0)
    y = labels.repeat_interleave(64)
    t = torch.zeros(128, dtype=torch.int64)
    with torch.no_grad():
        total = sum(classifier.log_prob(x, t, torch.full_like(y, k)).exp() for k in (0, 1))
        torch.testing.assert_close(total, torch.ones(128))
        assert (classifier(x, t).argmax(dim=1) == y).all()
