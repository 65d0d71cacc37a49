"""Proofs for `minidiff.data.loader`: every index once per epoch, reproducible given the
generator, and the device-resident image mode."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.data.loader import BatchLoader, image_loader
from minidiff.data.transforms import image_transform


def _epoch_indices(loader: BatchLoader) -> list[torch.Tensor]:
    return [batch[0] for batch in loader]


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 25),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_index_appears_once_per_epoch(n, batch_size, drop_last, shuffle, seed):
    """Over one epoch the batches hold distinct indices: all n of them without drop_last,
    and floor(n / B) full batches (B * floor(n / B) indices) with it; len() counts the
    batches; a second tensor stays aligned with the first."""
    index = torch.arange(n)
    loader = BatchLoader(
        (index, -index),
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
    )
    batches = list(loader)
    assert len(batches) == len(loader)
    seen = torch.cat([b[0] for b in batches]) if batches else torch.empty(0, dtype=torch.int64)
    assert all(torch.equal(b[1], -b[0]) for b in batches)
    assert seen.unique().numel() == seen.numel()
    if drop_last:
        assert len(loader) == n // batch_size
        assert all(b[0].numel() == batch_size for b in batches)
    else:
        assert len(loader) == math.ceil(n / batch_size)
        assert torch.equal(seen.sort().values, index)
    if not shuffle:
        assert torch.equal(seen, index[: seen.numel()])


@given(seed=st.integers(0, 2**32 - 1))
def test_epochs_are_deterministic_given_the_generator_and_differ_between_epochs(seed):
    """Two loaders with generators seeded alike yield identical epochs, epoch after
    epoch; successive epochs draw new permutations (checked for n = 50, where two equal
    uniform permutations have probability 1/50!)."""

    def make():
        return BatchLoader(torch.arange(50), 8, generator=torch.Generator().manual_seed(seed))

    a, b = make(), make()
    first_a, first_b = _epoch_indices(a), _epoch_indices(b)
    second_a, second_b = _epoch_indices(a), _epoch_indices(b)
    pairs = zip(first_a + second_a, first_b + second_b, strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(torch.cat(first_a), torch.cat(second_a))


def test_image_loader_device_resident_mode_flips_and_scales_on_the_device():
    """With device given, the uint8 images are moved once (the loader holds them on that
    device, still uint8), and each batch equals image_transform of the same images with
    the same generator draws: (B, C, H, W) in [-1, 1], labels aligned."""
    device = torch.empty(0).device  # the default device: the code never names one
    images = torch.randint(
        0, 256, (30, 4, 4, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    labels = torch.arange(30)
    loader = image_loader(
        images,
        labels,
        8,
        generator=torch.Generator().manual_seed(5),
        device=device,
        dtype=torch.float64,
    )
    assert loader.tensors[0].dtype == torch.uint8 and loader.tensors[0].device == device
    replay = torch.Generator().manual_seed(5)
    order = torch.randperm(30, generator=replay)
    batches = list(loader)
    assert len(batches) == 3  # drop_last: 30 // 8
    for k, (x, y) in enumerate(batches):
        index = order[8 * k : 8 * (k + 1)]
        want = image_transform(images[index], generator=replay, dtype=torch.float64)
        torch.testing.assert_close(x, want, rtol=0, atol=0)
        assert torch.equal(y, labels[index]) and x.shape == (8, 3, 4, 4)
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_batch_loader_rejects_a_bad_batch_size(batch_size):
    """A batch size that is not a positive integer raises ValueError naming it."""
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(torch.arange(4), batch_size)


def test_batch_loader_rejects_misaligned_tensors():
    """Tensors with different first dimensions raise ValueError."""
    with pytest.raises(ValueError, match="first dimension"):
        BatchLoader((torch.arange(4), torch.arange(5)), 2)
