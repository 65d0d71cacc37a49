"""Two-dimensional toy datasets, each at unit scale by construction.

Every dataset is a fixed shape (a curve, a set of points, a region) scaled by constants
computed in closed form from that shape, not from the sample, so that the noise-free law
has mean 0 and a mean square of 1 per coordinate: E[x] = 0 and E[|x|^2] / 2 = 1.
Noise is then added in these output units: isotropic N(0, noise^2 I) for every dataset
but ``pinwheel``, whose noise is the spread across the arms (tangential), so that the
mean square per coordinate becomes 1 + noise^2 (1 + noise^2 / 2 for ``pinwheel``).

- ``swissroll``: the spiral (t cos t, t sin t), t uniform on [1.5 pi, 4.5 pi]
  (as in scikit-learn's ``make_swiss_roll``).
- ``moons``: two interleaving half circles (as in scikit-learn's ``make_moons``).
- ``8gaussians``: 8 Gaussians on a circle, a law known exactly: `eight_gaussians_mixture`.
- ``checkerboard``: uniform on the 8 dark squares of a 4 x 4 board.
- ``pinwheel``: 5 curved arms (Johnson et al. 2016, "Composing graphical models with
  neural networks", sec. 5).
- ``circles``: two concentric circles of radii 1 and 1/2 (as in ``make_circles``).
"""

from __future__ import annotations

import math

import numpy as np

from minidiff.toy.mixture import GaussianMixture

__all__ = ["DATASETS", "DEFAULT_NOISE", "make_dataset", "eight_gaussians_mixture"]

DATASETS = ("swissroll", "moons", "8gaussians", "checkerboard", "pinwheel", "circles")

# The noise of each dataset when ``noise=None``, in output units (see the module docstring).
DEFAULT_NOISE = {
    "swissroll": 0.05,
    "moons": 0.05,
    "8gaussians": 0.1,  # the standard deviation of each Gaussian
    "checkerboard": 0.0,
    "pinwheel": 0.05,  # the tangential standard deviation, across an arm
    "circles": 0.05,
}

# -- swissroll: t uniform on [a, b]; E[t cos t], E[t sin t] and E[t^2] in closed form ----
_ROLL_A, _ROLL_B = 1.5 * math.pi, 4.5 * math.pi
_ROLL_MEAN = np.array(
    [
        (
            _ROLL_B * math.sin(_ROLL_B)
            + math.cos(_ROLL_B)
            - _ROLL_A * math.sin(_ROLL_A)
            - math.cos(_ROLL_A)
        )
        / (_ROLL_B - _ROLL_A),
        (
            math.sin(_ROLL_B)
            - _ROLL_B * math.cos(_ROLL_B)
            - math.sin(_ROLL_A)
            + _ROLL_A * math.cos(_ROLL_A)
        )
        / (_ROLL_B - _ROLL_A),
    ]
)
_ROLL_SQUARE = (_ROLL_B**3 - _ROLL_A**3) / (3.0 * (_ROLL_B - _ROLL_A))  # E[t^2] = E|x|^2
_ROLL_SCALE = math.sqrt((_ROLL_SQUARE - _ROLL_MEAN @ _ROLL_MEAN) / 2.0)

# -- moons: theta uniform on [0, pi]; upper (cos, sin), lower (1 - cos, 1/2 - sin) ----------
_MOONS_MEAN = np.array([0.5, 0.25])
# Var of the x coordinate is 3/4, of the y coordinate 9/16 - 1/pi.
_MOONS_SCALE = math.sqrt((0.75 + 9.0 / 16.0 - 1.0 / math.pi) / 2.0)

# -- 8 gaussians: centres at radius sqrt(2), so E|centre|^2 / 2 = 1 ------------------------
_EIGHT_RADIUS = math.sqrt(2.0)

# -- checkerboard on [-2, 2]^2: each coordinate is uniform on [-2, 2], variance 4/3 -------
_BOARD_SCALE = math.sqrt(4.0 / 3.0)

# -- pinwheel: radius r ~ N(1, 0.3^2), angle 2 pi k / 5 + 0.25 exp(r) ----------------------
_PINWHEEL_ARMS, _PINWHEEL_RADIAL_STD, _PINWHEEL_RATE = 5, 0.3, 0.25
_PINWHEEL_SCALE = math.sqrt((1.0 + _PINWHEEL_RADIAL_STD**2) / 2.0)  # E|x|^2 = 1 + 0.3^2

