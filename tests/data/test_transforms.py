"""Proofs for `minidiff.data.transforms`: scaling uint8 to [-1, 1] and random
horizontal flips."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.data.transforms import (
    flip_mask,
    image_transform,
    random_horizontal_flip,
    uint8_to_model_range,
)
from tests.tolerances import N_STANDARD_ERRORS


def _images(seed: int, n: int = 6, h: int = 5, w: int = 7, c: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, c), generator=generator, dtype=torch.uint8)


def test_uint8_to_model_range_maps_0_to_minus_one_and_255_to_one_channels_first():
    """x = u / 127.5 - 1 for every u in 0..255, with 0 -> -1 and 255 -> 1 exactly, and
    (N, H, W, C) becomes (N, C, H, W) with x[n, c, i, j] from u[n, i, j, c]."""
    u = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).repeat(2, 1, 1, 3)
    x = uint8_to_model_range(u, dtype=torch.float64)
    assert x.shape == (2, 3, 16, 16)
    want = u.permute(0, 3, 1, 2).double() / 127.5 - 1.0
    torch.testing.assert_close(x, want, rtol=0, atol=0)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_uint8_to_model_range_rejects_non_uint8():
    """A float tensor is refused with a ValueError naming its dtype."""
    with pytest.raises(ValueError, match="uint8"):
        uint8_to_model_range(torch.zeros(1, 2, 2, 3))


@given(seed=st.integers(0, 2**32 - 1), width_dim=st.sampled_from([-1, -2]))
def test_each_sample_is_either_unchanged_or_mirrored(seed, width_dim):
    """Every output sample equals its input or its input reversed along the width axis."""
    x = _images(seed)
    y = random_horizontal_flip(
        x, generator=torch.Generator().manual_seed(seed), width_dim=width_dim
    )
    for a, b in zip(x, y, strict=True):
        assert torch.equal(b, a) or torch.equal(b, a.flip(width_dim))


@given(seed=st.integers(0, 2**32 - 1))
def test_flipping_twice_with_the_same_draws_is_the_identity(seed):
    """Mirroring is an involution: two flips driven by generators in the same state pick
    the same samples, and give back the input exactly."""
    x = _images(seed)
    once = random_horizontal_flip(x, generator=torch.Generator().manual_seed(seed), width_dim=-2)
    twice = random_horizontal_flip(
        once, generator=torch.Generator().manual_seed(seed), width_dim=-2
    )
    assert torch.equal(twice, x)


def test_flip_fraction_is_one_half_within_the_stated_bound():
    """Over n = 20 000 draws the fraction flipped is within N_STANDARD_ERRORS standard
    errors of 1/2, the standard error being sqrt(1/4 / n) (Bernoulli(1/2) draws). Seed
    fixed; measured on images with a distinct left and right half."""
    n = 20_000
    x = torch.zeros(n, 1, 1, 2)
    x[..., 1] = 1.0  # left 0, right 1: a flip is visible
    y = random_horizontal_flip(x, generator=torch.Generator().manual_seed(1234))
    fraction = float((y[..., 0] == 1.0).double().mean())
    standard_error = math.sqrt(0.25 / n)
    assert abs(fraction - 0.5) < N_STANDARD_ERRORS * standard_error


def test_flip_mask_is_deterministic_given_the_generator():
    """The same seed gives the same flip decisions; masks are boolean of length n."""
    a = flip_mask(100, generator=torch.Generator().manual_seed(7))
    b = flip_mask(100, generator=torch.Generator().manual_seed(7))
    assert a.dtype == torch.bool and a.shape == (100,) and torch.equal(a, b)


@given(seed=st.integers(0, 2**32 - 1))
def test_image_transform_equals_flip_then_scale(seed):
    """image_transform(u) = uint8_to_model_range(flip(u)) with the same draws: flipping
    in uint8 commutes with the elementwise scaling."""
    u = _images(seed)
    got = image_transform(u, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    flipped = random_horizontal_flip(u, generator=torch.Generator().manual_seed(seed), width_dim=-2)
    want = uint8_to_model_range(flipped, dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    unflipped = image_transform(u, flip=False, dtype=torch.float64)
    torch.testing.assert_close(
        unflipped, uint8_to_model_range(u, dtype=torch.float64), rtol=0, atol=0
    )
