"""The 8x8 handwritten digits that ship with scikit-learn, as images in [-1, 1].

1797 grey-scale images of the digits 0..9 (the UCI "optical recognition of handwritten
digits" set), each pixel a count in 0..16. They load offline and train a small U-Net in
minutes on a CPU. The pixel map is x = u / 8 - 1, so 0 (background) -> -1 and
16 (ink) -> 1. Padding to 16x16 surrounds each image with background (-1), which lets a
U-Net halve the resolution several times.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

DIGITS_MAX = 16  # the largest pixel value in the data
SPLITS = ("all", "train", "test")
Split = Literal["all", "train", "test"]
BACKGROUND = -1.0


def digits_to_model_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """x = u / 8 - 1: the map from pixel counts 0..16 to [-1, 1] (0 -> -1, 16 -> 1)."""
    return torch.as_tensor(pixels, dtype=torch.float64) * (2.0 / DIGITS_MAX) - 1.0


def pad_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre (N, C, H, W) images on a `size` x `size` canvas of background (-1).

    Raises:
        ValueError: `size` is smaller than an image side or leaves an odd margin.
    """
    h, w = images.shape[-2:]
    if size < max(h, w) or (size - h) % 2 or (size - w) % 2:
        raise ValueError(f"size must be >= {max(h, w)} with an even margin, got {size!r}")
    top, left = (size - h) // 2, (size - w) // 2
    return torch.nn.functional.pad(
        images, (left, size - w - left, top, size - h - top), value=BACKGROUND
    )


def load_digits(
    split: Split = "all",
    *,
    pad_to: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    labels: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The scikit-learn digits as (N, 1, 8, 8) images in [-1, 1].

    Args:
        split: ``"all"`` (1797 images), or ``"train"`` / ``"test"``: a random split
            fixed by `seed`, with ``round(test_fraction * 1797)`` test images; the two
            splits are disjoint and together hold every image once.
        pad_to: if given (e.g. 16), pad each image to `pad_to` x `pad_to` with -1.
        test_fraction: the share of images in the test split, in (0, 1).
        seed: the seed of the split's permutation.
        labels: also return the class labels.
        dtype: the images' dtype.

    Returns:
        images (N, 1, S, S) with S = 8 or `pad_to`, and, if `labels`, (N,) int64 in 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    bunch = sklearn_load_digits()
    images = digits_to_model_range(bunch.images).to(dtype).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    targets = torch.as_tensor(bunch.target, dtype=torch.int64)
    if split != "all":
        n = images.shape[0]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_test = round(test_fraction * n)
        index = order[:n_test] if split == "test" else order[n_test:]
        images, targets = images[index], targets[index]
    if pad_to is not None:
        images = pad_images(images, pad_to)
    return (images, targets) if labels else images
