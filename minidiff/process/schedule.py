"""Noise schedules: the per-step tables beta_t, alpha_t and alpha_bar_t.

Every table has length T + 1 and index 0 is the data (paper indexing):
``beta[0] = 0`` and ``alpha_bar[0] = 1``, so ``alpha_bar[t]`` reads as in the papers and
t runs over 1..T.

Covers Ho et al. (2020), sec. 2 and 4 (the linear schedule), Nichol & Dhariwal (2021),
sec. 3.2 (the cosine schedule), Jabri et al. (2023) / Chen (2023) (the sigmoid schedule),
Kingma et al. (2021) (the signal-to-noise ratio) and Lin et al. (2024), sec. 3.2
(rescaling to zero terminal SNR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Schedule",
    "linear_schedule",
    "cosine_alpha_bar",
    "cosine_schedule",
    "sigmoid_schedule",
    "rescale_zero_terminal_snr",
]


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Schedule:
    """A variance schedule of a Gaussian diffusion, in float64 with paper indexing.

    Build one with `linear_schedule`, `cosine_schedule`, `sigmoid_schedule`,
    `Schedule.from_betas` or `Schedule.from_alpha_bar`; the constructor validates.

    Attributes:
        beta: (T + 1,) the forward variances, ``beta[0] = 0`` and ``0 < beta[t] < 1``
            for t >= 1 (``beta[T] = 1`` is allowed only for a zero-terminal-SNR schedule).
        alpha: (T + 1,) ``1 - beta``.
        alpha_bar: (T + 1,) the running product of alpha (Ho et al. 2020, eq. 4);
            ``alpha_bar[0] = 1``.
        T: the number of diffusion steps.
    """

    beta: np.ndarray

    def __post_init__(self) -> None:
        beta = np.asarray(self.beta, dtype=np.float64)
        if beta.ndim != 1 or beta.shape[0] < 2:
            raise ValueError(
                f"beta must be a 1-D array of length T + 1 >= 2 with beta[0] = 0, "
                f"got shape {beta.shape}"
            )
        if beta[0] != 0.0:
            raise ValueError(f"beta[0] must be 0 (index 0 is the data), got {beta[0]!r}")
        bad = ~np.isfinite(beta[1:]) | (beta[1:] <= 0.0) | (beta[1:] > 1.0)
        # beta_T = 1 is the one admissible value of 1: it means alpha_bar_T = 0 (zero
        # terminal SNR, Lin et al. 2024). Any other beta_t = 1 would erase the chain.
        bad[:-1] |= beta[1:-1] >= 1.0
        if bad.any():
            t = int(np.argmax(bad)) + 1
            raise ValueError(
                f"beta[{t}] = {beta[t]!r} is invalid: every beta[t] for t >= 1 must be "
                f"finite and in (0, 1) (only beta[T] may equal 1)"
            )
        object.__setattr__(self, "beta", _readonly(beta))

    # -- constructors -------------------------------------------------------------
    @classmethod
    def from_betas(cls, betas: np.ndarray) -> Schedule:
        """Schedule from beta_1..beta_T (length T, without the leading 0)."""
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.shape[0] < 1:
            raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
        return cls(np.concatenate([[0.0], betas]))

    @classmethod
    def from_alpha_bar(
        cls, alpha_bar: np.ndarray | Callable[[np.ndarray], np.ndarray], T: int | None = None
    ) -> Schedule:
        """Schedule whose cumulative products are ``alpha_bar``.

        beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} (Ho et al. 2020, eq. 4 inverted).

        Args:
            alpha_bar: either an array (T + 1,) with ``alpha_bar[0] = 1``, strictly
                decreasing, with ``alpha_bar[t] > 0`` for t < T (``alpha_bar[T] = 0`` is
                allowed), or a function of u = t / T in [0, 1] evaluated at t = 0..T
                (normalised so that its value at u = 0 becomes 1).
            T: the number of steps; required when ``alpha_bar`` is a function.
        """
        if callable(alpha_bar):
            if T is None or int(T) != T or T < 1:
                raise ValueError(f"T must be a positive integer when alpha_bar is a function, got {T!r}")
            values = np.asarray(alpha_bar(np.arange(T + 1) / T), dtype=np.float64)
            if values.shape != (T + 1,) or not np.isfinite(values[0]) or values[0] <= 0:
                raise ValueError("the alpha_bar function must return T + 1 values, positive at u = 0")
            values = values / values[0]
        else:
            values = np.asarray(alpha_bar, dtype=np.float64)
            if values.ndim != 1 or values.shape[0] < 2:
                raise ValueError(f"alpha_bar must be a 1-D array of length T + 1 >= 2, got shape {values.shape}")
            if values[0] != 1.0:
                raise ValueError(f"alpha_bar[0] must be 1 (index 0 is the data), got {values[0]!r}")
        ratio = np.ones_like(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[1:] = values[1:] / values[:-1]
        beta = 1.0 - ratio
        beta[0] = 0.0
        return cls(beta)

    # -- tables ---------------------------------------------------------------------
    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return self.beta.shape[0] - 1

    @property
    def alpha(self) -> np.ndarray:
        """(T + 1,) alpha_t = 1 - beta_t."""
        return 1.0 - self.beta

    @property
    def alpha_bar(self) -> np.ndarray:
        """(T + 1,) alpha_bar_t = prod_{s <= t} alpha_s (Ho et al. 2020, eq. 4)."""
        return np.cumprod(self.alpha)

    @property
    def alpha_bar_prev(self) -> np.ndarray:
        """(T + 1,) alpha_bar_{t-1}, with the convention alpha_bar_{-1} = 1 at index 0."""
        return np.concatenate([[1.0], self.alpha_bar[:-1]])

    @property
    def sqrt_alpha_bar(self) -> np.ndarray:
        """(T + 1,) sqrt(alpha_bar_t), the signal scale of q(x_t | x_0)."""
        return np.sqrt(self.alpha_bar)

    @property
    def sqrt_one_minus_alpha_bar(self) -> np.ndarray:
        """(T + 1,) sqrt(1 - alpha_bar_t), the noise scale of q(x_t | x_0)."""
        return np.sqrt(1.0 - self.alpha_bar)

    @property
    def snr(self) -> np.ndarray:
        """(T + 1,) SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021); inf at t = 0."""
        alpha_bar = self.alpha_bar
        with np.errstate(divide="ignore"):
            return alpha_bar / (1.0 - alpha_bar)

    @property
    def log_snr(self) -> np.ndarray:
        """(T + 1,) log SNR(t) = log alpha_bar_t - log(1 - alpha_bar_t); +inf at t = 0."""
        log_alpha_bar = np.cumsum(np.log(self.alpha))
        with np.errstate(divide="ignore"):
            return log_alpha_bar - np.log(-np.expm1(log_alpha_bar))

    @property
    def posterior_var(self) -> np.ndarray:
        """(T + 1,) variance of q(x_{t-1} | x_t, x_0):
        beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
        (Ho et al. 2020, eq. 7); 0 at t = 1, and 0 by convention at t = 0."""
        alpha_bar = self.alpha_bar
        var = np.zeros_like(alpha_bar)
        var[1:] = (1.0 - alpha_bar[:-1]) / (1.0 - alpha_bar[1:]) * self.beta[1:]
        return var

    @property
    def posterior_log_var_clipped(self) -> np.ndarray:
        """(T + 1,) log of the posterior variance with the t = 1 value (which is 0)
        replaced by the t = 2 value, as in Ho et al. (2020)'s released code, so that
        the log is finite; for T = 1 it falls back to log beta_1."""
        var = self.posterior_var.copy()
        var[0] = 0.0
        var[1] = var[2] if self.T >= 2 else self.beta[1]
        var[0] = var[1]
        return np.log(var)

    @property
    def posterior_mean_coef_x0(self) -> np.ndarray:
        """(T + 1,) coefficient of x_0 in the posterior mean:
        sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) (Ho et al. 2020, eq. 7)."""
        alpha_bar = self.alpha_bar
        coef = np.zeros_like(alpha_bar)
        coef[1:] = np.sqrt(alpha_bar[:-1]) * self.beta[1:] / (1.0 - alpha_bar[1:])
        return coef

    @property
    def posterior_mean_coef_xt(self) -> np.ndarray:
        """(T + 1,) coefficient of x_t in the posterior mean:
        sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (Ho et al. 2020, eq. 7)."""
        alpha_bar = self.alpha_bar
        coef = np.zeros_like(alpha_bar)
        coef[1:] = np.sqrt(self.alpha[1:]) * (1.0 - alpha_bar[:-1]) / (1.0 - alpha_bar[1:])
        return coef

    def __len__(self) -> int:
        return self.beta.shape[0]

    def __repr__(self) -> str:
        return (
            f"Schedule(T={self.T}, beta_1={self.beta[1]:.3g}, beta_T={self.beta[-1]:.3g}, "
            f"alpha_bar_T={self.alpha_bar[-1]:.3g})"
        )


def _check_T(T: int) -> int:
    if isinstance(T, bool) or int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    return int(T)


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """Betas linearly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020, sec. 4).

    The paper's constants are given for T = 1000; they are used as given for any T.
    """
    T = _check_T(T)
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not (0.0 < value < 1.0):
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return Schedule.from_betas(np.linspace(beta_start, beta_end, T, dtype=np.float64))


def cosine_alpha_bar(u: np.ndarray, s: float = 0.008) -> np.ndarray:
    """The unnormalised cosine curve f(u) = cos^2(pi/2 (u + s) / (1 + s)), u = t / T
    (Nichol & Dhariwal 2021, eq. 17); alpha_bar_t = f(t / T) / f(0)."""
    return np.cos((np.asarray(u, dtype=np.float64) + s) / (1.0 + s) * np.pi / 2) ** 2


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """The cosine schedule of Nichol & Dhariwal (2021), eq. 17.

    alpha_bar_t = f(t/T) / f(0) with f(u) = cos^2(pi/2 (u + s) / (1 + s)), and betas
    clipped to at most ``max_beta`` to avoid the singularity at t = T.
    """
    T = _check_T(T)
    if not (s >= 0.0 and np.isfinite(s)):
        raise ValueError(f"s must be a finite non-negative offset, got {s!r}")
    if not (0.0 < max_beta < 1.0):
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta!r}")
    f = cosine_alpha_bar(np.arange(T + 1) / T, s)
    alpha_bar = f / f[0]
    beta = np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)
    return Schedule.from_betas(beta)


def sigmoid_schedule(
    T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0, max_beta: float = 0.999
) -> Schedule:
    """The sigmoid schedule (Jabri et al. 2023; Chen 2023, "On the importance of noise
    scheduling"): alpha_bar(u) ∝ (sigmoid(end / tau) - sigmoid((u (end - start) + start) / tau)),
    normalised to 1 at u = 0, with betas clipped to at most ``max_beta``."""
    T = _check_T(T)
    if not start < end:
        raise ValueError(f"start must be smaller than end, got start={start!r}, end={end!r}")
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    if not (0.0 < max_beta < 1.0):
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta!r}")

    def sigmoid(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    u = np.arange(T + 1) / T
    f = sigmoid(np.float64(end) / tau) - sigmoid((u * (end - start) + start) / tau)
    alpha_bar = f / f[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    beta = np.minimum(np.nan_to_num(beta, nan=max_beta), max_beta)
    return Schedule.from_betas(beta)


def rescale_zero_terminal_snr(schedule: Schedule) -> Schedule:
    """Rescale a schedule so that alpha_bar_T = 0 (zero terminal SNR), keeping alpha_bar_1.

    Lin et al. (2024), "Common diffusion noise schedules and sample steps are flawed",
    Algorithm 1: shift and scale sqrt(alpha_bar) linearly so that its last value becomes 0
    and its value at t = 1 is unchanged. The result has beta_T = 1.

    Requires T >= 2 (with T = 1 the two constraints contradict each other).
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    if schedule.T < 2:
        raise ValueError(f"rescale_zero_terminal_snr needs T >= 2, got T = {schedule.T}")
    root = schedule.sqrt_alpha_bar
    first, last = root[1], root[-1]
    rescaled = (root - last) * first / (first - last)
    rescaled[0] = 1.0
    alpha_bar = rescaled**2
    alpha_bar[-1] = 0.0
    return Schedule.from_alpha_bar(alpha_bar)
