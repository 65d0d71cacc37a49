"""`train_conditional`, `sample_guided` and classifier-guided sampling at toy sizes."""

from __future__ import annotations

import pytest
import torch

from minidiff.applications.pipeline import (
    ConditionalConfig,
    sample_classifier_guided,
    sample_guided,
    train_conditional,
    train_digits_classifier,
)

TINY = dict(steps=2, batch_size=8, T=20, sampling_steps=2, warmup_steps=1)


@pytest.mark.parametrize("condition, asked", [
    ("class", [0, 7, 3]),
    ("caption", ["a thick seven", "the digit 3", ""]),
])  # fmt: skip
def test_train_and_sample_at_toy_size(condition, asked):
    """Training runs, the result is in eval mode with finite losses, and guided samples
    are images in [-1, 1], the same for the same generator seed."""
    trained = train_conditional(ConditionalConfig(condition=condition, **TINY))
    assert len(trained.losses) == 2 and all(l == l for l in trained.losses)  # noqa: E741
    assert not trained.model.training
    draws = [sample_guided(trained, asked, 3.0, generator=torch.Generator().manual_seed(0))
             for _ in range(2)]  # fmt: skip
    assert draws[0].shape == (3, 1, 8, 8) and draws[0].abs().max() <= 1.0
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)


def test_classifier_guided_sampling_needs_a_class_model():
    trained = train_conditional(ConditionalConfig(**TINY))
    classifier = train_digits_classifier(trained, steps=2, batch_size=8)
    x = sample_classifier_guided(trained, classifier, [1, 2], 2.0)
    assert x.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        sample_guided(trained, [10], 1.0)
    captioned = train_conditional(ConditionalConfig(condition="caption", **TINY))
    with pytest.raises(ValueError, match="class model"):
        sample_classifier_guided(captioned, classifier, [1], 1.0)
    with pytest.raises(ValueError, match="captions"):
        sample_guided(captioned, "a seven", 1.0)


@pytest.mark.parametrize("field, value", [("condition", "image"), ("p_uncond", 1.5),
                                          ("steps", -1), ("sampling_steps", 2000)])  # fmt: skip
def test_config_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        ConditionalConfig(**{field: value})
