"""Character-level text diffusion: score in bits per character, sample and infill.

Functions of a trained sequence denoiser (`minidiff.nn.sequence`) and its process: the
absorbing diffusion in continuous time (`masked.MaskedDiffusion`, MDLM) or the uniform
D3PM with its hybrid loss (`d3pm.D3PM`), over the vocabulary of `minidiff.data.text`.
Training is `minidiff.training.Trainer`'s, through a preset (`minidiff.configs`,
``text-kjv``) and `minidiff.runs.train`.

Bits per character come from the negative ELBO, so they are an upper bound on the
model's true cross-entropy; each window of ``length`` characters is scored on its own
(no context across windows).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from minidiff.data.text import MASK_ID, decode, encode
from minidiff.discrete.d3pm import D3PM
from minidiff.discrete.masked import MaskedDiffusion

__all__ = ["PROMPT_MASK", "parse_prompt", "sample_text", "text_bits_per_char"]

PROMPT_MASK = "_"  # a prompt's characters to generate
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def text_bits_per_char(
    denoiser: Denoiser,
    diffusion: MaskedDiffusion | D3PM,
    ids: torch.Tensor,
    length: int,
    *,
    repeats: int = 4,
    batch: int = 64,
    seed: int = 0,
) -> tuple[float, float]:
    """The NELBO of ``ids`` (N,) in bits per character, an upper bound, and its standard error.

    The text is cut into consecutive windows of ``length``; each is scored ``repeats``
    times with independent t and masks (``diffusion.nelbo``).
    """
    windows = ids[: ids.shape[0] // length * length].reshape(-1, length)
    if windows.shape[0] == 0:
        raise ValueError(
            f"ids must hold at least one window of {length} tokens, got {ids.shape[0]}"
        )
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(repeats):
        for start in range(0, windows.shape[0], batch):
            values.append(diffusion.nelbo(denoiser, windows[start : start + batch], generator))
    nats = torch.cat(values).double()
    scale = 1.0 / math.log(2.0)
    return float(nats.mean()) * scale, float(nats.std() / math.sqrt(nats.numel())) * scale


def parse_prompt(prompt: str, length: int | None = None) -> torch.Tensor:
    """(L,) ids of a prompt where ``"_"`` marks a character to generate; padded with masks
    to ``length`` if given.

    Raises:
        ValueError: a character outside the vocabulary, or ``length`` below the prompt's.
    """
    ids = torch.tensor(
        [MASK_ID if c == PROMPT_MASK else int(encode(c)[0]) for c in prompt], dtype=torch.int64
    )
    if length is not None:
        if length < ids.shape[0]:
            raise ValueError(
                f"length {length} is shorter than the prompt ({ids.shape[0]} characters)"
            )
        ids = torch.cat([ids, torch.full((length - ids.shape[0],), MASK_ID)])
    return ids


@torch.no_grad()
def sample_text(
    denoiser: Denoiser,
    diffusion: MaskedDiffusion | D3PM,
    n: int,
    length: int,
    *,
    prompt: str | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """``n`` samples of ``length`` characters; with a prompt, its ``"_"`` are infilled and
    every other character is kept (absorbing process only). ``steps``: the unmasking
    steps of the absorbing process (default its T); the uniform D3PM takes all T."""
    if n < 1 or length < 1:
        raise ValueError(f"n and length must be >= 1, got {n} and {length}")
    if isinstance(diffusion, D3PM):
        if prompt is not None:
            raise ValueError("prompt (infilling) needs the absorbing process")
        ids = diffusion.sample(denoiser, (n, length), generator=generator)
    else:
        start = parse_prompt(prompt or "", length).expand(n, length)
        ids = diffusion.sample(denoiser, start, steps=steps, generator=generator)
    return [decode(row) for row in ids]