# -- circles of radii 1 and 1/2: E|x|^2 = (1 + 1/4) / 2 -----------------------------------
_CIRCLES_SCALE = math.sqrt(5.0 / 16.0)


def _eight_centres() -> np.ndarray:
    angles = np.arange(8) * (np.pi / 4.0)
    return _EIGHT_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (8, 2)


def eight_gaussians_mixture(noise: float | None = None) -> GaussianMixture:
    """The exact law of ``make_dataset("8gaussians", ...)``: 8 equally weighted Gaussians
    N(c_k, noise^2 I), c_k = sqrt(2) (cos k pi/4, sin k pi/4), noise defaulting to 0.1.
    """
    noise = DEFAULT_NOISE["8gaussians"] if noise is None else noise
    if not (np.isfinite(noise) and noise > 0):
        raise ValueError(f"noise must be positive for a Gaussian mixture, got {noise!r}")
    return GaussianMixture.isotropic(np.full(8, 1.0 / 8.0), _eight_centres(), noise)


def _rotate(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angles), np.sin(angles)
    return np.stack(
        [cos * points[:, 0] - sin * points[:, 1], sin * points[:, 0] + cos * points[:, 1]], axis=1
    )


def _swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(_ROLL_A, _ROLL_B, size=n)
    return (np.stack([t * np.cos(t), t * np.sin(t)], axis=1) - _ROLL_MEAN) / _ROLL_SCALE


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    theta = rng.uniform(0.0, np.pi, size=n)
    lower = rng.integers(0, 2, size=n).astype(bool)
    upper_moon = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    lower_moon = np.stack([1.0 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)
    return (np.where(lower[:, None], lower_moon, upper_moon) - _MOONS_MEAN) / _MOONS_SCALE


def _eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    return _eight_centres()[rng.integers(0, 8, size=n)]


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.uniform(-2.0, 2.0, size=n)
    column = np.floor(x)  # in {-2, -1, 0, 1}
    # the two rows of that column whose square is dark: column + row even
    row = 2.0 * rng.integers(0, 2, size=n) - 2.0 + np.mod(column, 2.0)
    y = row + rng.uniform(0.0, 1.0, size=n)
    return np.stack([x, y], axis=1) / _BOARD_SCALE


def _pinwheel(n: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    arm = rng.integers(0, _PINWHEEL_ARMS, size=n)
    radius = 1.0 + _PINWHEEL_RADIAL_STD * rng.standard_normal(n)
    across = noise * _PINWHEEL_SCALE * rng.standard_normal(n)
    angles = 2.0 * np.pi * arm / _PINWHEEL_ARMS + _PINWHEEL_RATE * np.exp(radius)
    return _rotate(np.stack([radius, across], axis=1), angles) / _PINWHEEL_SCALE


def _circles(n: int, rng: np.random.Generator) -> np.ndarray:
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    radius = np.where(rng.integers(0, 2, size=n) == 1, 0.5, 1.0)
    return radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1) / _CIRCLES_SCALE


def make_dataset(
    name: str, n: int, rng: np.random.Generator, *, noise: float | None = None
) -> np.ndarray:
    """n points of a 2-D toy dataset, at unit scale (see the module docstring).

    Args:
        name: one of `DATASETS`.
        n: the number of points, >= 1.
        rng: the source of randomness.
        noise: the noise standard deviation in output units, >= 0; ``None`` takes
            ``DEFAULT_NOISE[name]``.

    Returns:
        (n, 2) float64 points.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    noise = DEFAULT_NOISE[name] if noise is None else float(noise)
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    n = int(n)
    if name == "swissroll":
        x = _swissroll(n, rng)
    elif name == "moons":
        x = _moons(n, rng)
    elif name == "8gaussians":
        x = _eight_gaussians(n, rng)
    elif name == "checkerboard":
        x = _checkerboard(n, rng)
    elif name == "pinwheel":
        return _pinwheel(n, rng, noise)  # its noise is part of the shape
    elif name == "circles":
        x = _circles(n, rng)
    else:
        raise AssertionError(name)  # excluded by the check above
    if noise > 0:
        x = x + noise * rng.standard_normal(x.shape)
    return x
