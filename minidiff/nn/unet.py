"""The DDPM U-Net (Ho et al. 2020, appendix B): a PixelCNN++-style U-Net of Wide-ResNet
blocks with group normalisation, self-attention at 16x16 and the sinusoidal time
embedding added in every residual block.

Data flow (L levels, level l has ``base_channels * channel_mults[l]`` channels and
resolution ``image_size / 2**l``):

    input conv -> [level 0: N ResBlocks (+ attention)] -> Downsample -> ... -> [level L-1]
    -> middle: ResBlock, attention, ResBlock
    -> [level L-1: N+1 ResBlocks, each fed the concatenation with a saved activation]
    -> Upsample -> ... -> [level 0] -> GroupNorm, SiLU, output conv.

Every activation of the down path (the input conv's, each block's, each Downsample's) is
saved and consumed, last in first out, by one up-path ResBlock: hence N+1 blocks per
up level. `UNet.ddpm_cifar10` is the paper's 35.7M-parameter CIFAR-10 network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from minidiff.nn.blocks import (
    NUM_GROUPS,
    ZERO_INIT_SCALE,
    AttentionBlock,
    Downsample,
    ResBlock,
    Upsample,
    group_norm,
    init_paper_,
)
from minidiff.nn.embedding import TimeEmbedding

__all__ = ["UNetConfig", "UNet"]


@dataclass(frozen=True)
class UNetConfig:
    """The settings of a `UNet`; defaults are the paper's CIFAR-10 model (appendix B)."""

    in_channels: int = 3  # image channels (RGB)
    base_channels: int = 128  # channels of level 0 ("ch" in the DDPM code)
    channel_mults: tuple[int, ...] = (1, 2, 2, 2)  # per level: 32, 16, 8, 4 pixels
    num_res_blocks: int = 2  # "two convolutional residual blocks per resolution level"
    attention_resolutions: tuple[int, ...] = (16,)  # "self-attention [...] at 16x16"
    dropout: float = 0.1  # CIFAR-10 dropout (0 on the other data sets)
    image_size: int = 32
    num_classes: int | None = None  # class conditioning: not in DDPM (unconditional)
    out_channels: int | None = None  # None: in_channels (an eps prediction)

    def check(self) -> UNetConfig:
        """Raise ValueError, naming the setting, if these settings cannot build a `UNet`;
        return the config otherwise. (A config is not checked on construction, so that
        FLOP counts can take a config at another input size.)"""
        _check_config(self)
        return self


class _DownLevel(nn.Module):
    """One resolution of the down path: ResBlocks, their attention, a Downsample."""

    def __init__(self, blocks: list[ResBlock], attentions: list[nn.Module], down: bool) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)  # nn.Identity where there is none
        channels = blocks[-1].conv2.out_channels
        self.downsample = Downsample(channels) if down else None


class _UpLevel(nn.Module):
    """One resolution of the up path: ResBlocks, their attention, an Upsample."""

    def __init__(self, blocks: list[ResBlock], attentions: list[nn.Module], up: bool) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)
        channels = blocks[-1].conv2.out_channels
        self.upsample = Upsample(channels) if up else None


class _Middle(nn.Module):
    """The bottleneck: ResBlock, attention, ResBlock at the lowest resolution."""

    def __init__(self, channels: int, time_channels: int, dropout: float) -> None:
        super().__init__()
        self.res_block_1 = ResBlock(channels, channels, time_channels, dropout)
        self.attention = AttentionBlock(channels)
        self.res_block_2 = ResBlock(channels, channels, time_channels, dropout)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.res_block_2(self.attention(self.res_block_1(h, emb)), emb)


