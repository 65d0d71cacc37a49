"""Exponential moving average (EMA) of a model's weights.

Ho et al. (2020), Appendix B, sample from an EMA of the weights with decay 0.9999; the
averaged weights give visibly better samples than the last iterate. After each optimizer
step the shadow copy moves a fraction ``1 - decay`` of the way towards the weights:

    shadow <- decay * shadow + (1 - decay) * param

so after ``k`` updates with a constant decay ``d``, starting from ``shadow_0``,

    shadow_k = d^k * shadow_0 + (1 - d) * sum_{i=1..k} d^(k-i) * param_i.

With ``warmup=True`` the decay used at update ``n`` (counting from 0) is
``min(decay, (1 + n) / (10 + n))``: early on, when the shadow still holds the random
initialisation, the average forgets it quickly (the schedule of TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["EMA"]


def _averaged_items(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The named parameters and buffers of ``model``, as in its ``state_dict`` (no copies)."""
    yield from model.named_parameters()
    yield from model.named_buffers()


class EMA:
    """A shadow copy of a model's parameters and buffers, averaged over training.

    Floating-point parameters and buffers are averaged; other buffers (integer counters
    such as BatchNorm's ``num_batches_tracked``) are copied as they are at each update.

    Args:
        model: the network being trained. Its current weights initialise the shadow.
        decay: the EMA decay ``d`` in [0, 1]; 0.9999 as in Ho et al. (2020).
        warmup: if True, update ``n`` (from 0) uses ``min(decay, (1 + n) / (10 + n))``.
        dtype: the dtype of the shadow's floating tensors; ``None`` keeps each tensor's
            own dtype. ``torch.float32`` is a good choice for half-precision training.

    Attributes:
        decay: the (maximum) decay.
        warmup: whether the decay warms up.
        num_updates: how many times `update` has run.
        shadow: ``dict[name, Tensor]``, the averaged weights, keyed as in ``state_dict()``.
    """

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.9999,
        *,
        warmup: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        decay = float(decay)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype or None, got {dtype}")
        self.decay = decay
        self.warmup = bool(warmup)
        self.dtype = dtype
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for name, tensor in _averaged_items(model):
                self.shadow[name] = tensor.detach().to(self._shadow_dtype(tensor), copy=True)

    def _shadow_dtype(self, tensor: torch.Tensor) -> torch.dtype:
        if tensor.is_floating_point() and self.dtype is not None:
            return self.dtype
        return tensor.dtype

    def current_decay(self) -> float:
        """The decay the next `update` will use: ``decay``, or with warmup
        ``min(decay, (1 + n) / (10 + n))`` where ``n = num_updates``."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def _check_model(self, model: nn.Module) -> None:
        names = {name for name, _ in _averaged_items(model)}
        if names != set(self.shadow):
            missing = sorted(set(self.shadow) - names)
            unexpected = sorted(names - set(self.shadow))
            raise ValueError(
                f"model does not match the EMA: missing {missing}, unexpected {unexpected}"
            )

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``'s weights, in place:
        ``shadow <- d * shadow + (1 - d) * param`` with ``d = current_decay()``."""
        self._check_model(model)
        d = self.current_decay()
        for name, tensor in _averaged_items(model):
            shadow = self.shadow[name]
            if shadow.is_floating_point():
                # shadow + (1 - d) (param - shadow) = d shadow + (1 - d) param
                shadow.lerp_(tensor.detach().to(shadow.dtype), 1.0 - d)
            else:
                shadow.copy_(tensor.detach())
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters and buffers with the averaged weights."""
        self._check_model(model)
        for name, tensor in _averaged_items(model):
            tensor.copy_(self.shadow[name])

    @contextmanager
    def swap(self, model: nn.Module) -> Iterator[nn.Module]:
        """Evaluate ``model`` with the averaged weights, then restore its own exactly.

        Example:
            >>> with ema.swap(model):  # doctest: +SKIP
            ...     samples = sample_ancestral(model, ...)
        """
        self._check_model(model)
        with torch.no_grad():
            backup = {name: tensor.detach().clone() for name, tensor in _averaged_items(model)}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, tensor in _averaged_items(model):
                    tensor.copy_(backup[name])

    average_parameters = swap

    def state_dict(self) -> dict[str, Any]:
        """``{"decay", "warmup", "num_updates", "shadow"}``: plain types and tensors."""
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": {name: tensor.detach().clone() for name, tensor in self.shadow.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`. The shadow's names and shapes must match this EMA's.

        Raises:
            ValueError: a missing key, or shadow names or shapes that differ.
        """
        for key in ("decay", "warmup", "num_updates", "shadow"):
            if key not in state:
                raise ValueError(f"EMA state is missing {key!r}; got keys {sorted(state)}")
        shadow = state["shadow"]
        problems = _compare_shapes(self.shadow, shadow)
        if problems:
            raise ValueError("EMA state does not match this EMA: " + "; ".join(problems))
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        with torch.no_grad():
            for name, tensor in self.shadow.items():
                tensor.copy_(shadow[name])


def _compare_shapes(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences in names and shapes between two tensor dicts."""
    problems = []
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    for name in sorted(set(expected) & set(given)):
        if tuple(expected[name].shape) != tuple(given[name].shape):
            problems.append(
                f"{name}: shape {tuple(given[name].shape)}, expected {tuple(expected[name].shape)}"
            )
    return problems
