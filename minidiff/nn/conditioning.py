"""Conditioning a denoiser on a label: the learned label embedding with a null label, and
label dropout for classifier-free guidance (Ho & Salimans 2022, sec. 3.2, Algorithm 1).

One network learns both eps(x_t, t, y) and eps(x_t, t) = eps(x_t, t, null) when, during
training, each label is replaced by the null label with probability ``p_uncond``
independently (`drop_labels`). The null label is one more row of the embedding table,
index ``num_classes``, so a batch may mix real and null labels (the guided sampler of
`minidiff.applications.guidance` evaluates both in one forward pass).

Default ``p_uncond = 0.1`` (`P_UNCOND`). Ho & Salimans (2022, sec. 4, Table 1) try 0.1,
0.2 and 0.5 on ImageNet 64x64 and find 0.5 worse than the two small values: the
unconditional model only has to be good enough to supply a direction, and every dropped
label is a step taken away from the conditional model the samples come from. 0.1 spends
the least of the training budget on it.

`masked_mean` pools a sequence of context vectors (a caption's tokens) over its valid
positions; the U-Net adds a projection of it to the time embedding, as GLIDE (Nichol et
al. 2022, sec. 2.3) adds its caption's final token embedding in place of a class embedding.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

__all__ = ["P_UNCOND", "LabelEmbedding", "drop_mask", "drop_labels", "masked_mean"]

P_UNCOND = 0.1  # label-drop probability (Ho & Salimans 2022, Table 1: 0.1 or 0.2 best)


def _check_probability(p_uncond: float) -> float:
    if (
        isinstance(p_uncond, bool)
        or not isinstance(p_uncond, numbers.Real)
        or not (0.0 <= p_uncond <= 1.0)
    ):
        raise ValueError(f"p_uncond must be a number in [0, 1], got {p_uncond!r}")
    return float(p_uncond)


def drop_mask(
    batch: int, p_uncond: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """(batch,) bool, each entry True with probability ``p_uncond`` independently: which
    conditions to drop (Ho & Salimans 2022, Algorithm 1). Draws ``batch`` uniforms."""
    p_uncond = _check_probability(p_uncond)
    return torch.rand((batch,), generator=generator, device=device) < p_uncond


def drop_labels(
    y: torch.Tensor,
    p_uncond: float,
    null_label: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond``, independently
    (Ho & Salimans 2022, Algorithm 1: "c <- null with probability p_uncond").

    Args:
        y: (B,) integer labels (a new tensor is returned; ``y`` is not modified).
        p_uncond: the drop probability, in [0, 1].
        null_label: the label meaning "no label" (``num_classes`` for `LabelEmbedding`).
        generator: draws the B uniforms (None: torch's global generator).

    Returns:
        (B,) labels, ``y``'s dtype and device.
    """
    if y.ndim != 1 or y.dtype.is_floating_point:
        raise ValueError(f"y must be (B,) integer labels, got {y.dtype} of shape {tuple(y.shape)}")
    drop = drop_mask(y.shape[0], p_uncond, generator, y.device)  # (B,)
    return torch.where(drop, torch.full_like(y, null_label), y)


class LabelEmbedding(nn.Embedding):
    """A learned vector per class plus one for the null label (index ``num_classes``).

    ``forward(y)`` takes (B,) labels in 0..num_classes (num_classes = "no label"); use
    `null_labels` for a batch of null labels. The rows start N(0, 1) as `nn.Embedding`'s.

    Args:
        num_classes: C, the number of real classes.
        dim: the embedding width.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        for name, value in (("num_classes", num_classes), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(int(num_classes) + 1, int(dim))
        self.num_classes = int(num_classes)

    @property
    def null_label(self) -> int:
        """The index of the "no label" row: ``num_classes``."""
        return self.num_classes

    def null_labels(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(batch,) int64 null labels."""
        return torch.full((batch,), self.null_label, dtype=torch.int64, device=device)

    def check(self, y: torch.Tensor, batch: int) -> None:
        """Raise ValueError unless y is (batch,) integer labels in [0, num_classes]."""
        if tuple(y.shape) != (batch,) or y.is_floating_point():
            raise ValueError(f"y must be integer labels of shape ({batch},), "
                             f"got {y.dtype} of shape {tuple(y.shape)}")  # fmt: skip
        if y.device.type != "meta" and y.numel() > 0:
            low, high = int(y.min()), int(y.max())
            if low < 0 or high > self.num_classes:
                raise ValueError(
                    f"y must lie in [0, {self.num_classes}) or be the null label "
                    f"{self.num_classes}, got values in [{low}, {high}]"
                )


def masked_mean(context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of the valid vectors of each sequence.

    Args:
        context: (B, L, E) vectors.
        mask: (B, L) bool, True where a position is valid (at least one per row); None:
            all valid.

    Returns:
        (B, E).
    """
    if mask is None:
        return context.mean(dim=1)
    weights = mask.to(context.dtype)[:, :, None]  # (B, L, 1)
    return (context * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
