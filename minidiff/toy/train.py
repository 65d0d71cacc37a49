"""DDPM training of the NumPy MLP on 2-D data: Algorithm 1 of Ho et al. (2020).

    repeat
        x_0 ~ q(x_0)                      (a minibatch of the data)
        t ~ Uniform({1, ..., T})
        eps ~ N(0, I)
        x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
        take a gradient step on  || eps - eps_theta(x_t, t) ||^2
    until converged

The loss is the "simple" objective L_simple of Ho et al. (2020), eq. 14, averaged over
the batch and the data dimensions. The optimizer is Adam with a linear warmup and a
cosine decay of the learning rate, and sampling uses an exponential moving average of
the weights (Ho et al. 2020, appendix B).

The defaults below were tuned with ``benchmarks/toy2d.py``: on one CPU core they train
the swiss roll, two moons and 8 gaussians to within twice the data-vs-data floor of the
sliced Wasserstein distance in well under a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from minidiff.process import Schedule, q_sample
from minidiff.toy.mlp import MLP, Activation
from minidiff.toy.optim import Adam, clip_grad_norm, ema_update

__all__ = [
    "DEFAULT_T",
    "TrainResult",
    "ddpm_loss_and_grads",
    "learning_rate",
    "train_ddpm",
]

# -- defaults (each tuned on the 2-D benchmark) --------------------------------------------
DEFAULT_T = 200  # diffusion steps (`minidiff.process.toy_schedule`): cheap, enough for 2-D data
DEFAULT_STEPS = 6000  # optimizer steps
DEFAULT_BATCH_SIZE = 256  # examples per step
DEFAULT_LR = 8e-3  # peak Adam learning rate (2e-3 and 4e-3 learn thin shapes far slower)
DEFAULT_WARMUP = 200  # steps of linear learning-rate warmup, then cosine decay
DEFAULT_MIN_LR_FRACTION = 0.05  # the cosine decay ends at this fraction of the peak
DEFAULT_HIDDEN = (64, 64, 64)  # MLP hidden widths: as good as 128 at 6000 steps, 3x cheaper
DEFAULT_EMBED_DIM = 32  # width of the sinusoidal time embedding
DEFAULT_EMA_DECAY = 0.995  # EMA of the weights used for sampling
DEFAULT_CLIP_NORM = 1.0  # global gradient-norm clipping


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What `train_ddpm` returns.

    Attributes:
        model: the trained network (its final weights).
        ema_model: a network holding the exponential moving average of the weights;
            sample with this one.
        schedule: the schedule the model was trained for.
        losses: (steps,) the minibatch loss at every step.
        train_seconds: wall-clock time of the training loop.
        steps: the number of optimizer steps taken.
    """

    model: MLP
    ema_model: MLP
    schedule: Schedule
    losses: np.ndarray
    train_seconds: float
    steps: int

    @property
    def denoiser(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The EMA network as a denoiser ``(xt, t) -> eps``."""
        return self.ema_model.denoiser


def ddpm_loss_and_grads(
    model: MLP, schedule: Schedule, x0: np.ndarray, t: np.ndarray, eps: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """L_simple for one minibatch and its gradient (Ho et al. 2020, eq. 14 / Algorithm 1).

    L = mean over batch and dimensions of (eps - eps_theta(x_t, t))^2, with
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps; dL/d(eps_theta) =
    2 (eps_theta - eps) / (B D).

    Args:
        model: the network.
        schedule: the schedule.
        x0: (B, D) clean data.
        t: (B,) time steps in 1..T.
        eps: (B, D) the noise.

    Returns:
        the loss and the gradients of every parameter.
    """
    ### BEGIN SOLUTION
    xt = q_sample(schedule, x0, t, eps)  # (B, D), eq. 4
    prediction = model.forward(xt, t)  # (B, D)
    residual = prediction - eps
    loss = float(np.mean(residual**2))
    grads = model.backward(2.0 * residual / residual.size)
    return loss, grads
    ### END SOLUTION


def learning_rate(
    step: int, steps: int, lr: float, warmup: int, min_fraction: float = DEFAULT_MIN_LR_FRACTION
) -> float:
    """Linear warmup over ``warmup`` steps, then a cosine decay (Loshchilov & Hutter 2017)
    from ``lr`` to ``min_fraction * lr`` at the last step. ``step`` counts from 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup - 1)
    cosine = 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0)))
    return lr * (min_fraction + (1.0 - min_fraction) * cosine)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def train_ddpm(
    data: np.ndarray,
    schedule: Schedule,
    rng: np.random.Generator,
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    warmup: int = DEFAULT_WARMUP,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    embed_dim: int = DEFAULT_EMBED_DIM,
    activation: Activation = "silu",
    ema_decay: float = DEFAULT_EMA_DECAY,
    clip_norm: float | None = DEFAULT_CLIP_NORM,
    progress: bool = True,
    callback: Callable[[int, float, MLP], None] | None = None,
) -> TrainResult:
    """Train eps_theta on ``data`` with Algorithm 1 of Ho et al. (2020).

    Args:
        data: (N, D) the training set; minibatches are drawn from it with replacement.
        schedule: the noise schedule (e.g. `minidiff.process.toy_schedule()`).
        rng: the only source of randomness: initial weights, minibatches, t and eps.
        steps: optimizer steps.
        batch_size: examples per step.
        lr: peak learning rate (see `learning_rate`).
        warmup: warmup steps (0 for none).
        hidden: the `MLP`'s hidden widths.
        embed_dim: the width of the `MLP`'s time embedding.
        activation: the `MLP`'s activation, one of `ACTIVATIONS`.
        ema_decay: decay of the weight average in [0, 1); the average's decay ramps up as
            min(ema_decay, (1 + k) / (10 + k)) after k updates so that it forgets the
            random initial weights quickly.
        clip_norm: clip the global gradient norm to this value (None disables).
        progress: show a tqdm bar with the running loss.
        callback: called as ``callback(step, loss, model)`` after every step.

    Returns:
        a `TrainResult`.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (N, D) with N >= 1, got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("data must be finite")
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    steps = _check_positive_int(steps, "steps")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if isinstance(warmup, bool) or int(warmup) != warmup or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay!r}")

    model = MLP(data.shape[1], rng, hidden=hidden, embed_dim=embed_dim, activation=activation)
    ema_model = model.copy()
    optimizer = Adam(model.parameters(), lr=lr)
    losses = np.empty(steps)
    bar = _progress_bar(steps, progress)
    start = time.perf_counter()
    for step in range(steps):
        # Algorithm 1: x_0 from the data, t uniform on 1..T, eps standard normal.
        x0 = data[rng.integers(0, data.shape[0], size=batch_size)]  # (B, D)
        t = rng.integers(1, schedule.T + 1, size=batch_size)  # (B,)
        eps = rng.standard_normal(x0.shape)  # (B, D)
        loss, grads = ddpm_loss_and_grads(model, schedule, x0, t, eps)
        if clip_norm is not None:
            grads, _ = clip_grad_norm(grads, clip_norm)
        optimizer.lr = learning_rate(step, steps, lr, warmup)
        optimizer.step(grads)
        ema_update(ema_model.params, model.params, min(ema_decay, (1 + step) / (10 + step)))
        losses[step] = loss
        if bar is not None:
            bar.update(1)
            if step % 50 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{np.mean(losses[max(0, step - 99) : step + 1]):.4f}")
        if callback is not None:
            callback(step, loss, model)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    losses.flags.writeable = False
    return TrainResult(model, ema_model, schedule, losses, seconds, steps)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", leave=False)