def _check_config(c: UNetConfig) -> None:
    for name in ("in_channels", "base_channels", "num_res_blocks", "image_size"):
        value = getattr(c, name)
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(c.channel_mults) == 0 or any(m < 1 for m in c.channel_mults):
        raise ValueError(f"channel_mults must be positive integers, got {c.channel_mults}")
    levels = len(c.channel_mults)
    if c.image_size % 2 ** (levels - 1) != 0:
        raise ValueError(
            f"image_size {c.image_size} must be divisible by 2**(levels - 1) = "
            f"{2 ** (levels - 1)} for {levels} levels (channel_mults={c.channel_mults})"
        )
    reachable = {c.image_size // 2**level for level in range(levels)}
    for resolution in c.attention_resolutions:
        if resolution not in reachable:
            raise ValueError(
                f"attention resolution {resolution} is not one of the resolutions "
                f"{sorted(reachable, reverse=True)} of this U-Net"
            )
    for level, mult in enumerate(c.channel_mults):
        channels = c.base_channels * mult
        if channels % NUM_GROUPS != 0:
            raise ValueError(
                f"base_channels * channel_mults[{level}] = {c.base_channels} * {mult} = "
                f"{channels} is not divisible by the {NUM_GROUPS} GroupNorm groups"
            )
    if not 0 <= c.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {c.dropout}")
    if c.num_classes is not None and not c.num_classes >= 1:
        raise ValueError(f"num_classes must be None or a positive integer, got {c.num_classes}")
    if c.out_channels is not None and not c.out_channels >= 1:
        raise ValueError(f"out_channels must be None or a positive integer, got {c.out_channels}")


class UNet(nn.Module):
    """The DDPM U-Net (Ho et al. 2020, appendix B), a denoiser ``unet(xt, t) -> output``.

    Args:
        in_channels: image channels.
        base_channels: channels of the first level; the time embedding is 4x as wide.
        channel_mults: channel multiplier per level; level l runs at image_size / 2**l.
        num_res_blocks: ResBlocks per level on the down path (one more on the up path).
        attention_resolutions: resolutions (in pixels) with self-attention after each
            ResBlock; the middle always has one.
        dropout: dropout in every ResBlock.
        image_size: height = width of the input; must be divisible by 2**(levels - 1).
        num_classes: if given, a class-conditional net: a learned label embedding is added
            to the time embedding, and ``forward`` requires ``y``. (Not in DDPM; the
            conditioning of Dhariwal & Nichol 2021, sec. 3, in its simplest form.)
        out_channels: output channels; default ``in_channels`` (eps, x0 or v). Use
            ``2 * in_channels`` for a learned variance (Nichol & Dhariwal 2021, sec. 3.1):
            the second half is the interpolation weight of the log variance.

    Raises:
        ValueError: on an argument that cannot build a U-Net (named in the message).
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        channel_mults: tuple[int, ...],
        num_res_blocks: int,
        attention_resolutions: tuple[int, ...],
        dropout: float,
        image_size: int,
        num_classes: int | None = None,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        config = UNetConfig(
            in_channels, base_channels, tuple(channel_mults), num_res_blocks,
            tuple(attention_resolutions), dropout, image_size, num_classes, out_channels,
        )  # fmt: skip
        self.config = config.check()
        out_channels = in_channels if out_channels is None else out_channels
        # Time: the Transformer sinusoidal embedding, then two dense layers of width 4 x base
        # (appendix B; "temb" in the DDPM code); every ResBlock adds a projection of it.
        time_channels = 4 * base_channels
        self.time_embedding = TimeEmbedding(base_channels, time_channels)
        # Labels (optional, not in DDPM): one learned vector per class, N(0, 1) initialised,
        # added to the time embedding, so it reaches every ResBlock the same way.
        self.class_embedding = None
        if num_classes is not None:
            self.class_embedding = nn.Embedding(num_classes, time_channels)
        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        # Down path (PixelCNN++'s U-Net, Salimans et al. 2017, with GroupNorm for weight
        # normalisation): num_res_blocks ResBlocks per level, attention after each at the
        # listed resolutions, a Downsample between levels (none after the last one).
        # `skip_channels` records the channels of every saved activation.
        levels = len(channel_mults)
        skip_channels = [base_channels]
        channels = base_channels
        self.down = nn.ModuleList()
        for level, mult in enumerate(channel_mults):
            attend = image_size // 2**level in attention_resolutions
            blocks, attentions = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(channels, base_channels * mult, time_channels, dropout))
                channels = base_channels * mult
                attentions.append(AttentionBlock(channels) if attend else nn.Identity())
                skip_channels.append(channels)
            self.down.append(_DownLevel(blocks, attentions, down=level < levels - 1))
            if level < levels - 1:
                skip_channels.append(channels)

        # Middle: ResBlock, attention, ResBlock, at the lowest resolution (the DDPM code).
        self.middle = _Middle(channels, time_channels, dropout)

        # Up path: num_res_blocks + 1 ResBlocks per level, each taking the concatenation of
        # h with one saved activation, so every saved one is used; an Upsample between levels.
        # Stored in the order it runs: self.up[0] is the lowest resolution.
        self.up = nn.ModuleList()
        for level in reversed(range(levels)):
            attend = image_size // 2**level in attention_resolutions
            blocks, attentions = [], []
            for _ in range(num_res_blocks + 1):
                out = base_channels * channel_mults[level]
                blocks.append(ResBlock(channels + skip_channels.pop(), out, time_channels, dropout))
                channels = out
                attentions.append(AttentionBlock(channels) if attend else nn.Identity())
            self.up.append(_UpLevel(blocks, attentions, up=level > 0))

        # Output head: GroupNorm, SiLU, 3x3 conv to out_channels (the DDPM code).
        self.out_norm = group_norm(channels)
        self.out_conv = nn.Conv2d(channels, out_channels, 3, padding=1)
        # The DDPM code's initialisation: Glorot-uniform, and ~zero on the output conv.
        for layer in (self.time_embedding.linear_1, self.time_embedding.linear_2, self.input_conv):
            init_paper_(layer)
        init_paper_(self.out_conv, ZERO_INIT_SCALE)

    @classmethod
    def from_config(cls, config: UNetConfig) -> UNet:
        """Build a U-Net from a `UNetConfig`."""
        return cls(**asdict(config))

    @classmethod
    def ddpm_cifar10(cls, **overrides) -> UNet:
        """The paper's CIFAR-10 network: base 128, mults (1, 2, 2, 2), 2 ResBlocks per level,
        attention at 16x16, dropout 0.1, 35,746,307 parameters (Ho et al. 2020, app. B)."""
        return cls(**{**asdict(UNetConfig()), **overrides})

    @classmethod
    def small_cifar10(cls, **overrides) -> UNet:
        """A 32x32 network for quick runs: base 64, mults (1, 2, 2), one ResBlock per
        level, attention at 16x16: 4.4M parameters and 2.15 GFLOPs per image, about 1/6 of
        the paper's 12.44."""
        settings = dict(base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=1)
        return cls(**{**asdict(UNetConfig()), **settings, **overrides})

    @classmethod
    def tiny(cls, image_size: int = 8, **overrides) -> UNet:
        """A test-sized network for 8x8 images: base 32, mults (1, 2), one ResBlock per
        level, attention at image_size / 2, no dropout."""
        settings = dict(
            base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
            attention_resolutions=(image_size // 2,), dropout=0.0, image_size=image_size,
        )  # fmt: skip
        return cls(**{**asdict(UNetConfig()), **settings, **overrides})

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict from x_t, shape (B, C, H, W), at timesteps t, shape (B,).

        Args:
            x: the noisy images x_t, shape (B, in_channels, image_size, image_size).
            t: integer (or real) timesteps, shape (B,).
            y: class labels in [0, num_classes), shape (B,), int64; required for a
                class-conditional net and refused by an unconditional one.

        Returns:
            The prediction, shape (B, out_channels, image_size, image_size).
        """
        self._check_inputs(x, t, y)
        emb = self.time_embedding(t)  # (B, 4 base)
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(y)  # (B, 4 base)

        h = self.input_conv(x)  # (B, base, H, W)
        saved = [h]
        for level in self.down:
            for block, attention in zip(level.res_blocks, level.attentions, strict=True):
                h = attention(block(h, emb))  # (B, C_level, H_level, W_level)
                saved.append(h)
            if level.downsample is not None:
                h = level.downsample(h)  # (B, C_level, H_level / 2, W_level / 2)
                saved.append(h)

        h = self.middle(h, emb)  # (B, C_last, H_last, W_last)

        for level in self.up:
            for block, attention in zip(level.res_blocks, level.attentions, strict=True):
                h = torch.cat([h, saved.pop()], dim=1)  # (B, C + C_saved, H_level, W_level)
                h = attention(block(h, emb))  # (B, C_level, H_level, W_level)
            if level.upsample is not None:
                h = level.upsample(h)  # (B, C_level, 2 H_level, 2 W_level)

        return self.out_conv(F.silu(self.out_norm(h)))  # (B, out_channels, H, W)

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> None:
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")  # fmt: skip
        if tuple(t.shape) != (x.shape[0],):
            raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        if self.class_embedding is None:
            if y is not None:
                raise ValueError("y was given but this U-Net is unconditional (num_classes=None)")
            return
        if y is None:
            raise ValueError(f"y is required: this U-Net is class-conditional "
                             f"(num_classes={c.num_classes})")  # fmt: skip
        if tuple(y.shape) != (x.shape[0],) or y.is_floating_point():
            raise ValueError(f"y must be integer labels of shape ({x.shape[0]},), "
                             f"got {y.dtype} of shape {tuple(y.shape)}")  # fmt: skip
        if y.device.type != "meta" and y.numel() > 0:
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= c.num_classes:
                raise ValueError(f"y must lie in [0, {c.num_classes}), got values in "
                                 f"[{low}, {high}]")  # fmt: skip
