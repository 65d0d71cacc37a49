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

import functools
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


def _table(method):
    """A per-step table, computed on first use and kept, read-only, on the instance.

    The schedule is immutable, so its tables never change; samplers read them at every
    step, and recomputing the cumulative products each time would dominate small batches.
    """

    def compute(self):
        return _readonly(method(self))

    compute.__name__ = method.__name__
    compute.__doc__ = method.__doc__
    return functools.cached_property(compute)


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
        The table is validated first; a bad entry raises ValueError naming its index.

        Args:
            alpha_bar: either an array (T + 1,) with ``alpha_bar[0] = 1``, strictly
                decreasing, with ``alpha_bar[t] > 0`` for t < T (``alpha_bar[T] = 0`` is
                allowed), or a function of u = t / T in [0, 1] evaluated at t = 0..T
                (normalised so that its value at u = 0 becomes 1).
            T: the number of steps; required when ``alpha_bar`` is a function.
        """
        if callable(alpha_bar):
            if T is None or int(T) != T or T < 1:
                raise ValueError(
                    f"T must be a positive integer when alpha_bar is a function, got {T!r}"
                )
            values = np.asarray(alpha_bar(np.arange(T + 1) / T), dtype=np.float64)
            if values.shape != (T + 1,) or not np.isfinite(values[0]) or values[0] <= 0:
                raise ValueError(
                    "the alpha_bar function must return T + 1 values, positive at u = 0"
                )
            values = values / values[0]
        else:
            values = np.asarray(alpha_bar, dtype=np.float64)
            if values.ndim != 1 or values.shape[0] < 2:
                raise ValueError(
                    f"alpha_bar must be a 1-D array of length T + 1 >= 2, got shape {values.shape}"
                )
            if values[0] != 1.0:
                raise ValueError(f"alpha_bar[0] must be 1 (index 0 is the data), got {values[0]!r}")
        _check_alpha_bar(values)
        # beta_t = (alpha_bar_{t-1} - alpha_bar_t) / alpha_bar_{t-1}: for beta_t <= 1/2 the
        # difference of the two neighbours is exact in float64 (Sterbenz's lemma), so a
        # small beta keeps its digits, which 1 - alpha_bar_t / alpha_bar_{t-1} rounds away.
        beta = np.zeros_like(values)
        beta[1:] = (values[:-1] - values[1:]) / values[:-1]
        return cls(beta)

    # -- tables ---------------------------------------------------------------------
    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return self.beta.shape[0] - 1

    @_table
    def alpha(self) -> np.ndarray:
        """(T + 1,) alpha_t = 1 - beta_t."""
        return 1.0 - self.beta

    @_table
    def alpha_bar(self) -> np.ndarray:
        """(T + 1,) alpha_bar_t = prod_{s <= t} alpha_s (Ho et al. 2020, eq. 4)."""
        return np.cumprod(self.alpha)

    @_table
    def log_alpha_bar(self) -> np.ndarray:
        """(T + 1,) log alpha_bar_t = sum_{s <= t} log(1 - beta_s), summed with log1p.

        Finite where alpha_bar_t itself underflows to 0 (long chains with large betas);
        -inf at t = T for a zero-terminal-SNR schedule (beta_T = 1).
        """
        with np.errstate(divide="ignore"):
            return np.cumsum(np.log1p(-self.beta))

    @_table
    def alpha_bar_prev(self) -> np.ndarray:
        """(T + 1,) alpha_bar_{t-1}, with the convention alpha_bar_{-1} = 1 at index 0."""
        return np.concatenate([[1.0], self.alpha_bar[:-1]])

    @_table
    def one_minus_alpha_bar(self) -> np.ndarray:
        """(T + 1,) 1 - alpha_bar_t, the variance of q(x_t | x_0) (Ho et al. 2020, eq. 4).

        Computed as -expm1(log alpha_bar_t), which keeps full relative precision when
        alpha_bar_t is close to 1 (small t, small betas), where the subtraction
        1 - alpha_bar_t would lose up to ten digits. Index 0 is exactly 0 and index 1
        exactly beta_1.
        """
        value = -np.expm1(self.log_alpha_bar)
        value[0] = 0.0  # exactly 0, not -0.0
        value[1] = self.beta[1]
        return value

    @_table
    def sqrt_alpha_bar(self) -> np.ndarray:
        """(T + 1,) sqrt(alpha_bar_t), the signal scale of q(x_t | x_0)."""
        return np.sqrt(self.alpha_bar)

    @_table
    def sqrt_one_minus_alpha_bar(self) -> np.ndarray:
        """(T + 1,) sqrt(1 - alpha_bar_t), the noise scale of q(x_t | x_0)."""
        return np.sqrt(self.one_minus_alpha_bar)

    @_table
    def snr(self) -> np.ndarray:
        """(T + 1,) SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021); inf at t = 0."""
        with np.errstate(divide="ignore"):
            return self.alpha_bar / self.one_minus_alpha_bar

    @_table
    def log_snr(self) -> np.ndarray:
        """(T + 1,) log SNR(t) = log alpha_bar_t - log(1 - alpha_bar_t); +inf at t = 0.

        Finite wherever alpha_bar_t > 0 mathematically, even where alpha_bar_t underflows.
        """
        with np.errstate(divide="ignore"):
            return self.log_alpha_bar - np.log(self.one_minus_alpha_bar)

    @_table
    def posterior_var(self) -> np.ndarray:
        """(T + 1,) variance of q(x_{t-1} | x_t, x_0):
        beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
        (Ho et al. 2020, eq. 7); 0 at t = 1, and 0 by convention at t = 0."""
        one_minus = self.one_minus_alpha_bar
        var = np.zeros_like(one_minus)
        var[1:] = one_minus[:-1] / one_minus[1:] * self.beta[1:]
        return var

    @_table
    def posterior_log_var_clipped(self) -> np.ndarray:
        """(T + 1,) log of the posterior variance with the t = 1 value (which is 0)
        replaced by the t = 2 value, as in Ho et al. (2020)'s released code, so that
        the log is finite; for T = 1 it falls back to log beta_1."""
        var = self.posterior_var.copy()
        var[1] = var[2] if self.T >= 2 else self.beta[1]
        var[0] = var[1]
        return np.log(var)

    @_table
    def fixed_large_var(self) -> np.ndarray:
        """(T + 1,) the "fixed_large" reverse variance sigma_t^2 = beta_t (Ho et al. 2020,
        sec. 3.2), with beta_tilde_2 at t = 1 as in the authors' released code (beta_1 for
        T = 1); the t = 1 value only enters a likelihood (no noise is added at t = 1).
        0 at t = 0."""
        var = self.beta.copy()
        var[1] = self.posterior_var[2] if self.T >= 2 else self.beta[1]
        return var

    @_table
    def fixed_large_log_var(self) -> np.ndarray:
        """(T + 1,) log of `fixed_large_var`, with the t = 1 value at t = 0 too (finite)."""
        var = self.fixed_large_var.copy()
        var[0] = var[1]
        return np.log(var)

    @_table
    def posterior_mean_coef_x0(self) -> np.ndarray:
        """(T + 1,) coefficient of x_0 in the posterior mean:
        sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) (Ho et al. 2020, eq. 7); exactly 1
        at t = 1."""
        coef = np.zeros(self.T + 1)
        coef[1:] = self.sqrt_alpha_bar[:-1] * self.beta[1:] / self.one_minus_alpha_bar[1:]
        return coef

    @_table
    def posterior_mean_coef_xt(self) -> np.ndarray:
        """(T + 1,) coefficient of x_t in the posterior mean:
        sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (Ho et al. 2020, eq. 7);
        exactly 0 at t = 1."""
        one_minus = self.one_minus_alpha_bar
        coef = np.zeros(self.T + 1)
        coef[1:] = np.sqrt(self.alpha[1:]) * one_minus[:-1] / one_minus[1:]
        return coef

    def __repr__(self) -> str:
        return (
            f"Schedule(T={self.T}, beta_1={self.beta[1]:.3g}, beta_T={self.beta[-1]:.3g}, "
            f"alpha_bar_T={self.alpha_bar[-1]:.3g})"
        )


def _check_alpha_bar(values: np.ndarray) -> None:
    """Check an alpha_bar table: finite, alpha_bar[0] = 1, strictly decreasing, positive
    before T (alpha_bar[T] = 0 is allowed: zero terminal SNR)."""
    bad = ~np.isfinite(values)
    bad[1:] |= ~(values[1:] < values[:-1])
    bad[1:-1] |= ~(values[1:-1] > 0.0)
    bad[-1] |= not values[-1] >= 0.0
    if bad.any():
        t = int(np.argmax(bad))
        raise ValueError(
            f"alpha_bar[{t}] = {values[t]!r} is invalid: alpha_bar must be finite, strictly "
            f"decreasing from alpha_bar[0] = 1, and positive before T (alpha_bar[T] may be 0)"
        )


def _check_T(T: int) -> int:
    try:
        valid = not isinstance(T, bool) and int(T) == T and T >= 1
    except (TypeError, ValueError, OverflowError):  # nan, inf, text
        valid = False
    if not valid:
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

    # f(u) = sigmoid(e) - sigmoid(z_u) with e = end / tau, z_u = (u (end - start) + start) / tau
    # equals sigmoid(e) sigmoid(-z_u) (1 - exp(-(e - z_u))), and e - z_u = (1 - u)(end - start)
    # / tau. In logs (dropping the constant log sigmoid(e)), this has no cancellation: the
    # plain difference rounds to 0 once both sigmoids saturate at 1 (a small tau), which
    # would give beta_t = 0 or 0 / 0.
    t = np.arange(T + 1)
    z = (t / T * (end - start) + start) / tau
    gap = (T - t) / T * (end - start) / tau
    # log(1 - exp(-gap)), accurate for small gaps (expm1) and for large ones (log1p)
    with np.errstate(divide="ignore"):
        log_one_minus = np.where(
            gap < np.log(2.0), np.log(-np.expm1(-gap)), np.log1p(-np.exp(-gap))
        )  # -inf at t = T
    log_f = -np.logaddexp(0.0, z) + log_one_minus
    beta = -np.expm1(log_f[1:] - log_f[:-1])  # 1 - f_t / f_{t-1}; 1 at t = T
    return Schedule.from_betas(np.minimum(beta, max_beta))


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
