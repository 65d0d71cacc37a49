"""A closeness check whose absolute tolerance may vary element by element.

Some identities are evaluated through terms much larger than their result (a sum of
large log densities, a difference divided by a small scale). Their round-off is
proportional to the size of those terms, so the absolute tolerance is given per element
as (a tolerance constant) x (the size of the terms), computed and explained in the test.
"""

import numpy as np


def assert_close(actual, expected, *, rtol: float, atol) -> None:
    """Assert |actual - expected| <= atol + rtol |expected| elementwise; ``atol`` may be an
    array broadcastable with ``expected``."""
    actual, expected, atol = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (actual, expected, atol))
    )
    error = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    bad = ~(error <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, error - bound, -np.inf)), bad.shape)
        raise AssertionError(
            f"{bad.sum()} of {bad.size} elements differ beyond the tolerance; worst at {i}: "
            f"actual {actual[i]!r}, expected {expected[i]!r}, error {error[i]:.3e} > "
            f"bound {bound[i]:.3e} (atol {atol[i]:.3e}, rtol {rtol:.1e})"
        )
