"""The building blocks of the DDPM U-Net (Ho et al. 2020, appendix B): the residual
block, single-head self-attention, and the down/up-sampling layers.

Appendix B: "Our neural network architecture follows the backbone of PixelCNN++ [...]
a U-Net based on a Wide ResNet. We replaced weight normalization with group
normalization [...]. Our 32x32 models use four feature map resolutions [...]. All models
have two convolutional residual blocks per resolution level and self-attention blocks at
the 16x16 resolution between the convolutional blocks. Diffusion time t is specified by
adding the Transformer sinusoidal position embedding into each residual block."

Details not in the paper's text follow the authors' code release (``diffusion_tf``):
GroupNorm with 32 groups and epsilon 1e-6, SiLU ("swish") activations, "SAME" padding
for the strided convolution, and the initialisation (see `init_paper_`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "NUM_GROUPS",
    "NORM_EPS",
    "group_norm",
    "init_paper_",
    "ResBlock",
    "AttentionBlock",
    "Downsample",
    "Upsample",
]

NUM_GROUPS = 32  # GroupNorm groups (Wu & He 2018), as in the DDPM code
NORM_EPS = 1e-6  # GroupNorm epsilon of the DDPM code (TensorFlow's group_norm default)
ZERO_INIT_SCALE = 1e-10  # the DDPM code's stand-in for a zero initialisation scale


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(32 groups, eps=1e-6) over ``channels`` channels (a multiple of 32)."""
    if channels < NUM_GROUPS or channels % NUM_GROUPS != 0:
        raise ValueError(
            f"channels must be a positive multiple of {NUM_GROUPS} (the number of "
            f"GroupNorm groups), got {channels}"
        )
    return nn.GroupNorm(NUM_GROUPS, channels, eps=NORM_EPS)


@torch.no_grad()
def init_paper_(layer: nn.Conv2d | nn.Linear, scale: float = 1.0) -> None:
    """Initialise a conv/linear layer as the DDPM code does, in place.

    Weights ~ Uniform(-a, a) with a = sqrt(3 scale / fan_avg), fan_avg = (fan_in +
    fan_out) / 2 (TensorFlow's ``variance_scaling(scale, "fan_avg", "uniform")``; for
    scale = 1 this is Glorot/Xavier uniform); biases zero. The code's "zero" scale for the
    last layer of each residual branch is 1e-10, so the branch starts near identity while
    gradients still reach every weight.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(scale))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class ResBlock(nn.Module):
    """The Wide-ResNet block of the DDPM U-Net with the time embedding added.

    h = conv3x3(SiLU(GroupNorm(x)))
    h = h + Linear(SiLU(emb))[:, :, None, None]      (the time embedding, per channel)
    h = conv3x3(Dropout(SiLU(GroupNorm(h))))
    out = skip(x) + h,  skip = 1x1 conv if the channel count changes, else identity.

    Args:
        in_channels: channels of x (a multiple of 32).
        out_channels: channels of the output (a multiple of 32).
        time_channels: width of the time embedding ``emb``.
        dropout: dropout probability before the second convolution (0.1 on CIFAR-10,
            Ho et al. 2020, appendix B).
    """

    def __init__(
        self, in_channels: int, out_channels: int, time_channels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_channels, out_channels)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # A 1x1 convolution ("network-in-network") matches the channels of the shortcut.
        self.skip = None
        if in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, 1)
        for layer in (self.conv1, self.time_proj, self.skip):
            if layer is not None:
                init_paper_(layer)
        init_paper_(self.conv2, ZERO_INIT_SCALE)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Map x, shape (B, C_in, H, W), and emb, shape (B, time_channels), to shape
        (B, C_out, H, W)."""
        ### BEGIN SOLUTION
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time_proj(F.silu(emb))[:, :, None, None]  # (B, C_out, 1, 1) broadcast
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, C_out, H, W)
        shortcut = x if self.skip is None else self.skip(x)  # (B, C_out, H, W)
        return shortcut + h
        ### END SOLUTION


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H x W positions, with a residual connection
    (Ho et al. 2020, appendix B; Wang et al. 2018's non-local block).

    h = GroupNorm(x) as a sequence of HW vectors of width C;
    q, k, v = h W_q + b_q, h W_k + b_k, h W_v + b_v;
    out = x + (softmax(q k^T / sqrt(C)) v) W_o + b_o.

    Every step treats the positions alike (GroupNorm pools over all of them), so the block
    is equivariant to permutations of the spatial positions.

    Args:
        channels: C, a multiple of 32.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.proj_out = nn.Linear(channels, channels)
        for layer in (self.q, self.k, self.v):
            init_paper_(layer)
        init_paper_(self.proj_out, ZERO_INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x, shape (B, C, H, W), to the same shape."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        h = self.norm(x).reshape(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.q(h), self.k(h), self.v(h)  # each (B, HW, C)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(C), dim=-1)  # (B, HW, HW)
        out = self.proj_out(weights @ v)  # (B, HW, C)
        return x + out.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)
        ### END SOLUTION


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 convolution.

    The padding is TensorFlow's "SAME" for an even size: one row/column of zeros after
    the image only (bottom and right), so output pixel (i, j) sees input rows 2i..2i+2 and
    columns 2j..2j+2, as in the DDPM code.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)
        init_paper_(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x, shape (B, C, H, W) with H, W even, to shape (B, C, H/2, W/2)."""
        x = F.pad(x, (0, 1, 0, 1))  # (B, C, H + 1, W + 1)
        return self.conv(x)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        init_paper_(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x, shape (B, C, H, W), to shape (B, C, 2H, 2W)."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2H, 2W)
        return self.conv(x)  # (B, C, 2H, 2W)
