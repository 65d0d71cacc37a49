"""Input checks shared by the modules of `minidiff.markov`."""

from __future__ import annotations

import numbers

import numpy as np


def check_count(n, name: str, low: int = 0) -> int:
    """``n`` as a Python int after checking that it is an integer >= ``low``."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {n!r}")
    if n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n}")
    return int(n)


def check_positive(value, name: str) -> float:
    """``value`` as a float after checking that it is finite and > 0."""
    value = float(value)
    if not (np.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_rng(rng) -> np.random.Generator:
    """``rng`` after checking that it is a ``numpy.random.Generator``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_beta(beta) -> np.ndarray:
    """Betas in paper indexing, (T + 1,) with ``beta[0] = 0`` and ``0 <= beta[t] <= 1``.

    A Markov chain is well defined at both end points (beta_t = 0 keeps the state,
    beta_t = 1 forgets it), so unlike a diffusion schedule they are allowed here.
    """
    beta = np.asarray(beta, dtype=np.float64)
    if beta.ndim != 1 or beta.shape[0] < 2:
        raise ValueError(
            f"beta must be a 1-D array of length T + 1 >= 2 with beta[0] = 0 "
            f"(paper indexing), got shape {beta.shape}"
        )
    if beta[0] != 0.0:
        raise ValueError(f"beta[0] must be 0 (index 0 is the data), got {float(beta[0])!r}")
    bad = ~((beta >= 0.0) & (beta <= 1.0))  # NaN fails both comparisons
    if bad.any():
        t = int(np.argmax(bad))
        raise ValueError(
            f"beta[{t}] = {float(beta[t])!r} is invalid: every beta[t] must lie in [0, 1]"
        )
    return beta


def check_beta_t(beta_t, name: str = "beta_t") -> float:
    """One step's beta as a float in [0, 1]."""
    value = float(beta_t)
    if not (0.0 <= value <= 1.0):  # NaN fails too
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def check_t(t, T: int) -> int:
    """A step index 0 <= t <= T as a Python int."""
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Integral) or not 0 <= t <= T:
        raise ValueError(f"t must be an integer with 0 <= t <= T = {T}, got {t!r}")
    return int(t)
