"""Denoisers for token sequences: p~(x_0 | x_t, t) as logits over the data states.

Both take ``(xt, t)`` with xt (B, L) int64 token ids (the mask included) and t (B,)
float in [0, 1], and return (B, L, V) logits. Time enters through the sinusoidal
embedding (Vaswani et al. 2017) of 1000 t followed by an MLP, which sets a per-channel
scale and shift of each block's normalised input (adaptive layer norm, the "adaLN" of
Peebles & Xie 2023, sec. 3.2).

- `DilatedConvDenoiser`: residual blocks of dilated 1-D convolutions (the dilation
  doubles per block and cycles, as in WaveNet, van den Oord et al. 2016), each seeing
  both sides of a token; cheap on a CPU and strongly biased towards local structure.
- `TransformerDenoiser`: a bidirectional pre-norm Transformer encoder (Vaswani et al.
  2017) with learned positions, the architecture of MDLM's and SEDD's denoisers at a
  smaller size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from minidiff.nn.embedding import sinusoidal_embedding

__all__ = [
    "SEQUENCE_NETWORKS",
    "SequenceNetwork",
    "SequenceDenoiserConfig",
    "build_sequence_denoiser",
    "DilatedConvDenoiser",
    "TransformerDenoiser",
    "TIME_SCALE",
]

SequenceNetwork = Literal["conv", "transformer"]
SEQUENCE_NETWORKS: tuple[str, ...] = get_args(SequenceNetwork)
TIME_SCALE = 1000.0  # t in [0, 1] is embedded as 1000 t, the range of DDPM's step indices


@dataclass(frozen=True)
class SequenceDenoiserConfig:
    """Settings of a sequence denoiser."""

    vocab_size: int  # V, the data states predicted (the input adds the mask: V + 1)
    network: SequenceNetwork = "conv"  # `DilatedConvDenoiser` or `TransformerDenoiser`
    width: int = 128  # channels / model dimension
    depth: int = 8  # residual blocks
    kernel_size: int = 5  # convolution only: taps per dilated convolution
    dilation_cycle: int = 4  # convolution only: dilations 1, 2, 4, 8, 1, 2, ...
    heads: int = 4  # transformer only
    max_length: int = 1024  # transformer only: learned positions
    dropout: float = 0.0
    length: int = 256  # tokens per example a run trains and samples (the convolution takes any)

    def __post_init__(self) -> None:
        if self.network not in SEQUENCE_NETWORKS:
            raise ValueError(f"network must be one of {SEQUENCE_NETWORKS}, got {self.network!r}")
        for name in ("vocab_size", "width", "depth", "kernel_size", "dilation_cycle", "heads",
                     "length", "max_length"):  # fmt: skip
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred), got {self.kernel_size}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.network == "transformer" and self.length > self.max_length:
            raise ValueError(f"length {self.length} exceeds max_length {self.max_length}")


class _TimeMLP(nn.Module):
    """t (B,) in [0, 1] -> (B, width) features: sinusoidal(1000 t), Linear, SiLU, Linear."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        dtype = self.mlp[0].weight.dtype
        return self.mlp(sinusoidal_embedding(t.to(dtype) * TIME_SCALE, self.width, dtype=dtype))


