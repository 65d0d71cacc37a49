"""Cross-attention from image positions to a caption's token vectors, for text
conditioning (Rombach et al. 2022, sec. 3.3; Saharia et al. 2022, sec. 2.4 (Imagen),
which cross-attends "at multiple resolutions" of the U-Net, the low ones being cheap).

`CrossAttention`: the H x W positions of a feature map are the queries, the L context
vectors (B, L, E) the keys and values; padded positions of the context are masked out:

    h = GroupNorm(x) as (B, HW, C);  q = h W_q;  k = c W_k;  v = c W_v   (c: (B, L, E))
    out = x + (softmax(q k^T / sqrt(C) + mask) v) W_o,   mask = -inf on padding.

`AttentionWithContext` is the U-Net's self-attention block followed by cross-attention;
`attention_layer` builds what a U-Net level gets (nothing, self-attention, or both) and
`attend` calls it, passing the context only to the blocks that take one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from minidiff.nn.blocks import ZERO_INIT_SCALE, AttentionBlock, group_norm, init_paper_

__all__ = ["CrossAttention", "AttentionWithContext", "attention_layer", "attend"]


class CrossAttention(nn.Module):
    """Single-head attention of the image positions to the context vectors, with a
    residual connection (see the module docstring).

    Args:
        channels: C, the feature map's channels (a multiple of 32).
        context_dim: E, the width of the context vectors.
    """

    def __init__(self, channels: int, context_dim: int) -> None:
        super().__init__()
        if isinstance(context_dim, bool) or not isinstance(context_dim, int) or context_dim < 1:
            raise ValueError(f"context_dim must be a positive integer, got {context_dim!r}")
        self.norm = group_norm(channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(context_dim, channels)
        self.v = nn.Linear(context_dim, channels)
        self.proj_out = nn.Linear(channels, channels)
        for layer in (self.q, self.k, self.v):
            init_paper_(layer)
        init_paper_(self.proj_out, ZERO_INIT_SCALE)  # starts as the identity map

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map x (B, C, H, W), context (B, L, E) and mask (B, L) bool (True = valid; at
        least one per row; None: all valid) to (B, C, H, W)."""
        B, C, H, W = x.shape
        h = self.norm(x).reshape(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.q(h), self.k(context), self.v(context)  # (B, HW, C), (B, L, C) x 2
        scores = q @ k.transpose(1, 2) / math.sqrt(C)  # (B, HW, L)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        out = self.proj_out(torch.softmax(scores, dim=-1) @ v)  # (B, HW, C)
        return x + out.transpose(1, 2).reshape(B, C, H, W)


class AttentionWithContext(nn.Module):
    """Self-attention (`AttentionBlock`) then `CrossAttention` to the context."""

    def __init__(self, channels: int, context_dim: int) -> None:
        super().__init__()
        self.self_attention = AttentionBlock(channels)
        self.cross_attention = CrossAttention(channels, context_dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W); see `CrossAttention.forward` for context and mask."""
        return self.cross_attention(self.self_attention(x), context, mask)


def attention_layer(channels: int, attend_here: bool, context_dim: int | None) -> nn.Module:
    """A U-Net level's attention: `nn.Identity` where there is none, `AttentionBlock`, or
    `AttentionWithContext` when the net takes a context (``context_dim`` not None)."""
    if not attend_here:
        return nn.Identity()
    if context_dim is None:
        return AttentionBlock(channels)
    return AttentionWithContext(channels, context_dim)


def attend(
    layer: nn.Module, h: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None
) -> torch.Tensor:
    """Apply a layer of `attention_layer`: the context goes to the layers that take one."""
    if isinstance(layer, AttentionWithContext):
        if context is None:
            raise ValueError("context is required: this network cross-attends to a context")
        return layer(h, context, mask)
    return layer(h)
