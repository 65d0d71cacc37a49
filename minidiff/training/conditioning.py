"""Condition dropout in the training loop, for classifier-free guidance (Ho & Salimans
2022, Algorithm 1): a network learns the conditional and the unconditional model at once
when each condition of a batch becomes the null condition with probability ``p_uncond``.

The null condition is the model's: the null label of a `minidiff.nn.conditioning.
LabelEmbedding` for labels (B,), or, for a model conditioned on token sequences (B, L)
such as a caption (`minidiff.applications.text.TextConditionedUNet`), the sequence its
``null_condition`` buffer holds (the empty caption)."""

from __future__ import annotations

import torch
from torch import nn

from minidiff.nn.conditioning import LabelEmbedding, drop_labels, drop_mask

__all__ = ["null_label_of", "null_condition_of", "drop_for_guidance"]


def null_label_of(model: nn.Module) -> int | None:
    """The null label of ``model``'s (first) `LabelEmbedding`; None if it has none."""
    for module in model.modules():
        if isinstance(module, LabelEmbedding):
            return module.null_label
    return None


def null_condition_of(model: nn.Module) -> int | torch.Tensor | None:
    """What ``model``'s conditions are dropped to: its null label (`null_label_of`), or
    the (L,) ``null_condition`` tensor of a module of it; None if it has neither."""
    label = null_label_of(model)
    if label is not None:
        return label
    for module in model.modules():
        null = getattr(module, "null_condition", None)
        if isinstance(null, torch.Tensor):
            return null
    return None


def drop_for_guidance(
    y: torch.Tensor | None,
    p_uncond: float,
    null: int | torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor | None:
    """``y`` with each condition replaced by ``null`` with probability ``p_uncond``
    (B uniforms from ``generator``, `minidiff.nn.conditioning.drop_mask`); ``y`` as it
    is when there is no condition or the model has no null condition (nothing drawn).

    Args:
        y: (B,) integer labels, (B, L) token ids, or None.
        p_uncond: the drop probability, in [0, 1].
        null: the model's null label for labels, its (L,) null sequence for token ids
            (`null_condition_of`), or None.
        generator: the trainer's generator, so that a resumed run draws the same masks.

    Returns:
        ``y``'s shape, or None.
    """
    if y is None or null is None:
        return y
    if not isinstance(null, torch.Tensor):
        return drop_labels(y, p_uncond, null, generator)
    if y.ndim != 2 or tuple(null.shape) != (y.shape[1],):
        raise ValueError(f"y must be (B, {null.shape[0]}) token ids for the null sequence of "
                         f"shape {tuple(null.shape)}, got shape {tuple(y.shape)}")  # fmt: skip
    drop = drop_mask(y.shape[0], p_uncond, generator, y.device)  # (B,)
    return torch.where(drop[:, None], null.to(y.device, y.dtype)[None], y)  # (B, L)
