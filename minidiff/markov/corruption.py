"""The corruption chains of discrete diffusion (Austin et al. 2021, "D3PM", sec. 3 and app. A).

A categorical x_t on K states is corrupted by a row-stochastic Q_t, q(x_t | x_{t-1}) =
Cat(x_t; x_{t-1} Q_t) with x as a one-hot row, and q(x_t | x_0) = Cat(x_t; x_0 Q_bar_t)
with the cumulative kernel Q_bar_t = Q_1 Q_2 ... Q_t (D3PM, sec. 3). Two families have a
closed-form Q_bar_t, with alpha_bar_t = prod_{s <= t} (1 - beta_s):

- uniform (D3PM, sec. 3.1 and app. A; Hoogeboom et al. 2021):
  Q_t = (1 - beta_t) I + beta_t / K 11^T and Q_bar_t = alpha_bar_t I + (1 - alpha_bar_t) / K 11^T;
- absorbing, or "mask" (D3PM, sec. 3.1 and app. A), with m the mask state:
  Q_t = (1 - beta_t) I + beta_t 1 e_m^T and Q_bar_t = alpha_bar_t I + (1 - alpha_bar_t) 1 e_m^T.

Both families are closed under products because 11^T / K and 1 e_m^T are idempotent and
absorb I on either side; the coefficient of I multiplies, and rows keep summing to 1.

Betas use paper indexing: an array ``beta`` of length T + 1 with ``beta[0] = 0`` and
``0 <= beta[t] <= 1`` for t >= 1 (a discrete chain allows the end points: beta_t = 0 is
"do nothing", beta_t = 1 "forget x_{t-1}"). Then Q_0 = Q_bar_0 = I. One-step matrices
take the scalar beta_t.
"""

from __future__ import annotations

import numbers
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from minidiff.markov._checks import check_beta, check_beta_t, check_t

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "uniform_step_matrix",
    "absorbing_step_matrix",
    "uniform_cumulative_matrix",
    "absorbing_cumulative_matrix",
    "step_matrix",
    "cumulative_matrix",
]

Corruption = Literal["uniform", "absorbing"]
CORRUPTIONS = get_args(Corruption)  # ("uniform", "absorbing"): the options, for messages and tests


def _check_K(K) -> int:
    if isinstance(K, (bool, np.bool_)) or not isinstance(K, numbers.Integral) or K < 2:
        raise ValueError(f"K (the number of states) must be an integer >= 2, got {K!r}")
    return int(K)


def _check_mask_index(mask_index, K: int) -> int:
    if mask_index is None:
        return K - 1
    if isinstance(mask_index, (bool, np.bool_)) or not isinstance(mask_index, numbers.Integral):
        raise ValueError(f"mask_index must be an int in 0..{K - 1} or None, got {mask_index!r}")
    if not 0 <= mask_index < K:
        raise ValueError(f"mask_index must lie in 0..{K - 1} (K = {K}), got {mask_index}")
    return int(mask_index)


def _alpha_bar_at(beta, t) -> float:
    """alpha_bar_t = prod_{s=1..t} (1 - beta_s) after validating beta (T + 1,) and t."""
    beta = check_beta(beta)
    t = check_t(t, beta.shape[0] - 1)
    return float(np.prod(1.0 - beta[1 : t + 1]))


def uniform_step_matrix(beta_t: float, K: int) -> np.ndarray:
    """Q_t = (1 - beta_t) I + beta_t / K 11^T (D3PM, sec. 3.1).

    With probability beta_t the state is redrawn uniformly from all K states.

    Returns:
        (K, K) doubly stochastic matrix.
    """
    K = _check_K(K)
    beta_t = check_beta_t(beta_t)
    return (1.0 - beta_t) * np.eye(K) + beta_t / K * np.ones((K, K))


def absorbing_step_matrix(beta_t: float, K: int, mask_index: int | None = None) -> np.ndarray:
    """Q_t = (1 - beta_t) I + beta_t 1 e_m^T (D3PM, sec. 3.1).

    With probability beta_t the state becomes the mask m, which it never leaves.

    Args:
        beta_t: the corruption probability in [0, 1].
        K: the number of states, the mask included.
        mask_index: the mask state m (default K - 1).

    Returns:
        (K, K) row-stochastic matrix.
    """
    K = _check_K(K)
    beta_t = check_beta_t(beta_t)
    m = _check_mask_index(mask_index, K)
    Q = (1.0 - beta_t) * np.eye(K)
    Q[:, m] += beta_t
    return Q


def uniform_cumulative_matrix(beta: ArrayLike, t: int, K: int) -> np.ndarray:
    """Q_bar_t = Q_1 ... Q_t = alpha_bar_t I + (1 - alpha_bar_t) / K 11^T (D3PM, sec. 3.1).

    Args:
        beta: (T + 1,) betas in paper indexing (``beta[0] = 0``).
        t: the step, 0 <= t <= T (Q_bar_0 = I).
        K: the number of states.

    Returns:
        (K, K) the cumulative kernel; row i is q(x_t | x_0 = i).
    """
    K = _check_K(K)
    alpha_bar = _alpha_bar_at(beta, t)
    return alpha_bar * np.eye(K) + (1.0 - alpha_bar) / K * np.ones((K, K))


def absorbing_cumulative_matrix(
    beta: ArrayLike, t: int, K: int, mask_index: int | None = None
) -> np.ndarray:
    """Q_bar_t = Q_1 ... Q_t = alpha_bar_t I + (1 - alpha_bar_t) 1 e_m^T (D3PM, sec. 3.1).

    A token is still intact at step t with probability alpha_bar_t and masked otherwise.

    Args:
        beta: (T + 1,) betas in paper indexing (``beta[0] = 0``).
        t: the step, 0 <= t <= T (Q_bar_0 = I).
        K: the number of states, the mask included.
        mask_index: the mask state m (default K - 1).

    Returns:
        (K, K) the cumulative kernel; row i is q(x_t | x_0 = i).
    """
    K = _check_K(K)
    m = _check_mask_index(mask_index, K)
    alpha_bar = _alpha_bar_at(beta, t)
    Q_bar = alpha_bar * np.eye(K)
    Q_bar[:, m] += 1.0 - alpha_bar
    return Q_bar


def step_matrix(
    kind: Corruption, beta_t: float, K: int, mask_index: int | None = None
) -> np.ndarray:
    """The one-step matrix Q_t of the corruption ``kind``, one of `CORRUPTIONS`."""
    if kind == "uniform":
        if mask_index is not None:
            raise ValueError("mask_index is only used by the absorbing corruption")
        return uniform_step_matrix(beta_t, K)
    elif kind == "absorbing":
        return absorbing_step_matrix(beta_t, K, mask_index)
    else:
        raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")


def cumulative_matrix(
    kind: Corruption, beta: ArrayLike, t: int, K: int, mask_index: int | None = None
) -> np.ndarray:
    """The closed-form Q_bar_t = Q_1 ... Q_t of the corruption ``kind``, one of `CORRUPTIONS`."""
    if kind == "uniform":
        if mask_index is not None:
            raise ValueError("mask_index is only used by the absorbing corruption")
        return uniform_cumulative_matrix(beta, t, K)
    elif kind == "absorbing":
        return absorbing_cumulative_matrix(beta, t, K, mask_index)
    else:
        raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
