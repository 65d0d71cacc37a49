"""Samples of text and audio runs: characters printed or infilled, waveforms written.

A text run (a sequence denoiser with a discrete diffusion, preset ``text-kjv``) samples
strings with `sample_text` of its EMA network; an audio run (a DiffWave network with the
Gaussian diffusion, presets ``audio`` and ``audio-digits``) samples waveforms with
`minidiff.runs.sample`, which `save_audio` writes as WAV files and a spectrogram PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from minidiff.runs.sampling import Run

__all__ = ["TEXT_KINDS", "save_audio", "sample_run_text"]

TEXT_KINDS = ("absorbing", "uniform")  # diffusion kinds whose runs sample text


def sample_run_text(
    run: Run,
    n: int,
    *,
    length: int | None = None,
    prompt: str | None = None,
    steps: int | None = None,
    seed: int = 0,
) -> list[str]:
    """``n`` strings from a text run, or infillings of ``prompt`` (``"_"`` the characters
    to generate; the absorbing process only), via `minidiff.discrete.sample_text`.

    Args:
        run: from `load_run`, of a preset whose diffusion kind is one of `TEXT_KINDS`.
        n: the number of samples, >= 1.
        length: characters per sample (default: the prompt's length, else the preset's
            ``model.length``); a prompt shorter than it is padded with masks.
        steps: unmasking steps (default: the preset's ``sampling.sampling_steps`` or T).
        seed: seeds the sampler.

    Raises:
        ValueError: not a text run, a bad ``n``, ``length`` or ``steps``, a prompt with a
            character outside the vocabulary, or a prompt for the uniform process.
    """
    from minidiff.discrete import sample_text

    p = run.preset
    if p.diffusion_kind not in TEXT_KINDS:
        raise ValueError(f"run {p.name!r} has diffusion kind {p.diffusion_kind!r}, not text "
                         f"({TEXT_KINDS})")  # fmt: skip
    for name, value in (("n", n), ("length", length), ("steps", steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):  # fmt: skip
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if length is None:
        length = len(prompt) if prompt else p.sample_shape[0]
    steps = p.sampling.sampling_steps if steps is None else steps
    generator = torch.Generator().manual_seed(seed)
    return sample_text(run.model, run.diffusion, n, length, prompt=prompt, steps=steps,
                       generator=generator)  # fmt: skip


def save_audio(waveforms: torch.Tensor, folder: str | os.PathLike, *,
               titles: list[str] | None = None) -> list[Path]:  # fmt: skip
    """Write each of the (N, 1, S) waveforms in [-1, 1] as ``folder/sample_I.wav`` (16-bit
    PCM at `minidiff.data.audio.SAMPLE_RATE`, the standard library's `wave`) and all of
    them as ``folder/spectrograms.png`` (waveform over log-mel spectrogram, one column
    each); returns the paths, the PNG last. The folder is created if missing."""
    from minidiff.data.audio import SAMPLE_RATE, write_wav
    from minidiff.evaluation.audio import save_spectrograms

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    waveforms = waveforms.detach().float().cpu()
    paths = [write_wav(folder / f"sample_{i}.wav", w) for i, w in enumerate(waveforms)]
    png = folder / "spectrograms.png"
    save_spectrograms(waveforms, png, SAMPLE_RATE, titles=titles)
    return [*paths, png]
