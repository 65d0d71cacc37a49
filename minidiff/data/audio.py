"""Audio for 1-D diffusion: synthetic tones, spoken digits from espeak-ng, WAV files.

- `synthetic_tones`: a sine with random pitch, phase and an attack-decay envelope; every
  parameter is returned, so metrics have ground truth (the dominant frequency of a tone is
  its pitch).
- `spoken_digits`: "zero" .. "nine" spoken by Debian's ``espeak-ng`` speech synthesiser
  over accents, voice variants, pitch and speed, resampled to 8 kHz and centred in one
  second (8000 samples), split by voice (the variants in `TEST_VARIANTS` are held out):
  a small set in the spirit of SC09 (the digits of Speech Commands, Warden 2018). The
  synthesis takes minutes, so the array is cached in a ``.npz`` file.
- `write_wav`, `read_wav`: 16-bit mono PCM through the standard library's ``wave`` module.

Waveforms are float32 in [-1, 1], shape (N, 1, S) (one channel, S samples).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from minidiff.atomic import write_file

__all__ = [
    "SAMPLE_RATE",
    "DIGIT_WORDS",
    "ACCENTS",
    "VARIANTS",
    "TEST_VARIANTS",
    "AUDIO_SPLITS",
    "AudioSplit",
    "AudioDataMissingError",
    "synthetic_tones",
    "spoken_digits",
    "synthesise_word",
    "write_wav",
    "read_wav",
]

SAMPLE_RATE = 8000  # Hz, the rate of every waveform here
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-029")
VARIANTS = ("m1", "m2", "m3", "f1", "f2", "f3")  # espeak-ng voice variants (+m1, ...)
TEST_VARIANTS = ("m3", "f3")  # voices held out for the test split
PITCHES = (35, 65)  # espeak-ng -p (0..99)
SPEEDS = (140, 175)  # espeak-ng -s, words per minute
AudioSplit = Literal["train", "test"]
AUDIO_SPLITS: tuple[str, ...] = get_args(AudioSplit)
ESPEAK_PACKAGE = "espeak-ng"


class AudioDataMissingError(RuntimeError):
    """The espeak-ng program is missing or failed."""


def synthetic_tones(
    n: int,
    length: int = 2048,
    *,
    f_min: float = 200.0,
    f_max: float = 1000.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Tones x(s) = 0.8 env(s) sin(2 pi f s / 8000 + phi) with known parameters.

    f ~ U(f_min, f_max) Hz, phi ~ U(0, 2 pi), and env(s) = (1 - exp(-s / a)) exp(-s / d)
    normalised to a peak of 1, with attack a ~ U(10, 200) and decay d ~ U(length / 4, 4 length)
    samples.

    Returns:
        waveforms (n, 1, length) float32, and ``{"frequency", "phase", "attack", "decay"}``,
        each (n,) float64.
    """
    if n < 1 or length < 16:
        raise ValueError(f"n must be >= 1 and length >= 16, got {n} and {length}")
    if not 0 < f_min < f_max < SAMPLE_RATE / 2:
        raise ValueError(f"need 0 < f_min < f_max < {SAMPLE_RATE / 2} Hz, got {f_min}, {f_max}")
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    params = {
        "frequency": f_min + (f_max - f_min) * u[:, 0],
        "phase": 2 * math.pi * u[:, 1],
        "attack": 10.0 + 190.0 * u[:, 2],
        "decay": length / 4 + (4 * length - length / 4) * u[:, 3],
    }
    s = torch.arange(length, dtype=torch.float64)[None, :]  # (1, length)
    envelope = (1 - torch.exp(-s / params["attack"][:, None])) * torch.exp(
        -s / params["decay"][:, None]
    )
    envelope = envelope / envelope.amax(dim=1, keepdim=True)
    angle = 2 * math.pi * params["frequency"][:, None] * s / SAMPLE_RATE + params["phase"][:, None]
    return (0.8 * envelope * torch.sin(angle)).float()[:, None, :], params


def _espeak() -> str:
    program = shutil.which("espeak-ng")
    if program is None:
        raise AudioDataMissingError(
            f"the espeak-ng program was not found; the spoken digits are synthesised by the "
            f"Debian package {ESPEAK_PACKAGE}: `apt-get install {ESPEAK_PACKAGE}` "
            f"(or `make system-deps` as root)"
        )
    return program


