"""Tests of `minidiff.data.audio`: tones, spoken digits, WAV files."""

import shutil

import numpy as np
import pytest
import torch

from minidiff.data import audio
from minidiff.data.audio import SAMPLE_RATE, read_wav, synthetic_tones, write_wav
from tests.requirements import needs

needs_espeak = needs(shutil.which("espeak-ng") is not None, "espeak-ng not installed")


def test_tones_follow_their_parameters():
    """Each tone equals 0.8 env(s) sin(2 pi f s / rate + phi) with its returned parameters,
    peaks at 0.8 in envelope, and the parameters lie in their ranges."""
    x, p = synthetic_tones(5, 512, generator=torch.Generator().manual_seed(0))
    s = torch.arange(512, dtype=torch.float64)
    env = (1 - torch.exp(-s / p["attack"][:, None])) * torch.exp(-s / p["decay"][:, None])
    env = env / env.amax(1, keepdim=True)
    expected = (
        0.8
        * env
        * torch.sin(2 * np.pi * p["frequency"][:, None] * s / SAMPLE_RATE + p["phase"][:, None])
    )
    torch.testing.assert_close(x[:, 0].double(), expected, rtol=1e-6, atol=1e-6)
    assert ((p["frequency"] >= 200) & (p["frequency"] <= 1000)).all()
    assert x.abs().max() <= 0.8 + 1e-6


def test_tones_reject_bad_ranges():
    """Frequencies above Nyquist and tiny lengths are rejected."""
    with pytest.raises(ValueError, match="f_max"):
        synthetic_tones(1, f_max=5000.0)
    with pytest.raises(ValueError, match="length"):
        synthetic_tones(1, 4)


def test_wav_round_trip(tmp_path):
    """write_wav then read_wav gives the waveform back to 16-bit precision, clipped to [-1, 1]."""
    x = torch.linspace(-1.5, 1.5, 101)
    path = write_wav(tmp_path / "a.wav", x)
    y, rate = read_wav(path)
    assert rate == SAMPLE_RATE
    torch.testing.assert_close(y, x.clamp(-1, 1), rtol=0, atol=2.0 / 32768)  # 16-bit rounding
    with pytest.raises(ValueError, match="mono"):
        write_wav(tmp_path / "b.wav", torch.zeros(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        write_wav(tmp_path / "c.wav", torch.tensor([0.0, float("nan")]))


def test_missing_espeak_is_named(monkeypatch):
    """Without espeak-ng the error names the Debian package."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(audio.AudioDataMissingError, match="apt-get install espeak-ng"):
        audio.synthesise_word("one", "en-us", "m1", 50, 160)


@pytest.mark.slow
@needs_espeak
def test_spoken_digits_split_by_voice(tmp_path, monkeypatch):
    """A small synthesis (1 accent x 3 variants, one voice variant held out): 1 s at 8 kHz,
    every digit in both splits, no voice in both, and the cache is reused."""
    monkeypatch.setattr(audio, "TEST_VARIANTS", ("f1",))
    kw = dict(cache=tmp_path / "d.npz", accents=("en-us",), variants=("m1", "m2", "f1"))
    x_train, y_train = audio.spoken_digits("train", **kw)
    x_test, y_test = audio.spoken_digits("test", **kw)
    per_voice = len(audio.PITCHES) * len(audio.SPEEDS) * 10
    assert x_train.shape == (2 * per_voice, 1, SAMPLE_RATE) and x_test.shape == (
        per_voice,
        1,
        SAMPLE_RATE,
    )
    assert set(y_train.tolist()) == set(y_test.tolist()) == set(range(10))
    assert x_train.abs().max() <= 1 and (x_train.abs().amax(-1) > 0.05).all()  # every clip speaks
    monkeypatch.setattr(audio, "synthesise_word", lambda *a: pytest.fail("cache not used"))
    assert torch.equal(audio.spoken_digits("test", **kw)[0], x_test)
