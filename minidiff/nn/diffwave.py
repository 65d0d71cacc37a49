"""A DiffWave-style network for waveforms (Kong et al. 2021, sec. 3 and fig. 2).

A 1x1 input convolution lifts the waveform (B, 1, S) to C residual channels; then N
residual layers, layer i with a bidirectional dilated convolution of kernel 3 and
dilation 2 ** (i mod n), where the step embedding (sinusoidal -> two Linear + SiLU,
DiffWave eq. 3 / app. B) is added before the convolution and an optional class embedding
is added as a conditioner after it. A gated activation tanh(a) * sigmoid(b) follows
(WaveNet, van den Oord et al. 2016), and a 1x1 convolution splits into the residual
(scaled by 1 / sqrt(2)) and a skip output. The summed skips (scaled by 1 / sqrt(N)) go
through ReLU - 1x1 - ReLU - 1x1 (zero-initialised) to the eps prediction (B, 1, S).

The receptive field is 1 + 2 sum_i 2 ** (i mod n) samples: 2 * (2 ** n - 1) * N / n + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from minidiff.nn.embedding import sinusoidal_embedding

__all__ = ["DiffWaveConfig", "DiffWave"]


@dataclass(frozen=True)
class DiffWaveConfig:
    """Settings of `DiffWave` (the paper's: 64 channels, 30 layers, n = 10)."""

    channels: int = 64  # C, residual channels
    layers: int = 12  # N, residual layers
    dilation_cycle: int = 6  # n: dilations 1, 2, ..., 2 ** (n - 1), then again
    embedding_dim: int = 128  # width of the sinusoidal step embedding
    num_classes: int | None = None  # class-conditional when set (labels 0..num_classes-1)
    length: int = 1024  # samples per clip a run trains and samples (the network takes any)

    def __post_init__(self) -> None:
        for name in ("channels", "layers", "dilation_cycle", "embedding_dim", "length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 or None, got {self.num_classes!r}")

    @property
    def receptive_field(self) -> int:
        """Samples that one output sees: 1 + 2 sum_i 2 ** (i mod n)."""
        return 1 + 2 * sum(2 ** (i % self.dilation_cycle) for i in range(self.layers))


class _ResidualLayer(nn.Module):
    def __init__(self, channels: int, dilation: int, step_dim: int) -> None:
        super().__init__()
        self.step = nn.Linear(step_dim, channels)
        self.conv = nn.Conv1d(channels, 2 * channels, 3, dilation=dilation, padding=dilation)
        self.condition = nn.Linear(step_dim, 2 * channels)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, step: torch.Tensor, condition: torch.Tensor | None):
        h = self.conv(x + self.step(step)[:, :, None])  # (B, 2C, S)
        if condition is not None:
            h = h + self.condition(condition)[:, :, None]
        a, b = h.chunk(2, dim=1)
        residual, skip = self.out(torch.tanh(a) * torch.sigmoid(b)).chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    """eps_theta(x_t, t[, y]) for waveforms x_t (B, 1, S), steps t (B,), labels y (B,)."""

    def __init__(self, config: DiffWaveConfig) -> None:
        super().__init__()
        self.config = config
        C, E = config.channels, config.embedding_dim
        self.input = nn.Conv1d(1, C, 1)
        step_dim = 4 * E
        self.step_mlp = nn.Sequential(
            nn.Linear(E, step_dim), nn.SiLU(), nn.Linear(step_dim, step_dim), nn.SiLU()
        )
        self.label = (
            None if config.num_classes is None else nn.Embedding(config.num_classes, step_dim)
        )
        self.layers = nn.ModuleList(
            _ResidualLayer(C, 2 ** (i % config.dilation_cycle), step_dim)
            for i in range(config.layers)
        )
        self.skip = nn.Conv1d(C, C, 1)
        self.output = nn.Conv1d(C, 1, 1)
        nn.init.zeros_(self.output.weight)  # start by predicting eps = 0 (as DiffWave does)
        nn.init.zeros_(self.output.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """eps prediction (B, 1, S)."""
        if xt.ndim != 3 or xt.shape[1] != 1:
            raise ValueError(f"xt must have shape (B, 1, S), got {tuple(xt.shape)}")
        if (y is None) != (self.label is None):
            raise ValueError(
                "pass labels y exactly when the model is class-conditional (num_classes set)"
            )
        step = self.step_mlp(sinusoidal_embedding(t, self.config.embedding_dim, dtype=xt.dtype))
        condition = None if y is None else self.label(y)
        x = F.relu(self.input(xt))  # (B, C, S)
        skips = torch.zeros_like(x)
        for layer in self.layers:
            x, skip = layer(x, step, condition)
            skips = skips + skip
        h = F.relu(self.skip(skips / math.sqrt(len(self.layers))))
        return self.output(h)