class _AdaNorm(nn.Module):
    """LayerNorm whose scale and shift come from the time features (adaLN)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(time)[:, None, :].chunk(2, dim=-1)  # (B, 1, width) each
        return self.norm(h) * (1 + scale) + shift


def _check_inputs(xt: torch.Tensor, t: torch.Tensor, vocab_size: int) -> None:
    if xt.ndim != 2 or xt.dtype != torch.int64:
        raise ValueError(f"xt must be (B, L) int64, got {xt.dtype} {tuple(xt.shape)}")
    if t.shape != (xt.shape[0],):
        raise ValueError(f"t must have shape ({xt.shape[0]},), got {tuple(t.shape)}")
    if xt.numel() and (int(xt.min()) < 0 or int(xt.max()) > vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size} (the mask is {vocab_size})")


class _ConvBlock(nn.Module):
    def __init__(self, config: SequenceDenoiserConfig, dilation: int) -> None:
        super().__init__()
        width = config.width
        self.norm = _AdaNorm(width)
        padding = dilation * (config.kernel_size // 2)  # "same" length, both sides seen
        self.conv = nn.Conv1d(width, width, config.kernel_size, dilation=dilation, padding=padding)
        self.mix = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        z = self.norm(h, time).transpose(1, 2)  # (B, width, L)
        z = self.conv(z).transpose(1, 2)  # (B, L, width)
        a, b = self.mix(F.gelu(z)).chunk(2, dim=-1)
        return h + self.dropout(self.out(a * torch.sigmoid(b)))  # gated residual


class DilatedConvDenoiser(nn.Module):
    """Token embedding, ``depth`` dilated residual convolution blocks, logits over V."""

    def __init__(self, config: SequenceDenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size + 1, config.width)
        self.time = _TimeMLP(config.width)
        self.blocks = nn.ModuleList(
            _ConvBlock(config, 2 ** (i % config.dilation_cycle)) for i in range(config.depth)
        )
        self.norm = _AdaNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) of p~(x_0 | x_t) for xt (B, L) int64 and t (B,) in [0, 1]."""
        _check_inputs(xt, t, self.config.vocab_size)
        time = self.time(t)  # (B, width)
        h = self.embed(xt)  # (B, L, width)
        for block in self.blocks:
            h = block(h, time)
        return self.head(self.norm(h, time))


class _AttentionBlock(nn.Module):
    def __init__(self, config: SequenceDenoiserConfig) -> None:
        super().__init__()
        width, self.heads = config.width, config.heads
        self.norm_1, self.norm_2 = _AdaNorm(width), _AdaNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        B, L, width = h.shape
        q, k, v = self.qkv(self.norm_1(h, time)).chunk(3, dim=-1)  # (B, L, width) each
        q, k, v = (
            z.reshape(B, L, self.heads, -1).transpose(1, 2) for z in (q, k, v)
        )  # (B, nh, L, hs)
        attended = F.scaled_dot_product_attention(q, k, v)  # no causal mask: bidirectional
        h = h + self.dropout(self.proj(attended.transpose(1, 2).reshape(B, L, width)))
        return h + self.dropout(self.mlp(self.norm_2(h, time)))


class TransformerDenoiser(nn.Module):
    """Token and learned position embeddings, ``depth`` bidirectional attention blocks."""

    def __init__(self, config: SequenceDenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size + 1, config.width)
        self.position = nn.Parameter(torch.randn(config.max_length, config.width) * 0.02)
        self.time = _TimeMLP(config.width)
        self.blocks = nn.ModuleList(_AttentionBlock(config) for _ in range(config.depth))
        self.norm = _AdaNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) of p~(x_0 | x_t) for xt (B, L) int64 and t (B,) in [0, 1]."""
        _check_inputs(xt, t, self.config.vocab_size)
        if xt.shape[1] > self.config.max_length:
            raise ValueError(
                f"sequence length {xt.shape[1]} exceeds max_length {self.config.max_length}"
            )
        time = self.time(t)
        h = self.embed(xt) + self.position[: xt.shape[1]]  # (B, L, width)
        for block in self.blocks:
            h = block(h, time)
        return self.head(self.norm(h, time))


def build_sequence_denoiser(config: SequenceDenoiserConfig) -> nn.Module:
    """The network ``config.network`` names, built from ``config``."""
    if config.network == "conv":
        return DilatedConvDenoiser(config)
    elif config.network == "transformer":
        return TransformerDenoiser(config)
    else:
        raise ValueError(f"network must be one of {SEQUENCE_NETWORKS}, got {config.network!r}")
