"""Tests of the analytic FLOP counts: they equal torch's own operation counter
(``torch.utils.flop_counter.FlopCounterMode``) exactly, on the paper's U-Net (on the meta
device, no arithmetic done), on small presets and on random small U-Nets and MLPs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from minidiff.nn.flops import mlp_forward_flops, unet_forward_flops, unet_forward_macs
from minidiff.nn.mlp import ToyMLP
from minidiff.nn.unet import UNet, UNetConfig

DDPM_CIFAR10_FLOPS = 12_443_713_536  # 6.22 GMACs: 12.44 GFLOPs per 32x32 image


def _counted_flops(model: torch.nn.Module, batch: int, device: str = "cpu") -> int:
    """torch's count of the FLOPs of one forward pass of a batch."""
    c = model.config
    x = torch.zeros(batch, c.in_channels, c.image_size, c.image_size, device=device)
    t = torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t)
    return counter.get_total_flops()


def test_ddpm_cifar10_forward_is_12_44_gflops_as_torch_counts_on_meta():
    """The paper's U-Net (Ho et al. 2020, app. B): the analytic count equals torch's counter
    to the FLOP, 12,443,713,536 FLOPs per image (on the meta device: shapes only)."""
    with torch.device("meta"):
        unet = UNet.ddpm_cifar10().eval()
    assert _counted_flops(unet, 1, device="meta") == unet_forward_flops(unet)
    assert unet_forward_flops(unet) == DDPM_CIFAR10_FLOPS
    assert unet_forward_flops(unet.config) == DDPM_CIFAR10_FLOPS


@pytest.mark.parametrize("build", [lambda: UNet.tiny(8), lambda: UNet.tiny(16),
                                   lambda: UNet.small_cifar10()])  # fmt: skip
def test_preset_forward_flops_equal_torch_counter_per_image(build):
    """For the small presets, torch's count of a batch of 2 is exactly 2 x the analytic
    count per image."""
    with torch.device("meta"):
        unet = build().eval()
    assert _counted_flops(unet, 2, device="meta") == 2 * unet_forward_flops(unet)


def test_flops_are_twice_the_macs_and_convolutions_dominate_the_paper_net():
    """FLOP = 2 MAC, summed over the kinds; convolutions make 92% of the paper's count."""
    macs = unet_forward_macs(UNetConfig())
    assert 2 * sum(macs.values()) == unet_forward_flops(UNetConfig())
    assert round(macs["conv"] / sum(macs.values()), 2) == 0.92


@settings(max_examples=6, deadline=None)
@given(
    base=st.sampled_from([32, 64]),
    mults=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
    num_res_blocks=st.integers(1, 2),
    attend_level=st.integers(0, 3),
    in_channels=st.integers(1, 3),
    out_channels=st.none() | st.integers(1, 4),
    scale=st.integers(1, 2),
)
def test_random_unet_forward_flops_equal_torch_counter(
    base, mults, num_res_blocks, attend_level, in_channels, out_channels, scale
):
    """Over random small U-Nets (levels, widths, blocks, attention placement, channels),
    the analytic count equals torch's counter exactly."""
    image_size = 2 ** (len(mults) - 1) * 2 * scale
    attention = (image_size // 2**attend_level,) if attend_level < len(mults) else ()
    config = UNetConfig(
        in_channels=in_channels, base_channels=base, channel_mults=mults,
        num_res_blocks=num_res_blocks, attention_resolutions=attention, dropout=0.0,
        image_size=image_size, out_channels=out_channels,
    )  # fmt: skip
    with torch.device("meta"):
        unet = UNet.from_config(config).eval()
    assert _counted_flops(unet, 1, device="meta") == unet_forward_flops(unet)


def test_image_size_argument_counts_a_larger_input():
    """Passing image_size counts the network on that input size: the tiny 8x8 net's count
    at 16x16 equals the count of the same net built for 16x16 with the same attention."""
    small = UNet.tiny(8).config
    assert unet_forward_flops(small, image_size=16) == unet_forward_flops(
        UNetConfig(**{**small.__dict__, "image_size": 16})
    )


@pytest.mark.parametrize("image_size", [0, 7, True, 2.0])
def test_bad_image_size_raises_naming_it(image_size):
    """A non-positive, non-integer or indivisible image_size is a ValueError naming it."""
    with pytest.raises(ValueError, match="image_size"):
        unet_forward_flops(UNet.tiny(8).config, image_size=image_size)


def test_bad_model_type_raises():
    """Anything but a UNet/UNetConfig (or ToyMLP for the MLP count) is refused."""
    with pytest.raises(ValueError, match="unet"):
        unet_forward_flops(ToyMLP())
    with pytest.raises(ValueError, match="mlp"):
        mlp_forward_flops(UNet.tiny(8))


@settings(max_examples=6, deadline=None)
@given(
    dim=st.integers(1, 4),
    hidden=st.lists(st.integers(1, 16), min_size=1, max_size=3),
    embed_dim=st.sampled_from([2, 8]),
)
def test_mlp_forward_flops_equal_torch_counter(dim, hidden, embed_dim):
    """For random ToyMLPs, torch counts 3 x the analytic per-point FLOPs on 3 points."""
    mlp = ToyMLP(dim, hidden, embed_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        mlp(torch.zeros(3, dim), torch.zeros(3, dtype=torch.long))
    assert counter.get_total_flops() == 3 * mlp_forward_flops(mlp)
