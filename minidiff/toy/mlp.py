"""A small NumPy MLP with a sinusoidal time embedding and hand-written backprop.

The network eps_theta(x_t, t) of a 2-D DDPM: the time step t is embedded with the
sinusoidal position encoding of Vaswani et al. (2017), sec. 3.5, as Ho et al. (2020),
appendix B, do; the embedding is concatenated with x_t, and a stack of fully connected
layers with a smooth activation maps the result to an output of the shape of x_t.

Every operation's derivative is written next to it (as in micrograd), and
`MLP.backward` applies the chain rule layer by layer in reverse. The tests check every
parameter's gradient and the input gradient against central finite differences.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "MLP", "sinusoidal_embedding"]

ACTIVATIONS = ("silu", "gelu_tanh", "softplus")
Activation = Literal["silu", "gelu_tanh", "softplus"]

# Period of the slowest sinusoid of the time embedding (Vaswani et al. 2017, sec. 3.5).
MAX_PERIOD = 10_000.0
# Embeddings of t < _MAX_TABLE are computed once and looked up (a diffusion has T + 1 steps).
_MAX_TABLE = 100_000


# -- activations and their derivatives ------------------------------------------------
# Each activation comes as f(z) and f_with_grad(z) -> (f(z), f'(z)): the forward pass of
# training computes the derivative once, next to the value, from shared intermediates.
def _sigmoid(z: np.ndarray) -> np.ndarray:
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: the same function, with no exp to overflow.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def silu(z: np.ndarray) -> np.ndarray:
    """SiLU / swish: z * sigmoid(z) (Elfwing et al. 2018; Ramachandran et al. 2017)."""
    return z * _sigmoid(z)


def silu_with_grad(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SiLU and its derivative d/dz [z s(z)] = s (1 + z (1 - s)) = s + silu(z) (1 - s)."""
    s = _sigmoid(z)
    value = z * s
    return value, s + value * (1.0 - s)


_GELU_C = np.sqrt(2.0 / np.pi)
_GELU_A = 0.044715


def gelu_tanh(z: np.ndarray) -> np.ndarray:
    """GELU, tanh form: z/2 (1 + tanh(u)), u = c (z + a z^3), c = sqrt(2/pi), a = 0.044715
    (Hendrycks & Gimpel 2016)."""
    return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + _GELU_A * z**3)))


