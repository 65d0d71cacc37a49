"""Label dropout in the training loop, for classifier-free guidance (Ho & Salimans 2022,
Algorithm 1): a network with a `minidiff.nn.conditioning.LabelEmbedding` learns the
conditional and the unconditional model at once when each label of a batch becomes the
null label with probability ``p_uncond``."""

from __future__ import annotations

import torch
from torch import nn

from minidiff.nn.conditioning import LabelEmbedding, drop_labels

__all__ = ["null_label_of", "drop_for_guidance"]


def null_label_of(model: nn.Module) -> int | None:
    """The null label of ``model``'s (first) `LabelEmbedding`; None if it has none."""
    for module in model.modules():
        if isinstance(module, LabelEmbedding):
            return module.null_label
    return None


def drop_for_guidance(
    y: torch.Tensor | None, p_uncond: float, null_label: int | None, generator: torch.Generator
) -> torch.Tensor | None:
    """``y`` with each label replaced by ``null_label`` with probability ``p_uncond``
    (`minidiff.nn.conditioning.drop_labels`, B uniforms from ``generator``); ``y`` as it
    is when there are no labels or the model has no null label (nothing drawn).

    Args:
        y: (B,) integer labels, or None.
        p_uncond: the drop probability, in [0, 1].
        null_label: the model's null label (`null_label_of`), or None.
        generator: the trainer's generator, so that a resumed run draws the same masks.

    Returns:
        (B,) labels, or None.
    """
    if y is None or null_label is None:
        return y
    return drop_labels(y, p_uncond, null_label, generator)
