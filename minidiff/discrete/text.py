"""Character-level text diffusion: train, score in bits per character, sample and infill.

A pipeline over `minidiff.data.text` (the vocabulary, the KJV splits), a denoiser of
`minidiff.nn.sequence`, and either process of this package: the absorbing diffusion in
continuous time (`masked`, MDLM) or the uniform D3PM with its hybrid loss (`d3pm`). Each
function is callable on its own; `TextDiffusionConfig` holds every setting.

Bits per character come from the negative ELBO, so they are an upper bound on the
model's true cross-entropy; each window of ``length`` characters is scored on its own
(no context across windows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import torch

from minidiff.data.text import MASK_ID, VOCAB, decode, encode, random_windows
from minidiff.diffusion.budget import TrainingLog, check_counts
from minidiff.discrete.d3pm import D3PM, HYBRID_CE_WEIGHT
from minidiff.discrete.masked import absorbing_linear_beta, masked_nelbo, sample_masked
from minidiff.nn.sequence import DilatedConvDenoiser, SequenceDenoiserConfig, TransformerDenoiser

__all__ = [
    "TEXT_PROCESSES",
    "TEXT_NETWORKS",
    "TextProcess",
    "TextNetwork",
    "TextDiffusionConfig",
    "TextModel",
    "build_text_model",
    "train_text",
    "text_bits_per_char",
    "sample_text",
    "parse_prompt",
]

TextProcess = Literal["absorbing", "uniform"]
TextNetwork = Literal["conv", "transformer"]
TEXT_PROCESSES: tuple[str, ...] = get_args(TextProcess)
TEXT_NETWORKS: tuple[str, ...] = get_args(TextNetwork)
PROMPT_MASK = "_"  # a prompt's characters to generate


@dataclass(frozen=True)
class TextDiffusionConfig:
    """Every setting of a character diffusion run."""

    process: TextProcess = "absorbing"
    network: TextNetwork = "conv"
    width: int = 96  # model width
    depth: int = 8  # residual blocks
    heads: int = 4  # transformer only
    length: int = 256  # characters per training window
    batch: int = 32
    steps: int = 20_000  # optimiser steps (training also stops at max_seconds)
    max_seconds: float | None = None  # wall-clock budget of the loop, if any
    max_cpu_seconds: float | None = None  # CPU-time budget of the loop (fair on a shared machine)
    lr: float = 1e-3
    warmup: int = 200  # linear learning-rate warm-up steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    T: int = 1000  # uniform D3PM only: the number of steps
    ce_weight: float = HYBRID_CE_WEIGHT  # uniform D3PM only: lambda of the hybrid loss
    seed: int = 0

    def __post_init__(self) -> None:
        if self.process not in TEXT_PROCESSES:
            raise ValueError(f"unknown process {self.process!r}; expected one of {TEXT_PROCESSES}")
        if self.network not in TEXT_NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; expected one of {TEXT_NETWORKS}")
        check_counts(self, ("width", "depth", "length", "batch", "steps", "T"))


@dataclass
class TextModel:
    """A denoiser with the process that gives its logits a meaning."""

    config: TextDiffusionConfig
    network: torch.nn.Module
    d3pm: D3PM | None  # the uniform chain; None for the absorbing process

    def nelbo(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) one-sample NELBO estimates in nats per character (the training loss)."""
        if self.d3pm is None:
            return masked_nelbo(self.network, x0, MASK_ID, generator=generator)
        return self.d3pm.losses(self.network, x0, loss="vlb", generator=generator)

    def loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss: the NELBO (absorbing) or the hybrid loss (uniform)."""
        if self.d3pm is None:
            return self.nelbo(x0, generator).mean()
        c = self.config
        return self.d3pm.losses(
            self.network, x0, loss="hybrid", ce_weight=c.ce_weight, generator=generator
        ).mean()


def build_text_model(config: TextDiffusionConfig) -> TextModel:
    """A freshly initialised model (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    net_config = SequenceDenoiserConfig(
        vocab_size=len(VOCAB),
        width=config.width,
        depth=config.depth,
        heads=config.heads,
        max_length=max(config.length, 1024),
    )
    network_class = DilatedConvDenoiser if config.network == "conv" else TransformerDenoiser
    d3pm = None
    if config.process == "uniform":
        d3pm = D3PM("uniform", absorbing_linear_beta(config.T), len(VOCAB))
    return TextModel(config, network_class(net_config), d3pm)


def train_text(
    config: TextDiffusionConfig,
    train_ids: torch.Tensor,
    *,
    model: TextModel | None = None,
    log_every: int = 100,
    log: Callable[[dict], None] | None = None,
) -> tuple[TextModel, list[dict]]:
    """Train on random windows of ``train_ids`` (N,) with AdamW; returns the model and a
    history of ``{"step", "loss", "seconds", "cpu_seconds"}`` records (mean loss over the
    last ``log_every`` steps, in nats per character)."""
    model = model or build_text_model(config)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        model.network.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(config.warmup, 1))
    )
    record = TrainingLog(config.steps, log_every, config.max_seconds, config.max_cpu_seconds, log)
    model.network.train()
    for step in range(1, config.steps + 1):
        x0 = random_windows(train_ids, config.batch, config.length, generator)
        loss = model.loss(x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.network.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        if record.update(step, loss.item()):
            break
    model.network.eval()
    return model, record.history


@torch.no_grad()
def text_bits_per_char(
    model: TextModel,
    ids: torch.Tensor,
    *,
    repeats: int = 4,
    batch: int = 64,
    seed: int = 0,
) -> tuple[float, float]:
    """The NELBO of ``ids`` (N,) in bits per character, an upper bound, and its standard error.

    The text is cut into consecutive windows of ``config.length``; each is scored
    ``repeats`` times with independent t and masks.
    """
    length = model.config.length
    windows = ids[: ids.shape[0] // length * length].reshape(-1, length)
    if windows.shape[0] == 0:
        raise ValueError(
            f"ids must hold at least one window of {length} tokens, got {ids.shape[0]}"
        )
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(repeats):
        for start in range(0, windows.shape[0], batch):
            values.append(model.nelbo(windows[start : start + batch], generator).double())
    nats = torch.cat(values)
    scale = 1.0 / math.log(2.0)
    return float(nats.mean()) * scale, float(nats.std() / math.sqrt(nats.numel())) * scale


def parse_prompt(prompt: str, length: int | None = None) -> torch.Tensor:
    """(L,) ids of a prompt where ``"_"`` marks a character to generate; padded with masks
    to ``length`` if given."""
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
    model: TextModel,
    n: int,
    length: int,
    *,
    prompt: str | None = None,
    steps: int = 256,
    generator: torch.Generator | None = None,
) -> list[str]:
    """``n`` samples of ``length`` characters; with a prompt, its ``"_"`` are infilled and
    every other character is kept (absorbing process only)."""
    if n < 1 or length < 1:
        raise ValueError(f"n and length must be >= 1, got {n} and {length}")
    model.network.eval()
    if model.d3pm is not None:
        if prompt is not None:
            raise ValueError("prompt (infilling) needs the absorbing process")
        ids = model.d3pm.sample(model.network, (n, length), generator=generator)
    else:
        start = parse_prompt(prompt or "", length).expand(n, length)
        ids = sample_masked(model.network, start, MASK_ID, steps=steps, generator=generator)
    return [decode(row) for row in ids]


def config_record(config: TextDiffusionConfig) -> dict:
    """The config as a JSON-ready dict."""
    return asdict(config)