def gelu_tanh_with_grad(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GELU (tanh form) and its derivative
    (1 + tanh u) / 2 + z/2 (1 - tanh^2 u) c (1 + 3 a z^2)."""
    tanh_u = np.tanh(_GELU_C * (z + _GELU_A * z**3))
    value = 0.5 * z * (1.0 + tanh_u)
    grad = 0.5 * (1.0 + tanh_u) + 0.5 * z * (1.0 - tanh_u**2) * _GELU_C * (1.0 + 3 * _GELU_A * z**2)
    return value, grad


def softplus(z: np.ndarray) -> np.ndarray:
    """softplus(z) = log(1 + e^z), computed as logaddexp(0, z) so it never overflows."""
    return np.logaddexp(0.0, z)


def softplus_with_grad(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """softplus and its derivative d/dz log(1 + e^z) = sigmoid(z)."""
    return softplus(z), _sigmoid(z)


def _activation(name: str) -> tuple[Callable, Callable]:
    if name == "silu":
        return silu, silu_with_grad
    elif name == "gelu_tanh":
        return gelu_tanh, gelu_tanh_with_grad
    elif name == "softplus":
        return softplus, softplus_with_grad
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


# -- time embedding ----------------------------------------------------------------------
def sinusoidal_embedding(t: np.ndarray, dim: int, max_period: float = MAX_PERIOD) -> np.ndarray:
    """Sinusoidal embedding of integer time steps (Vaswani et al. 2017, sec. 3.5;
    Ho et al. 2020, appendix B).

    emb(t) = [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})],
    w_i = max_period^(-i / h), h = dim / 2.

    Args:
        t: (B,) time steps.
        dim: the embedding width, even.
        max_period: the period of the slowest sinusoid.

    Returns:
        (B, dim) float64.
    """
    if isinstance(dim, bool) or int(dim) != dim or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
    half = int(dim) // 2
    frequencies = np.exp(-np.log(max_period) * np.arange(half) / half)  # (h,)
    angles = np.asarray(t, dtype=np.float64)[:, None] * frequencies[None, :]  # (B, h)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # (B, dim)


# -- the network ---------------------------------------------------------------------------
class MLP:
    """eps_theta(x_t, t): a fully connected network with a sinusoidal time embedding.

    h_0 = [x_t, emb(t)],  h_{l+1} = act(h_l W_l + b_l) for the hidden layers, and
    out = h_L W_L + b_L (no activation on the output).

    Parameters live in ``self.params``, a dict of float64 arrays named ``W0, b0, ...,
    WL, bL`` with ``W_l: (fan_in, fan_out)``. An MLP is a denoiser: ``model(xt, t)``.

    Args:
        dim: D, the data dimension (input and output width).
        rng: the generator for the initial weights.
        hidden: widths of the hidden layers.
        embed_dim: width of the sinusoidal time embedding (even).
        activation: one of `ACTIVATIONS`.
    """

    def __init__(
        self,
        dim: int,
        rng: np.random.Generator,
        *,
        hidden: Sequence[int] = (128, 128, 128),
        embed_dim: int = 32,
        activation: Activation = "silu",
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        hidden = tuple(hidden)
        if not hidden or any(
            isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden
        ):
            raise ValueError(
                f"hidden must be a non-empty sequence of positive integers, got {hidden!r}"
            )
        if (
            isinstance(embed_dim, bool)
            or int(embed_dim) != embed_dim
            or embed_dim < 2
            or embed_dim % 2
        ):
            raise ValueError(f"embed_dim must be an even integer >= 2, got {embed_dim!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.act, self.act_with_grad = _activation(activation)
        self.dim = int(dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.embed_dim = int(embed_dim)
        self.activation = activation
        self.params = self._init_params(rng)
        self._embedding_table = np.empty((0, self.embed_dim))
        self._cache: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths from input to output: (D + embed_dim, *hidden, D)."""
        return (self.dim + self.embed_dim, *self.hidden, self.dim)

    @property
    def n_layers(self) -> int:
        """The number of affine layers (hidden layers + the output layer)."""
        return len(self.hidden) + 1

    def _init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # He et al. (2015) normal init, std sqrt(2 / fan_in), for layers followed by the
        # activation; LeCun / Glorot-style std sqrt(1 / fan_in) for the linear output.
        params = {}
        widths = self.widths
        for layer in range(self.n_layers):
            fan_in, fan_out = widths[layer], widths[layer + 1]
            gain = 1.0 if layer == self.n_layers - 1 else 2.0
            params[f"W{layer}"] = rng.normal(0.0, np.sqrt(gain / fan_in), size=(fan_in, fan_out))
            params[f"b{layer}"] = np.zeros(fan_out)
        return params

    # -- forward / backward ------------------------------------------------------------
    def _check_inputs(self, x: np.ndarray, t) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {x.shape}")
        t_array = np.asarray(t)
        if not np.issubdtype(t_array.dtype, np.integer):
            raise TypeError(f"t must be an integer or an integer array, got {t!r}")
        if t_array.ndim == 0:
            t_array = np.full(x.shape[0], int(t_array))
        if t_array.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},) to match x, got {t_array.shape}")
        if t_array.size and t_array.min() < 0:
            raise ValueError(f"t must be >= 0, got {int(t_array.min())}")
        return x, t_array

    def _forward(self, x: np.ndarray, t: np.ndarray, cache: bool) -> np.ndarray:
        h = np.concatenate([x, self._embed(t)], axis=1)  # (B, D + E)
        inputs, act_grads = [], []
        for layer in range(self.n_layers):
            inputs.append(h)
            z = h @ self.params[f"W{layer}"] + self.params[f"b{layer}"]  # (B, fan_out)
            if layer == self.n_layers - 1:
                h = z
            elif cache:
                h, grad = self.act_with_grad(z)
                act_grads.append(grad)  # act'(z), for backward
            else:
                h = self.act(z)
        if cache:
            self._cache = (inputs, act_grads)
        return h  # (B, D)

    def _embed(self, t: np.ndarray) -> np.ndarray:
        """emb(t) (B, E), looked up in a table of the steps 0..max(t) seen so far."""
        if t.size and t.max() >= _MAX_TABLE:
            return sinusoidal_embedding(t, self.embed_dim)
        if t.size and t.max() >= self._embedding_table.shape[0]:
            self._embedding_table = sinusoidal_embedding(np.arange(t.max() + 1), self.embed_dim)
        return self._embedding_table[t]

    def forward(self, x: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """Compute eps_theta(x_t, t) and remember what `backward` needs.

        Args:
            x: (B, D) noisy inputs x_t.
            t: (B,) integer time steps (or one int for the whole batch).

        Returns:
            (B, D) the network output.
        """
        x, t = self._check_inputs(x, t)
        return self._forward(x, t, cache=True)

    def __call__(self, x: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """The denoiser protocol: ``model(xt, t) -> eps`` (B, D), without caching."""
        x, t = self._check_inputs(x, t)
        return self._forward(x, t, cache=False)

    def backward(
        self, grad_out: np.ndarray, *, return_input_grad: bool = False
    ) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], np.ndarray]:
        """Gradients of a scalar loss L given dL/d(out), by the chain rule in reverse.

        For z = h W + b:  dL/dW = h^T dL/dz,  dL/db = sum_batch dL/dz,  dL/dh = dL/dz W^T.
        For h = act(z):   dL/dz = dL/dh * act'(z).

        Args:
            grad_out: (B, D) dL/d(out) for the last `forward` call.
            return_input_grad: also return dL/dx (B, D).

        Returns:
            ``grads`` (a dict with the keys of ``params``), or ``(grads, grad_x)``.
        """
        if self._cache is None:
            raise RuntimeError("backward needs a preceding forward call")
        inputs, act_grads = self._cache
        grad = np.asarray(grad_out, dtype=np.float64)
        expected = (inputs[0].shape[0], self.dim)
        if grad.shape != expected:
            raise ValueError(f"grad_out must have shape {expected}, got {grad.shape}")
        ### BEGIN SOLUTION
        grads = {}
        for layer in reversed(range(self.n_layers)):
            if layer < self.n_layers - 1:
                grad = grad * act_grads[layer]  # dL/dz = dL/dh * act'(z)
            grads[f"W{layer}"] = inputs[layer].T @ grad  # (fan_in, fan_out)
            grads[f"b{layer}"] = grad.sum(axis=0)  # (fan_out,)
            grad = grad @ self.params[f"W{layer}"].T  # dL/dh, (B, fan_in)
        grads = {name: grads[name] for name in self.params}
        ### END SOLUTION
        if return_input_grad:
            return grads, grad[:, : self.dim]  # the embedding columns carry no gradient to x
        return grads

    # -- parameters --------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter dict (an optimizer updates these arrays in place)."""
        return self.params

    def n_parameters(self) -> int:
        """The number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the parameters."""
        return {name: value.copy() for name, value in self.params.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy parameters from ``state``, which must have exactly the same names and shapes."""
        if set(state) != set(self.params):
            raise ValueError(f"state has keys {sorted(state)}, expected {sorted(self.params)}")
        for name, value in state.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != self.params[name].shape:
                raise ValueError(
                    f"state[{name!r}] has shape {value.shape}, expected {self.params[name].shape}"
                )
        for name, value in state.items():
            self.params[name][...] = value

    def copy(self) -> MLP:
        """An independent copy with the same architecture and parameters."""
        clone = object.__new__(MLP)
        clone.__dict__.update(self.__dict__)
        clone.params = self.state_dict()
        clone._cache = None
        clone._embedding_table = self._embedding_table.copy()
        return clone

    @property
    def denoiser(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The model as a plain function ``(xt: (B, D), t: (B,)) -> eps: (B, D)``."""
        return self.__call__

    def __repr__(self) -> str:
        return (
            f"MLP(dim={self.dim}, hidden={self.hidden}, embed_dim={self.embed_dim}, "
            f"activation={self.activation!r}, n_parameters={self.n_parameters()})"
        )
