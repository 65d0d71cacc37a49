"""Tests of `minidiff.diffusion.audio`: the waveform pipeline at toy size."""

import numpy as np
import pytest
import torch

from minidiff.data.audio import synthetic_tones
from minidiff.diffusion.audio import (
    AudioDiffusionConfig,
    build_audio_model,
    sample_audio,
    train_audio,
)


def test_schedule_is_diffwaves():
    """T = 50 betas linearly from 1e-4 to 0.05 (Kong et al. 2021)."""
    model = build_audio_model(AudioDiffusionConfig(channels=4, layers=2))
    np.testing.assert_allclose(
        model.diffusion.schedule.beta[1:], np.linspace(1e-4, 0.05, 50), rtol=1e-12
    )


@pytest.mark.parametrize("num_classes", [None, 3])
def test_train_and_sample_shapes(num_classes):
    """A few steps train; samples have the asked shape and lie in [-1, 1]."""
    x, _ = synthetic_tones(32, 64, generator=torch.Generator().manual_seed(0))
    labels = None if num_classes is None else torch.arange(32) % num_classes
    config = AudioDiffusionConfig(
        channels=8, layers=3, dilation_cycle=3, batch=4, steps=6, num_classes=num_classes
    )
    model, history = train_audio(config, x, labels, log_every=3)
    assert len(history) == 2 and all(np.isfinite(r["loss"]) for r in history)
    y = None if num_classes is None else torch.tensor([0, 2])
    for ddim_steps in (None, 5):
        out = sample_audio(
            model,
            2,
            64,
            labels=y,
            ddim_steps=ddim_steps,
            generator=torch.Generator().manual_seed(0),
        )
        assert out.shape == (2, 1, 64) and out.abs().max() <= 1


def test_labels_must_match_conditioning():
    """Labels without num_classes (or the reverse) are rejected."""
    x, _ = synthetic_tones(4, 32)
    with pytest.raises(ValueError, match="labels"):
        train_audio(
            AudioDiffusionConfig(channels=4, layers=1, steps=1), x, torch.zeros(4, dtype=torch.long)
        )
