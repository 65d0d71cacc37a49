"""Flow matching on the linear path, rectified flow (Lipman et al. 2023; Liu et al. 2023).

Convention: **t = 0 is the data and t = 1 the noise**, as in a diffusion (Lipman et al.
use the opposite: their t = 1 is the data).

- Path: x_t = (1 - t) x_0 + t eps, eps ~ N(0, I), t in [0, 1].
- Velocity target: u = d x_t / dt = eps - x_0 (Liu et al. 2023, eq. 1; Lipman et al.
  2023, eq. 23 with sigma_min = 0).
- Loss: E_{t ~ U(0, 1), x_0, eps} || v_theta(x_t, t) - (eps - x_0) ||^2, minimised by the
  marginal velocity v(x, t) = E[eps - x_0 | x_t = x] (Lipman et al. 2023, theorem 2).
- Sampling: the ODE dx/dt = v(x, t), integrated from t = 1 (x_1 ~ N(0, I)) down to t = 0
  with Euler or Heun steps.

Link to DDIM. The linear path is a Gaussian path x_t = a x_0 + s eps with a = 1 - t,
s = t. Dividing by c = sqrt(a^2 + s^2) gives a variance-preserving path,
x_t / c = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps with alpha_bar = a^2 / c^2, so
E[x_0 | x_t] is the VP posterior mean at x_t / c, and

    v(x, t) = E[eps - x_0 | x_t = x] = (x - E[x_0 | x_t = x]) / t    (since a + s = 1).

An Euler step from t to t' of the flow ODE, x' = (t'/t) x + (1 - t'/t) x0_hat, is exactly
a DDIM (eta = 0) step between the corresponding VP levels after the change of variables:
both are Euler steps of the same ODE in the scale-free variables x / a against s / a
(Song et al. 2021, eq. 14). `tests/diffusion/test_flow_matching.py` checks this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

if TYPE_CHECKING:
    from minidiff.toy.mixture import GaussianMixture

__all__ = [
    "FLOW_METHODS",
    "FlowMethod",
    "linear_path",
    "velocity_target",
    "flow_matching_loss_terms",
    "flow_matching_loss",
    "flow_times",
    "sample_flow",
    "exact_velocity",
]

FlowMethod = Literal["euler", "heun"]
FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)

VelocityNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _over_batch(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against like (B, ...)."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def linear_path(x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t eps (Liu et al. 2023, eq. 1): data at t = 0, noise at t = 1.

    Args:
        x0: (B, ...) data.
        t: (B,) times in [0, 1].
        eps: (B, ...) standard normal noise.
    """
    t = _over_batch(t.to(x0.dtype), x0)
    return (1 - t) * x0 + t * eps


def velocity_target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """u = d x_t / dt = eps - x_0 along the linear path (the same at every t)."""
    return eps - x0


