"""Analytic FLOP counts of one forward pass of the networks, per image (or per point).

The count adds the multiply-accumulates (MACs) of every convolution, linear layer and
attention matrix product, walking the architecture from its configuration:

- a k x k convolution from C_in to C_out channels on an H x W output: k^2 C_in C_out H W;
- a linear layer from n_in to n_out features applied at N positions: N n_in n_out;
- single-head self-attention over N = H W positions of C channels: 4 N C^2 for the q, k,
  v and output projections (counted as linear layers) + 2 N^2 C for q k^T and the
  weighted sum of v (the attention matrix products).

Normalisation, activations, softmax, additions, biases and embedding look-ups are left
out (under 1% of the DDPM U-Net). One MAC is 2 FLOPs (a multiply and an add), the
convention of ``torch.utils.flop_counter.FlopCounterMode``, which counts exactly the same
operations, so the two agree to the FLOP (the tests check this). The DDPM CIFAR-10 U-Net
(Ho et al. 2020, appendix B) comes to 12.44 GFLOPs (6.22 GMACs) per 32x32 image, 92% of
it in convolutions.
"""

from __future__ import annotations

from dataclasses import replace

from minidiff.nn.mlp import ToyMLP
from minidiff.nn.unet import UNet, UNetConfig

__all__ = ["unet_forward_macs", "unet_forward_flops", "mlp_forward_flops"]


def unet_forward_macs(unet: UNet | UNetConfig, image_size: int | None = None) -> dict[str, int]:
    """Multiply-accumulates of one U-Net forward pass for one image, by kind of layer.

    Args:
        unet: a `UNet` or its `UNetConfig` (only the configuration is read, so a network
            on the meta device works too).
        image_size: the side of the (square) input; None: the configuration's
            ``image_size``. Attention runs at the resolutions in
            ``attention_resolutions`` that this size reaches.

    Returns:
        ``{"conv": ..., "linear": ..., "attention_matmul": ...}``, MACs per image.
    """
    c = unet.config if isinstance(unet, UNet) else unet
    if not isinstance(c, UNetConfig):
        raise ValueError(f"unet must be a UNet or a UNetConfig, got {type(unet).__name__}")
    if image_size is not None:
        levels = len(c.channel_mults)
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if image_size % 2 ** (levels - 1) != 0:
            raise ValueError(f"image_size {image_size} must be divisible by 2**(levels - 1) "
                             f"= {2 ** (levels - 1)}")  # fmt: skip
        c = replace(c, image_size=image_size)
    macs = {"conv": 0, "linear": 0, "attention_matmul": 0}
    base, time_channels = c.base_channels, 4 * c.base_channels
    out_channels = c.out_channels or c.in_channels
    macs["linear"] += base * time_channels + time_channels * time_channels  # time MLP

    def res_block(c_in: int, c_out: int, size: int) -> None:
        macs["conv"] += 9 * size * size * c_out * (c_in + c_out)  # conv1, conv2
        macs["conv"] += size * size * c_out * c_in if c_in != c_out else 0  # 1x1 skip
        macs["linear"] += time_channels * c_out  # time projection

    def attention(channels: int, size: int) -> None:
        n = size * size
        macs["linear"] += 4 * n * channels * channels  # q, k, v, output projection
        macs["attention_matmul"] += 2 * n * n * channels  # q k^T, weights v

    size, channels = c.image_size, base
    macs["conv"] += 9 * size * size * base * c.in_channels  # input conv
    saved = [channels]
    levels = len(c.channel_mults)
    for level, mult in enumerate(c.channel_mults):
        for _ in range(c.num_res_blocks):
            res_block(channels, base * mult, size)
            channels = base * mult
            if size in c.attention_resolutions:
                attention(channels, size)
            saved.append(channels)
        if level < levels - 1:
            size //= 2
            macs["conv"] += 9 * size * size * channels * channels  # stride-2 conv
            saved.append(channels)
    res_block(channels, channels, size)
    attention(channels, size)
    res_block(channels, channels, size)
    for level in reversed(range(levels)):
        for _ in range(c.num_res_blocks + 1):
            out = base * c.channel_mults[level]
            res_block(channels + saved.pop(), out, size)
            channels = out
            if size in c.attention_resolutions:
                attention(channels, size)
        if level > 0:
            size *= 2
            macs["conv"] += 9 * size * size * channels * channels  # conv after upsampling
    macs["conv"] += 9 * size * size * out_channels * channels  # output conv
    return macs


def unet_forward_flops(unet: UNet | UNetConfig, image_size: int | None = None) -> int:
    """FLOPs of one U-Net forward pass for one image: 2 x `unet_forward_macs` (FLOP = 2 MAC).

    Args:
        unet: a `UNet` or its `UNetConfig`.
        image_size: the side of the input; None: the configuration's ``image_size``.

    Returns:
        The FLOPs per image, e.g. 12,443,713,536 for `UNet.ddpm_cifar10`.
    """
    return 2 * sum(unet_forward_macs(unet, image_size).values())


def mlp_forward_flops(mlp: ToyMLP) -> int:
    """FLOPs of one `ToyMLP` forward pass for one point: 2 x the MACs of its linear layers
    (the sinusoidal embedding and activations are left out)."""
    if not isinstance(mlp, ToyMLP):
        raise ValueError(f"mlp must be a ToyMLP, got {type(mlp).__name__}")
    return 2 * sum(layer.in_features * layer.out_features for layer in mlp.layers)
