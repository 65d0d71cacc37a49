"""Classifier guidance on a tiny ``digits-cond`` run: the classifier, the guided samples
and what is refused."""

from __future__ import annotations

import pytest
import torch

from minidiff.applications.pipeline import sample_classifier_guided, train_digits_classifier
from minidiff.configs import override, preset
from minidiff.diffusion import sample_ddim
from minidiff.runs import load_run, train
from tests.runs.test_sampling import perturbed_run
from tests.test_runs import TINY

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    """A 4-step digits-cond run, its weights perturbed away from the zero-initialised
    output layer so that the prediction depends on its inputs."""
    out = tmp_path_factory.mktemp("pipeline") / "run"
    train(override(preset("digits-cond"), TINY), out, device="cpu", progress=False)
    return perturbed_run(out)


def test_scale_zero_is_ddim_on_the_unconditional_prediction(cond_run):
    """s = 0: the samples are DDIM's on model(x_t, t, null label) from the same seed; s = 2
    moves them, stays in [-1, 1] and repeats with the seed."""
    classifier = train_digits_classifier(cond_run, steps=2, batch_size=8)
    labels = torch.tensor([1, 7, 3])
    unguided = sample_classifier_guided(cond_run, classifier, labels, 0.0, seed=4)
    g = torch.Generator().manual_seed(4)
    x_T = torch.randn(3, 1, 8, 8, generator=g)
    s = cond_run.preset.sampling
    with torch.no_grad():
        expected = sample_ddim(lambda xt, t: cond_run.model(xt, t, torch.full((3,), 10)),
                               cond_run.diffusion, x_T, steps=s.sampling_steps,
                               eta=s.sampling_eta, generator=g, clip_x0=1.0)  # fmt: skip
    torch.testing.assert_close(unguided, expected, rtol=0, atol=0)
    guided = sample_classifier_guided(cond_run, classifier, labels, 2.0, seed=4)
    assert guided.shape == (3, 1, 8, 8) and guided.abs().max() <= 1.0
    assert not torch.equal(guided, unguided)
    assert torch.equal(guided, sample_classifier_guided(cond_run, classifier, labels, 2.0, seed=4))


def test_bad_labels_and_unconditional_runs_are_refused(cond_run, tmp_path):
    classifier = train_digits_classifier(cond_run, steps=1, batch_size=8)
    for bad in ([10], [-1], [[1, 2]]):
        with pytest.raises(ValueError, match=r"labels must be \(N,\) classes in 0\.\.9"):
            sample_classifier_guided(cond_run, classifier, bad, 1.0)
    plain = tmp_path / "plain"
    train(override(preset("digits"), [*TINY, "steps=1", "sample_every=0"]), plain,
          device="cpu", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="needs a class-conditional run"):
        train_digits_classifier(load_run(plain, device="cpu"), steps=1)
