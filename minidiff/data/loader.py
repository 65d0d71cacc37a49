"""A simple in-memory batch iterator over tensors, with optional device residency.

For datasets that fit in memory (every set in this package does), indexing one big
tensor with a shuffled permutation is far faster than a per-item DataLoader. In the
device-resident mode the whole (uint8) dataset is moved to the device once and every
per-batch transform (flips, scaling) runs there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from minidiff.data.transforms import image_transform

Transform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


class BatchLoader:
    """Iterate over aligned tensors in (shuffled) batches.

    Each epoch (each ``iter(loader)``) draws a new permutation from `generator`, so a
    run is reproducible given the generator's seed; every index appears exactly once
    per epoch (once or not at all for the last partial batch when `drop_last`).

    Args:
        tensors: tensors with the same first dimension N (e.g. images and labels).
        batch_size: the batch size B >= 1.
        shuffle: draw a new permutation each epoch; otherwise keep the order.
        drop_last: leave out the last batch if it has fewer than B items.
        generator: the source of randomness (permutations and transforms).
        device: if given, move every tensor to this device once, at construction
            (device-resident mode); otherwise batches stay where the tensors are.
        transform: ``transform(batch, generator) -> batch`` applied to the first
            tensor of each batch (on its device), e.g. `image_transform`.
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        transform: Transform | None = None,
    ) -> None:
        if isinstance(tensors, torch.Tensor):
            tensors = (tensors,)
        if not tensors:
            raise ValueError("tensors must hold at least one tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(
                f"tensors must share the first dimension, got {[t.shape[0] for t in tensors]}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.tensors = (
            tuple(t.to(device) for t in tensors) if device is not None else tuple(tensors)
        )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.transform = transform

    def __len__(self) -> int:
        n = self.tensors[0].shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = self.tensors[0].shape[0]
        device = self.tensors[0].device
        if self.shuffle:
            source = self.generator.device if self.generator is not None else None
            order = torch.randperm(n, generator=self.generator, device=source).to(device)
        else:
            order = torch.arange(n, device=device)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            items = [t[index] for t in self.tensors]
            if self.transform is not None:
                items[0] = self.transform(items[0], self.generator)
            yield tuple(items)


def image_loader(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    flip: bool = True,
    drop_last: bool = True,
    dtype: torch.dtype = torch.float32,
) -> BatchLoader:
    """A shuffled loader of uint8 (N, H, W, C) images yielding flipped, scaled batches.

    Each batch is ``(x,)`` or ``(x, labels)`` with x of shape (B, C, H, W) in [-1, 1]
    (see `image_transform`). With `device`, the uint8 images are moved there once and
    flips and scaling run on the device.
    """
    tensors = (images,) if labels is None else (images, labels)

    def transform(batch: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        return image_transform(batch, generator=gen, flip=flip, dtype=dtype)

    return BatchLoader(
        tensors,
        batch_size,
        drop_last=drop_last,
        generator=generator,
        device=device,
        transform=transform,
    )
