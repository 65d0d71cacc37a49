"""Image transforms for training: uint8 to the model's range, random horizontal flips.

Ho et al. (2020), Appendix B, train on CIFAR-10 with random horizontal flips and scale
the pixels linearly to [-1, 1]. Both transforms here follow the input tensor's device, so
they run on the GPU when the data lives there.
"""

from __future__ import annotations

import torch

FLIP_PROBABILITY = 0.5


def uint8_to_model_range(
    images: torch.Tensor, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Scale uint8 images in height-width-channel layout to [-1, 1], channels first.

    x = u / 127.5 - 1 maps 0 to -1 and 255 to 1 (Ho et al. 2020, Section 3.3).

    Args:
        images: (N, H, W, C) uint8.
        dtype: the floating dtype of the result.

    Returns:
        (N, C, H, W) in [-1, 1], on `images`' device.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            "images must be a 4-D uint8 tensor (N, H, W, C), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    x = images.permute(0, 3, 1, 2).to(dtype)  # (N, H, W, C) -> (N, C, H, W)
    return x / 127.5 - 1.0


def flip_mask(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """n independent Bernoulli(1/2) draws: which samples of a batch to flip.

    The draws are made on the generator's device and moved to `device`.

    Returns:
        (n,) bool.
    """
    source = generator.device if generator is not None else device
    mask = torch.rand(n, generator=generator, device=source) < FLIP_PROBABILITY
    return mask.to(device) if device is not None else mask


def random_horizontal_flip(
    images: torch.Tensor, *, generator: torch.Generator | None = None, width_dim: int = -1
) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2, independently.

    Args:
        images: (N, ...) a batch; `width_dim` is the width axis (-1 for (N, C, H, W),
            -2 for (N, H, W, C)).
        generator: the source of randomness.
        width_dim: the axis to reverse.

    Returns:
        A new tensor of the same shape, dtype and device.
    """
    if images.ndim < 2:
        raise ValueError(
            f"images must have a batch axis and an image axis, got {tuple(images.shape)}"
        )
    mask = flip_mask(images.shape[0], generator=generator, device=images.device)
    mask = mask.view(-1, *([1] * (images.ndim - 1)))  # (N, 1, ..., 1)
    return torch.where(mask, images.flip(width_dim), images)


def image_transform(
    images: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    flip: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (N, H, W, C) -> optionally flipped, scaled (N, C, H, W) in [-1, 1].

    The flip is done on the uint8 tensor (a quarter of the bytes of float32).
    """
    if flip:
        images = random_horizontal_flip(images, generator=generator, width_dim=-2)
    return uint8_to_model_range(images, dtype=dtype)
