"""Cross-attention to a context and the U-Net's context hooks."""

from __future__ import annotations

import pytest
import torch

from minidiff.nn import UNet
from minidiff.nn.cross_attention import CrossAttention
from tests.tolerances import ATOL_LOOSE, RTOL_LOOSE


def _randomized(module, seed=0):
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return module


def _inputs(seed=1, L=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 32, 4, 4, generator=g, dtype=torch.float64)
    context = torch.randn(2, L, 6, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False, False], [True, False, True, True, True]])
    return x, context, mask


def test_fresh_cross_attention_is_the_identity():
    """The output projection starts at variance scale 1e-10 (weights ~1e-5), so a new
    block passes x through up to ~1e-4."""
    x, context, mask = _inputs()
    block = CrossAttention(32, 6).double()
    torch.testing.assert_close(block(x, context, mask), x, rtol=0, atol=1e-3)


def test_masked_positions_are_ignored():
    """Changing the context at padded positions leaves the output unchanged."""
    block = _randomized(CrossAttention(32, 6).double())
    x, context, mask = _inputs()
    changed = torch.where(mask[:, :, None], context, 100.0)
    torch.testing.assert_close(block(x, changed, mask), block(x, context, mask),
                               rtol=RTOL_LOOSE, atol=ATOL_LOOSE)  # fmt: skip


def test_output_is_invariant_to_the_order_of_the_context():
    """Attention sums over the keys: permuting context and mask together changes nothing."""
    block = _randomized(CrossAttention(32, 6).double())
    x, context, mask = _inputs()
    order = torch.tensor([4, 2, 0, 3, 1])
    permuted = block(x, context[:, order], mask[:, order])
    torch.testing.assert_close(permuted, block(x, context, mask), rtol=RTOL_LOOSE, atol=ATOL_LOOSE)


def test_unet_with_a_context_depends_on_it_and_checks_it():
    unet = _randomized(UNet.tiny(in_channels=1, context_dim=6).double(), seed=2).eval()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([5, 50])
    _, context, mask = _inputs()
    with torch.no_grad():
        a = unet(x, t, context=context, context_mask=mask)
        b = unet(x, t, context=context.flip(0), context_mask=mask.flip(0))
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-6
    with pytest.raises(ValueError, match="context"):
        unet(x, t)
    with pytest.raises(ValueError, match="context"):
        UNet.tiny(in_channels=1)(x.float(), t, context=context.float())
    with pytest.raises(ValueError, match="context"):
        unet(x, t, context=context[:, :, :3])


def test_conditional_unet_treats_no_label_as_the_null_label():
    """y = None is the null label num_classes for a class-conditional U-Net."""
    unet = _randomized(UNet.tiny(in_channels=1, num_classes=3).double(), seed=4).eval()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    t = torch.tensor([5, 50])
    with torch.no_grad():
        torch.testing.assert_close(unet(x, t), unet(x, t, torch.tensor([3, 3])), rtol=0, atol=0)
