"""Tests of `minidiff.evaluation.audio`: dominant frequency, mel filters, the digits judge."""

import numpy as np
import pytest
import torch

from minidiff.data.audio import SAMPLE_RATE, synthetic_tones
from minidiff.evaluation.audio import (
    SpokenDigitsJudge,
    dominant_frequency,
    frequency_distance,
    log_mel,
    mel_filterbank,
    save_spectrograms,
)


def test_dominant_frequency_recovers_the_pitch_of_tones():
    """For synthetic tones the spectral peak lies within one padded bin (plus the
    envelope's broadening, < 8 Hz here) of the true pitch."""
    x, p = synthetic_tones(50, 2048, generator=torch.Generator().manual_seed(0))
    error = np.abs(dominant_frequency(x, SAMPLE_RATE) - p["frequency"].numpy())
    assert error.max() < 8.0


def test_frequency_distance_floor_and_shift():
    """Two draws of the same law are close; shifting one set by 100 Hz moves W1 by 100 Hz."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(200, 1000, 4000), rng.uniform(200, 1000, 4000)
    assert frequency_distance(a, b) < 20.0
    assert frequency_distance(a, a + 100.0) == pytest.approx(100.0, rel=1e-12)


def test_mel_filterbank_is_a_partition_inside_its_range():
    """Triangles are non-negative, peak at 1, and adjacent ones sum to 1 between the first
    and last centre (HTK-style overlapping filters)."""
    fb = mel_filterbank(512, SAMPLE_RATE, 20).numpy()
    assert (fb >= 0).all() and np.allclose(fb.max(axis=1), 1.0, atol=0.1)
    bins = np.linspace(0, SAMPLE_RATE / 2, 257)
    centres = bins[fb.argmax(axis=1)]
    inside = (bins > centres[0]) & (bins < centres[-1])
    np.testing.assert_allclose(fb.sum(axis=0)[inside], 1.0, rtol=1e-5, atol=1e-5)


def test_log_mel_shape_and_pure_tone_band():
    """(N, bands, frames); a 1 kHz tone puts its energy in the band whose centre is nearest."""
    s = torch.arange(8000) / SAMPLE_RATE
    x = torch.sin(2 * np.pi * 1000 * s)[None, None]
    mel = log_mel(x, SAMPLE_RATE)
    assert mel.shape == (1, 40, 8000 // 128 + 1)
    centres = mel_filterbank(256, SAMPLE_RATE, 40).argmax(dim=1) * SAMPLE_RATE / 256
    assert abs(centres[mel[0].mean(1).argmax()] - 1000) <= 100


def test_judge_separates_tones_by_pitch_class():
    """Fitted on tones labelled by pitch band, the judge classifies fresh tones, its features
    have the hidden width, and the Fréchet distance of a set to itself is ~0."""

    def labelled(seed):
        x, p = synthetic_tones(300, 2048, generator=torch.Generator().manual_seed(seed))
        return x, torch.as_tensor(((p["frequency"] - 200) // 200).long().numpy())

    x, y = labelled(0)
    judge = SpokenDigitsJudge.fit(x, y, SAMPLE_RATE, hidden=16)
    x_new, y_new = labelled(1)
    assert judge.accuracy(x_new, y_new) > 0.8  # 4 classes: chance is 0.25
    assert judge.features(x_new).shape == (300, 16)
    assert judge.frechet(x_new, x_new) == pytest.approx(0.0, abs=1e-6)


def test_save_spectrograms_writes_a_png(tmp_path):
    """A PNG file appears; a titles list of the wrong length is rejected."""
    x, _ = synthetic_tones(2, 512)
    save_spectrograms(x, tmp_path / "s.png", SAMPLE_RATE, titles=["a", "b"])
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="titles"):
        save_spectrograms(x, tmp_path / "t.png", SAMPLE_RATE, titles=["a"])
