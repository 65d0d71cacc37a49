"""`ToyMLP`: the 2-D toy network of `minidiff.toy.MLP`, in PyTorch.

The same architecture as the NumPy network (Ho et al. 2020, appendix B, shrunk to 2-D
data): the time step t is embedded with the sinusoidal position encoding of Vaswani et al.
(2017), sec. 3.5, the embedding is concatenated with x_t, and fully connected layers with
a smooth activation map the result to an output of the shape of x_t. `ToyMLP.from_numpy`
copies the weights of a NumPy `MLP`; in float64 the two give the same output to round-off.

Continuous time. The embedding is emb(time_scale * t) for any real t, so one network
serves three uses:

- DDPM: t is the integer step 1..T (``time_scale = 1``, as in the NumPy network);
- flow matching: t is a float in [0, 1]; take ``time_scale = 1000`` so that t spans the
  same phases of the sinusoids as the steps 0..1000 of a DDPM;
- NCSN (`minidiff.diffusion.score_matching`): the score network is called with the
  noise level's index i = 0..L-1 (an integer, ``time_scale = 1``) or with sigma_i itself
  (then embed a float; any fixed ``time_scale`` that separates the levels works).

Optional class conditioning (``num_classes``): a learned embedding of the label is added
to the time embedding (as in Dhariwal & Nichol 2021), with one extra "no label" row used
when ``y`` is None, the null token of classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from minidiff.toy.mlp import ACTIVATIONS, MAX_PERIOD, Activation

if TYPE_CHECKING:
    from minidiff.toy.mlp import MLP

__all__ = ["ToyMLP", "ToyMLPConfig", "toy_sinusoidal_embedding"]


def _frequencies(half: int, max_period: float) -> np.ndarray:
    """w_i = max_period^(-i / h), i = 0..h-1, in float64 NumPy: the very numbers of
    `minidiff.toy.mlp.sinusoidal_embedding`, so the two embeddings agree bit for bit."""
    return np.exp(-np.log(max_period) * np.arange(half) / half)


def toy_sinusoidal_embedding(
    t: torch.Tensor, dim: int, max_period: float = MAX_PERIOD
) -> torch.Tensor:
    """Sinusoidal embedding of (integer or real) times (Vaswani et al. 2017, sec. 3.5;
    Ho et al. 2020, appendix B), with the frequencies of the NumPy toy network
    (`minidiff.toy.mlp.sinusoidal_embedding`). The U-Net's
    `minidiff.nn.embedding.sinusoidal_embedding` spaces them as max_period^(-i / (h - 1))
    instead, the layout of the DDPM code release.

    emb(t) = [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})],
    w_i = max_period^(-i / h), h = dim / 2.

    Args:
        t: (B,) times, any real dtype; the result is in t's dtype if it is floating,
            else in the default dtype.
        dim: the embedding width, even.
        max_period: the period of the slowest sinusoid.

    Returns:
        (B, dim).
    """
    if isinstance(dim, bool) or int(dim) != dim or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
    dtype = t.dtype if t.dtype.is_floating_point else torch.get_default_dtype()
    w = torch.from_numpy(_frequencies(int(dim) // 2, max_period)).to(t.device, dtype)
    angles = t.to(dtype)[:, None] * w[None, :]  # (B, h)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, dim)


def _activation(name: str, z: torch.Tensor) -> torch.Tensor:
    if name == "silu":
        return F.silu(z)
    elif name == "gelu_tanh":
        return F.gelu(z, approximate="tanh")
    elif name == "softplus":
        # log(1 + e^z) without torch's linear cut-off at z > 20, as the NumPy network
        return torch.logaddexp(torch.zeros_like(z), z)
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ToyMLPConfig:
    """The settings of a `ToyMLP`, checked on construction (see `ToyMLP` for each)."""

    dim: int = 2  # D, the data dimension (the input width)
    hidden: tuple[int, ...] = (128, 128, 128)  # widths of the hidden layers
    embed_dim: int = 32  # width of the sinusoidal time embedding (even)
    activation: Activation = "silu"  # one of `minidiff.toy.ACTIVATIONS`
    num_classes: int | None = None  # class conditioning; None: unconditional
    time_scale: float = 1.0  # t is embedded as emb(time_scale * t)
    out_dim: int | None = None  # None: dim (eps, x0 or v); 2 * dim for a learned variance

    def __post_init__(self) -> None:
        _positive_int(self.dim, "dim")
        if not self.hidden:
            raise ValueError(f"hidden must be a non-empty sequence, got {self.hidden!r}")
        for width in self.hidden:
            _positive_int(width, "hidden width")
        e = self.embed_dim
        if isinstance(e, bool) or not isinstance(e, numbers.Real) or int(e) != e or e < 2 or e % 2:
            raise ValueError(f"embed_dim must be an even integer >= 2, got {e!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not (math.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(
                f"time_scale must be a positive finite number, got {self.time_scale!r}"
            )
        for name in ("num_classes", "out_dim"):
            if getattr(self, name) is not None:
                _positive_int(getattr(self, name), name)


class ToyMLP(nn.Module):
    """eps_theta(x_t, t) (or a score s_theta(x, sigma), or a velocity v_theta(x_t, t)):
    a fully connected network with a sinusoidal time embedding.

    h_0 = [x, emb(time_scale * t) (+ emb_class(y))],  h_{l+1} = act(h_l W_l + b_l) for
    the hidden layers, out = h_L W_L + b_L. Initialised as `minidiff.toy.MLP`: He et al.
    (2015) normal weights (std sqrt(2 / fan_in)) before an activation, std sqrt(1 / fan_in)
    for the output layer, zero biases.

    Args:
        dim: D, the data dimension (input and output width).
        hidden: widths of the hidden layers.
        embed_dim: width of the sinusoidal time embedding (even).
        activation: one of `minidiff.toy.ACTIVATIONS`.
        num_classes: the number of class labels for conditioning, or None.
        time_scale: t is embedded as emb(time_scale * t); see the module docstring.
        out_dim: the output width; default ``dim`` (eps, x0 or v). Use ``2 * dim`` for a
            learned variance (Nichol & Dhariwal 2021, sec. 3.1): the second half is the
            interpolation weight of the log variance.
        generator: draws the initial weights (None: torch's global generator).

    Raises:
        ValueError: a setting that cannot build the network (`ToyMLPConfig` checks them).
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: Sequence[int] = (128, 128, 128),
        embed_dim: int = 32,
        activation: Activation = "silu",
        num_classes: int | None = None,
        *,
        time_scale: float = 1.0,
        out_dim: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        config = ToyMLPConfig(
            dim, tuple(hidden), embed_dim, activation, num_classes, time_scale, out_dim
        )
        self.config = config
        self.dim, self.hidden, self.embed_dim = int(dim), config.hidden, int(embed_dim)
        self.activation, self.time_scale = activation, float(time_scale)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.out_dim = self.dim if out_dim is None else int(out_dim)
        widths = (self.dim + self.embed_dim, *self.hidden, self.out_dim)
        # skip_init: torch's default initialisation would draw from the global generator;
        # reset_parameters below draws from ``generator`` instead
        self.layers = nn.ModuleList(
            skip_init(nn.Linear, fan_in, fan_out)
            for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True)
        )
        # the last row is the "no label" token (Ho & Salimans 2022)
        self.class_embedding = (
            None
            if self.num_classes is None
            else skip_init(nn.Embedding, self.num_classes + 1, self.embed_dim)
        )
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The initialisation of `minidiff.toy.MLP` (see the class docstring)."""
        for index, layer in enumerate(self.layers):
            gain = 1.0 if index == len(self.layers) - 1 else 2.0
            nn.init.normal_(
                layer.weight, 0.0, math.sqrt(gain / layer.in_features), generator=generator
            )
            nn.init.zeros_(layer.bias)
        if self.class_embedding is not None:
            nn.init.normal_(self.class_embedding.weight, 0.0, 1.0, generator=generator)

    def _check_t(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.dtype == torch.bool or t.dtype.is_complex:
            raise TypeError(f"t must be an integer or real tensor, got dtype {t.dtype}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}"
            )
        return t

    def embed(
        self, t: torch.Tensor, like: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, embed_dim): emb(time_scale * t) in ``like``'s dtype, plus the label's embedding."""
        t = t.to(like.dtype)
        if self.time_scale != 1.0:
            t = self.time_scale * t
        emb = toy_sinusoidal_embedding(t, self.embed_dim)  # (B, E)
        if self.class_embedding is None:
            if y is not None:
                raise ValueError("y was given to a network built without num_classes")
            return emb
        if y is None:
            y = torch.full((like.shape[0],), self.num_classes, device=like.device)
        y = torch.as_tensor(y, device=like.device)
        if y.shape != (like.shape[0],) or y.dtype.is_floating_point:
            raise ValueError(
                f"y must be (B,) = ({like.shape[0]},) integer labels, got {tuple(y.shape)}"
            )
        return emb + self.class_embedding(y.long()).to(like.dtype)

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output at (x, t).

        Args:
            x: (B, D) inputs (x_t).
            t: (B,) integer steps or real times (or one number for the whole batch).
            y: (B,) integer labels in 0..num_classes-1, or None (the "no label" token)
                when the network is class-conditional.

        Returns:
            (B, out_dim).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        t = self._check_t(x, t)
        h = torch.cat([x, self.embed(t, x, y)], dim=1)  # (B, D + E)
        for layer in self.layers[:-1]:
            h = _activation(self.activation, layer(h))  # (B, hidden)
        return self.layers[-1](h)  # (B, out_dim)

    @classmethod
    def from_config(
        cls, config: ToyMLPConfig, *, generator: torch.Generator | None = None
    ) -> ToyMLP:
        """Build a `ToyMLP` from a `ToyMLPConfig` (``generator`` draws the weights)."""
        return cls(**asdict(config), generator=generator)

    @classmethod
    def from_numpy(cls, mlp: MLP, *, dtype: torch.dtype | None = None) -> ToyMLP:
        """A `ToyMLP` holding the weights of a NumPy `minidiff.toy.MLP`.

        NumPy stores W_l as (fan_in, fan_out) for h W + b; `nn.Linear` stores the transpose.

        Args:
            mlp: the NumPy network.
            dtype: the parameters' dtype (None: torch's default dtype); float64 reproduces
                the NumPy network to round-off.
        """
        from minidiff.toy.mlp import MLP

        if not isinstance(mlp, MLP):
            raise TypeError(f"mlp must be a minidiff.toy.MLP, got {type(mlp).__name__}")
        # a private generator: the weights are overwritten, so leave the global one alone
        model = cls(mlp.dim, mlp.hidden, mlp.embed_dim, mlp.activation, generator=torch.Generator())
        dtype = torch.get_default_dtype() if dtype is None else dtype
        model.to(dtype)
        with torch.no_grad():
            for index, layer in enumerate(model.layers):
                layer.weight.copy_(torch.from_numpy(mlp.params[f"W{index}"].T.copy()))
                layer.bias.copy_(torch.from_numpy(mlp.params[f"b{index}"].copy()))
        return model

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, hidden={self.hidden}, embed_dim={self.embed_dim}, "
            f"activation={self.activation!r}, num_classes={self.num_classes}, "
            f"time_scale={self.time_scale:g}, out_dim={self.out_dim}"
        )
