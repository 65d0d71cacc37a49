"""Validation of time indices and gathering of per-step coefficients (public: the toy
layer validates its steps with the same `check_t`).

A time index ``t`` is an int or an integer array of shape (B,); a coefficient table
indexed by it is reshaped to (B, 1, ..., 1) so that it broadcasts over a batch
``x: (B, ...)``.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_t(t, T: int, *, low: int = 1, name: str = "t") -> np.ndarray:
    """Return ``t`` as an int64 array after checking ``low <= t <= T``.

    Raises:
        TypeError: if ``t`` is not an integer or an integer array.
        ValueError: if any entry lies outside ``[low, T]``.
    """
    if isinstance(t, bool) or isinstance(t, np.bool_):
        raise TypeError(f"{name} must be an integer or an integer array, got a bool")
    if isinstance(t, numbers.Integral):
        array = np.asarray(int(t), dtype=np.int64)
    else:
        array = np.asarray(t)
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(
                f"{name} must be an integer or an integer array, got dtype {array.dtype}"
            )
        array = array.astype(np.int64)
    if array.ndim > 1:
        raise ValueError(
            f"{name} must be a scalar or a 1-D array over the batch, got shape {array.shape}"
        )
    bad = (array < low) | (array > T)
    if bad.any():
        value = array.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(
            f"{name} = {int(value)} is out of range: expected {low} <= {name} <= T = {T}"
        )
    return array


def gather(table: np.ndarray, t: np.ndarray, ndim: int) -> np.ndarray:
    """``table[t]`` shaped to broadcast against an array with ``ndim`` dimensions.

    A scalar t gives a scalar; t of shape (B,) gives shape (B, 1, ..., 1).
    """
    return over_batch(np.asarray(table)[t], ndim)


def over_batch(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-sample values (B,) shaped (B, 1, ..., 1) to broadcast against an array with
    ``ndim`` dimensions; a scalar stays a scalar."""
    if np.ndim(values) == 0:
        return values
    values = np.asarray(values)
    if ndim < 1:
        raise ValueError("a batch of time steps needs x with a leading batch dimension")
    return values.reshape(values.shape + (1,) * (ndim - 1))


def as_float64(x) -> np.ndarray:
    """``x`` as a float64 array (a view when it already is one)."""
    return np.asarray(x, dtype=np.float64)


def check_batch(x: np.ndarray, t: np.ndarray, name: str = "x") -> None:
    """Check that a batched t of shape (B,) matches ``x: (B, ...)``."""
    if t.ndim == 1 and (x.ndim == 0 or x.shape[0] != t.shape[0]):
        raise ValueError(
            f"t has shape {t.shape} but {name} has shape {x.shape}: a batch of time steps "
            f"needs {name} with the same leading batch dimension"
        )
