"""Adam, gradient-norm clipping and an exponential moving average of parameters.

Adam follows Algorithm 1 of Kingma & Ba (2015), "Adam: a method for stochastic
optimization", with its bias correction:

    g_t = grad + weight_decay * theta_{t-1}        (L2 penalty, as torch.optim.Adam)
    m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)
    theta_t = theta_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

Parameters are a dict of float64 arrays, updated in place, so the optimizer and the
model share them.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Adam", "clip_grad_norm", "ema_update", "global_norm"]


def _check_params(params: dict[str, np.ndarray]) -> None:
    if not isinstance(params, dict) or not params:
        raise ValueError(f"params must be a non-empty dict of arrays, got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(value, np.ndarray) or value.dtype != np.float64:
            raise TypeError(f"params[{name!r}] must be a float64 numpy array")


def _check_grads(grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
    if set(grads) != set(params):
        raise ValueError(f"grads has keys {sorted(grads)}, expected {sorted(params)}")
    for name, grad in grads.items():
        if np.shape(grad) != params[name].shape:
            raise ValueError(
                f"grads[{name!r}] has shape {np.shape(grad)}, expected {params[name].shape}"
            )


class Adam:
    """Adam with bias correction (Kingma & Ba 2015, Algorithm 1).

    Args:
        params: the parameters, a dict of float64 arrays updated in place by `step`.
        lr: the step size alpha; may be changed between steps (``opt.lr = ...``).
        betas: (beta1, beta2), the decay rates of the moment estimates, each in [0, 1).
        eps: the constant added to sqrt(v_hat) in the denominator.
        weight_decay: an L2 penalty coefficient added to the gradient (0 disables).

    Attributes:
        t: the number of steps taken.
        m, v: the first and second moment estimates, dicts shaped like ``params``.
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_params(params)
        if not (isinstance(lr, numbers.Real) and lr >= 0 and np.isfinite(lr)):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.params = params
        self.lr = float(lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.m = {name: np.zeros_like(value) for name, value in params.items()}
        self.v = {name: np.zeros_like(value) for name, value in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One Adam update of every parameter in place, given dL/dtheta for each."""
        _check_grads(grads, self.params)
        ### BEGIN SOLUTION
        self.t += 1
        # Bias corrections 1 - beta^t: the moments start at 0 and are biased toward it.
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        # lr m_hat / (sqrt(v_hat) + eps) = step_size m / (sqrt(v) + eps sqrt(c2)) with
        # step_size = lr sqrt(c2) / c1: the same update with fewer array operations
        # (Kingma & Ba 2015, the remark after Algorithm 1, with eps rescaled to stay exact).
        step_size = self.lr * np.sqrt(correction2) / correction1
        eps_scaled = self.eps * np.sqrt(correction2)
        for name, theta in self.params.items():
            g = np.asarray(grads[name], dtype=np.float64)
            if self.weight_decay:
                g = g + self.weight_decay * theta
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * g  # m_t
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)  # v_t
            denominator = np.sqrt(v)
            denominator += eps_scaled
            theta -= step_size * m / denominator
        ### END SOLUTION


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """The Euclidean norm of all gradients taken together, sqrt(sum ||g||^2)."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values())))


def clip_grad_norm(
    grads: dict[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by min(1, max_norm / ||g||) so their global norm is <= max_norm
    (Pascanu et al. 2013).

    Returns:
        the (new) clipped gradients and the global norm before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm!r}")
    norm = global_norm(grads)
    if norm <= max_norm:
        return grads, norm
    scale = max_norm / norm
    return {name: g * scale for name, g in grads.items()}, norm


def ema_update(
    ema_params: dict[str, np.ndarray], params: dict[str, np.ndarray], decay: float
) -> None:
    """Exponential moving average of parameters, in place:
    ema <- decay * ema + (1 - decay) * theta.

    Sampling from the averaged weights gives smoother, better samples (Ho et al. 2020,
    appendix B, use decay 0.9999).
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")
    _check_grads(params, ema_params)
    for name, average in ema_params.items():
        average *= decay
        average += (1.0 - decay) * params[name]