def flow_matching_loss_terms(
    velocity_net: VelocityNet, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """Per-example squared error || v_theta(x_t, t) - (eps - x_0) ||^2, averaged over the
    data dimensions.

    Args:
        velocity_net: ``velocity_net(x_t: (B, ...), t: (B,) float) -> (B, ...)``.
        x0: (B, ...) data.
        t: (B,) times in [0, 1].
        eps: (B, ...) standard normal noise.

    Returns:
        (B,).
    """
    t = torch.as_tensor(t, device=x0.device)
    if t.shape != (x0.shape[0],) or not t.dtype.is_floating_point:
        raise ValueError(f"t must be (B,) = ({x0.shape[0]},) real times, got {t!r}")
    if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
        raise ValueError(
            f"t must lie in [0, 1], got values in [{float(t.min())}, {float(t.max())}]"
        )
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0 {tuple(x0.shape)}, got {tuple(eps.shape)}")
    t = t.to(x0.dtype)
    velocity = velocity_net(linear_path(x0, t, eps), t)
    if velocity.shape != x0.shape:
        raise ValueError(
            f"velocity_net returned {tuple(velocity.shape)} for x of {tuple(x0.shape)}"
        )
    return (velocity - velocity_target(x0, eps)).flatten(1).pow(2).mean(dim=1)


def flow_matching_loss(
    velocity_net: VelocityNet, x0: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The conditional flow matching loss on a minibatch (Lipman et al. 2023, eq. 9;
    Liu et al. 2023, eq. 1): t ~ U(0, 1) and eps ~ N(0, I) per example, then the mean of
    `flow_matching_loss_terms`.

    Args:
        velocity_net: ``velocity_net(x_t, t) -> (B, ...)``.
        x0: (B, ...) data.
        generator: the source of t and eps (t is drawn first).

    Returns:
        the scalar loss.
    """
    t = torch.rand((x0.shape[0],), generator=generator, device=x0.device, dtype=x0.dtype)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return flow_matching_loss_terms(velocity_net, x0, t, eps).mean()


def flow_times(steps: int, t_start: float = 1.0) -> np.ndarray:
    """The uniform grid t_k = t_start k / steps for k = steps, ..., 0 (float64, decreasing)."""
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not 0.0 < t_start <= 1.0:
        raise ValueError(f"t_start must lie in (0, 1], got {t_start!r}")
    return t_start * np.arange(int(steps), -1, -1) / int(steps)


def _velocity(velocity_net: VelocityNet, x: torch.Tensor, t: float) -> torch.Tensor:
    v = velocity_net(x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype))
    if v.shape != x.shape:
        raise ValueError(f"velocity_net returned {tuple(v.shape)} for x of {tuple(x.shape)}")
    return v


def _steps(pairs, total: int, progress: bool):
    if not progress:
        return pairs
    from tqdm.auto import tqdm  # optional weight, imported where used

    return tqdm(pairs, total=total, desc="flow")


@torch.no_grad()
def sample_flow(
    velocity_net: VelocityNet,
    shape_or_x1: Sequence[int] | torch.Tensor,
    steps: int,
    *,
    method: FlowMethod = "euler",
    t_start: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) from t = t_start (noise) down to t = 0 (data) on the
    uniform grid `flow_times`.

    For consecutive times t > t' with h = t' - t < 0:
        euler:  x' = x + h v(x, t)
        heun:   x~ = x + h v(x, t);  x' = x + h / 2 (v(x, t) + v(x~, t'))
                (the explicit trapezoid rule, second order; Karras et al. 2022, Algorithm 1)

    Args:
        velocity_net: ``velocity_net(x, t: (B,) float) -> (B, ...)``.
        shape_or_x1: the starting states (B, ...) as a tensor, or a shape: then
            x ~ N(0, I) (the law at t = 1).
        steps: the number of steps (Heun calls the network twice per step).
        method: ``"euler"`` or ``"heun"``.
        t_start: the starting time in (0, 1] (below 1 to start from a partly noised x).
        generator: the source of the starting noise when a shape is given.
        progress: show a tqdm progress bar.
        device: the samples' device when ``shape_or_x1`` is a shape.
        dtype: the samples' dtype when ``shape_or_x1`` is a shape.

    Returns:
        (B, ...) x at t = 0.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {FLOW_METHODS}")
    times = flow_times(steps, t_start)
    if isinstance(shape_or_x1, torch.Tensor):
        x = shape_or_x1.detach().clone()
    else:
        dtype = torch.get_default_dtype() if dtype is None else dtype
        x = torch.randn(tuple(shape_or_x1), generator=generator, device=device, dtype=dtype)
    pairs = zip(times[:-1].tolist(), times[1:].tolist(), strict=True)
    for t, t_next in _steps(pairs, len(times) - 1, progress):
        h = t_next - t
        v = _velocity(velocity_net, x, t)
        if method == "euler":
            x = x + h * v
        elif method == "heun":
            x_euler = x + h * v  # predictor
            x = x + (h / 2) * (v + _velocity(velocity_net, x_euler, t_next))  # corrector
        else:
            raise AssertionError(method)  # excluded above
    return x


def exact_velocity(mixture: GaussianMixture) -> VelocityNet:
    """The exact marginal velocity v(x, t) = E[eps - x_0 | x_t = x] of a Gaussian mixture
    under the linear path, as a velocity network ``(x: (B, D), t: (B,)) -> (B, D)``.

    With a = 1 - t, s = t and c = sqrt(a^2 + s^2), x_t / c follows the VP path with
    alpha_bar = a^2 / c^2 (see the module docstring), so E[x_0 | x_t] is the mixture's
    posterior mean (`GaussianMixture.posterior_mean_x0`) at x_t / c on the one-step
    schedule (1, alpha_bar); then v = (x - E[x_0 | x_t]) / t. At t = 0, v(x, 0) = -x
    (eps is independent of x_0); at t = 1, alpha_bar = 0 and E[x_0 | x_1] is the mixture's
    mean. Computed in float64 NumPy, returned in x's dtype and device.
    """
    from minidiff.process import Schedule

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_np = torch.as_tensor(t).detach().cpu().to(torch.float64).numpy()
        x_np = x.detach().cpu().to(torch.float64).numpy()
        if t_np.ndim == 0:
            t_np = np.full(x_np.shape[0], float(t_np))
        out = np.empty_like(x_np)
        for time in np.unique(t_np):  # one vectorised pass per distinct time
            rows = t_np == time
            if time == 0.0:
                out[rows] = -x_np[rows]
                continue
            a, s = 1.0 - time, time
            c = np.hypot(a, s)
            schedule = Schedule.from_alpha_bar(np.array([1.0, (a / c) ** 2]))
            x0 = mixture.posterior_mean_x0(schedule, x_np[rows] / c, 1)  # E[x_0 | x_t]
            out[rows] = (x_np[rows] - x0) / s
        return torch.from_numpy(out).to(x.device, x.dtype)

    return velocity