def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM bytes (espeak-ng's stdout, whose header may give a bogus length)."""
    with wave.open(io.BytesIO(data)) as f:
        rate, width, channels = f.getframerate(), f.getsampwidth(), f.getnchannels()
        frames = f.readframes(f.getnframes())
    if width != 2 or channels != 1:
        raise AudioDataMissingError(f"espeak-ng wrote {channels} channels of {8 * width} bits")
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0, rate


def _fit_one_second(audio: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 8 kHz (polyphase, scipy) and centre in 8000 samples, cropping if longer."""
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, rate)
    audio = resample_poly(audio, SAMPLE_RATE // g, rate // g)
    loud = np.flatnonzero(np.abs(audio) > 0.02)  # trim leading and trailing silence
    if loud.size:
        audio = audio[loud[0] : loud[-1] + 1]
    if audio.shape[0] > SAMPLE_RATE:
        start = (audio.shape[0] - SAMPLE_RATE) // 2
        audio = audio[start : start + SAMPLE_RATE]
    out = np.zeros(SAMPLE_RATE)
    start = (SAMPLE_RATE - audio.shape[0]) // 2
    out[start : start + audio.shape[0]] = audio
    return out


def synthesise_word(word: str, accent: str, variant: str, pitch: int, speed: int) -> np.ndarray:
    """One word spoken by espeak-ng: (8000,) float64 at 8 kHz, centred in one second."""
    result = subprocess.run(
        [
            _espeak(),
            "-v",
            f"{accent}+{variant}",
            "-p",
            str(pitch),
            "-s",
            str(speed),
            "--stdout",
            word,
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0 or not result.stdout:
        raise AudioDataMissingError(
            f"espeak-ng failed for {word!r} ({accent}+{variant}): {result.stderr!r}"
        )
    return _fit_one_second(*_read_wav_bytes(result.stdout))


def _default_cache() -> Path:
    root = os.environ.get("MINIDIFF_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "minidiff"
    )
    return Path(root) / "spoken_digits_8k.npz"


def _synthesise_all(accents, variants) -> dict[str, np.ndarray]:
    rows = list(itertools.product(accents, variants, PITCHES, SPEEDS, range(len(DIGIT_WORDS))))
    audio = np.stack([synthesise_word(DIGIT_WORDS[d], a, v, p, s) for a, v, p, s, d in rows])
    return {
        "audio": audio.astype(np.float32),
        "label": np.array([r[4] for r in rows], dtype=np.int64),
        "voice": np.array([f"{r[0]}+{r[1]}" for r in rows]),
    }


def spoken_digits(
    split: AudioSplit = "train",
    *,
    cache: str | os.PathLike[str] | None = None,
    accents: tuple[str, ...] = ACCENTS,
    variants: tuple[str, ...] = VARIANTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spoken digits at 8 kHz: waveforms (N, 1, 8000) float32 and labels (N,) int64 (0..9).

    Voices are accent+variant pairs; the test split holds every voice whose variant is in
    `TEST_VARIANTS`, the train split the others, each over all pitches and speeds. The
    synthesis is cached in ``cache`` (default ``$MINIDIFF_DATA`` or ``~/.cache/minidiff``,
    file ``spoken_digits_8k.npz``) and redone when the voice lists differ.

    Raises:
        AudioDataMissingError: espeak-ng is missing or fails.
    """
    if split not in AUDIO_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {AUDIO_SPLITS}")
    path = Path(cache) if cache is not None else _default_cache()
    key = np.array(["|".join(accents), "|".join(variants)])
    data = None
    if path.exists():
        with np.load(path) as stored:
            if np.array_equal(stored["key"], key):
                data = {name: stored[name] for name in ("audio", "label", "voice")}
    if data is None:
        data = _synthesise_all(accents, variants)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, lambda f: np.savez_compressed(f, key=key, **data))
    held_out = np.array([voice.split("+")[1] in TEST_VARIANTS for voice in data["voice"]])
    keep = held_out if split == "test" else ~held_out
    return torch.from_numpy(data["audio"][keep])[:, None, :], torch.from_numpy(data["label"][keep])


def write_wav(path: str | os.PathLike[str], waveform, rate: int = SAMPLE_RATE) -> Path:
    """Write a mono waveform (S,) or (1, S) in [-1, 1] as 16-bit PCM (clipped), atomically."""
    audio = np.asarray(torch.as_tensor(waveform, dtype=torch.float64).cpu()).squeeze()
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"waveform must be mono, shape (S,) or (1, S), got {np.shape(waveform)}")
    if not np.isfinite(audio).all():
        raise ValueError("waveform holds NaN or infinite values")
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")

    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.tobytes())

    path = Path(path)
    write_file(path, write)
    return path


def read_wav(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """A 16-bit mono WAV file as (S,) float32 in [-1, 1] and its sample rate."""
    audio, rate = _read_wav_bytes(Path(path).read_bytes())
    return torch.from_numpy(audio).float(), rate
