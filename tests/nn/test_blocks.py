"""Tests of the U-Net blocks: attention's permutation equivariance and formula, the
ResBlock's structure, and the resampling layers' geometry."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from minidiff.nn.blocks import (
    AttentionBlock,
    Downsample,
    ResBlock,
    Upsample,
    group_norm,
    init_paper_,
)
from tests.tolerances import ATOL, RTOL


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter an O(1) random value (the paper's init is ~0 on some)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.3)
    return module


@settings(max_examples=20)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
)
def test_attention_is_equivariant_to_spatial_permutations(seed, batch, height, width):
    """Self-attention treats positions as a set: permuting the H x W positions of the
    input permutes the output's positions the same way, Attn(P x) = P Attn(x)."""
    block = _randomize(AttentionBlock(64).double(), seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 64, height, width, generator=generator, dtype=torch.float64)
    perm = torch.randperm(height * width, generator=generator)

    def permute(z):
        return z.reshape(batch, 64, height * width)[:, :, perm].reshape(z.shape)

    with torch.no_grad():
        torch.testing.assert_close(block(permute(x)), permute(block(x)), rtol=1e-9, atol=1e-11)


def test_attention_matches_scaled_dot_product_attention():
    """The block computes x + W_o softmax(q k^T / sqrt(C)) v + b_o on the GroupNorm'd
    positions: it agrees with torch's independent ``scaled_dot_product_attention``."""
    block = _randomize(AttentionBlock(64).double(), 1)
    x = torch.randn(2, 64, 4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        h = block.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        attended = F.scaled_dot_product_attention(block.q(h), block.k(h), block.v(h))
        expected = x + block.proj_out(attended).transpose(1, 2).reshape(x.shape)
        torch.testing.assert_close(block(x), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("c_in", "c_out"), [(32, 32), (32, 64), (64, 32)])
def test_resblock_shapes_and_skip_projection(c_in, c_out):
    """A ResBlock maps (B, C_in, H, W) to (B, C_out, H, W); it has a 1x1 skip projection
    exactly when the channel count changes, and an identity shortcut otherwise."""
    block = ResBlock(c_in, c_out, time_channels=16).double()
    out = block(torch.randn(2, c_in, 4, 4, dtype=torch.float64), torch.randn(2, 16).double())
    assert out.shape == (2, c_out, 4, 4)
    assert (block.skip is not None) == (c_in != c_out)
    if block.skip is not None:
        assert block.skip.kernel_size == (1, 1)


def test_resblock_adds_a_per_channel_time_shift_after_conv1():
    """The time embedding enters once, as a per-channel shift after the first conv: for
    two embeddings e1, e2 the input of the second GroupNorm differs by
    Linear(SiLU(e2)) - Linear(SiLU(e1)), the same at every pixel."""
    block = _randomize(ResBlock(32, 32, time_channels=8).double(), 3)
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1, 32, 3, 3, generator=generator, dtype=torch.float64)
    e1, e2 = torch.randn(2, 1, 8, generator=generator, dtype=torch.float64)
    captured = []
    handle = block.norm2.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
    with torch.no_grad():
        block(x, e1)
        block(x, e2)
        shift = block.time_proj(F.silu(e2)) - block.time_proj(F.silu(e1))  # (1, C)
    handle.remove()
    difference = captured[1] - captured[0]  # (1, C, H, W)
    torch.testing.assert_close(difference, shift[:, :, None, None].expand_as(difference),
                               rtol=1e-9, atol=1e-11)  # fmt: skip


def test_downsample_uses_same_padding_geometry():
    """Downsample pads like TensorFlow's "SAME" for stride 2: output row i sees input
    rows 2i, 2i+1, 2i+2 only. So a change at input row 1 moves output row 0 and nothing
    else (a symmetric padding of 1 would also move row 1), and a change at the last
    input row moves only the last output row."""
    down = _randomize(Downsample(32).double(), 4)
    x = torch.randn(1, 32, 8, 8, dtype=torch.float64)
    for row, moved in ((1, [0]), (2, [0, 1]), (7, [3])):
        bumped = x.clone()
        bumped[:, :, row, :] += 1.0
        with torch.no_grad():
            changed = (down(bumped) - down(x)).abs().amax(dim=(0, 1, 3)) > 0
        assert changed.nonzero().flatten().tolist() == moved
    assert down(x).shape == (1, 32, 4, 4)


def test_upsample_is_nearest_neighbour_then_conv():
    """With the conv set to the identity (a centred delta kernel, zero bias), Upsample
    repeats every pixel into a 2x2 block: out[2i + a, 2j + b] = x[i, j]."""
    up = Upsample(32).double()
    with torch.no_grad():
        up.conv.weight.zero_()
        up.conv.bias.zero_()
        for c in range(32):
            up.conv.weight[c, c, 1, 1] = 1.0
        x = torch.randn(2, 32, 3, 5, dtype=torch.float64)
        out = up(x)
    assert out.shape == (2, 32, 6, 10)
    for a in (0, 1):
        for b in (0, 1):
            torch.testing.assert_close(out[:, :, a::2, b::2], x, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [0, 16, 48, 100])
def test_group_norm_requires_multiples_of_32_channels(channels):
    """GroupNorm with 32 groups needs a positive multiple of 32 channels; anything else
    raises a ValueError naming the bad count."""
    with pytest.raises(ValueError, match=str(channels)):
        group_norm(channels)


def test_paper_init_is_glorot_uniform_with_zero_bias():
    """init_paper_ draws weights in [-a, a], a = sqrt(6 scale / (fan_in + fan_out))
    (TensorFlow's variance_scaling fan_avg uniform) and zeroes the bias."""
    conv = torch.nn.Conv2d(32, 64, 3)
    init_paper_(conv, scale=0.5)
    bound = (6 * 0.5 / (32 * 9 + 64 * 9)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.9 * bound  # 18k draws fill the interval
    assert (conv.bias == 0).all()
    with pytest.raises(ValueError, match="scale"):
        init_paper_(conv, scale=0.0)


def test_resblock_rejects_bad_dropout():
    """A dropout probability outside [0, 1) raises a ValueError naming it."""
    with pytest.raises(ValueError, match="dropout"):
        ResBlock(32, 32, 8, dropout=1.0)
