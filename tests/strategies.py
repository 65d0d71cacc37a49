"""Shared hypothesis strategies: valid schedules, time steps, data arrays.

``schedules()`` draws arbitrary valid schedules: any T from 1 to 1000 with betas in
(0, 1) drawn in a few shapes (independent uniform, log-uniform, monotone), plus the
named presets at random T. Every property test over schedules uses it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidiff.process import (
    Schedule,
    cosine_schedule,
    linear_schedule,
    rescale_zero_terminal_snr,
    sigmoid_schedule,
)

MAX_T = 1000

# Betas in (0, 1), kept away from the ends by a margin that float64 can still resolve
# in 1 - beta and in products over 1000 steps.
BETA_MIN = 1e-6
BETA_MAX = 0.999


@st.composite
def random_betas(draw, min_T: int = 1, max_T: int = MAX_T) -> np.ndarray:
    """betas (length T) from one of several families, any T in [min_T, max_T]."""
    T = draw(st.integers(min_T, max_T))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    family = draw(st.sampled_from(["uniform", "log_uniform", "monotone", "tiny_then_large"]))
    if family == "uniform":
        betas = rng.uniform(BETA_MIN, BETA_MAX, size=T)
    elif family == "log_uniform":
        betas = np.exp(rng.uniform(np.log(BETA_MIN), np.log(BETA_MAX), size=T))
    elif family == "monotone":
        betas = np.sort(np.exp(rng.uniform(np.log(BETA_MIN), np.log(0.5), size=T)))
    elif family == "tiny_then_large":
        betas = np.where(np.arange(T) < T // 2, BETA_MIN * 10, 0.5)
    else:
        raise AssertionError(family)
    return np.clip(betas, BETA_MIN, BETA_MAX)


@st.composite
def preset_schedules(draw, min_T: int = 1, max_T: int = MAX_T) -> Schedule:
    """A named preset (linear, cosine, sigmoid, zero-terminal-SNR linear) at random T."""
    T = draw(st.integers(max(min_T, 1), max_T))
    kind = draw(st.sampled_from(["linear", "cosine", "sigmoid", "zero_snr"]))
    if kind == "linear":
        return linear_schedule(T)
    if kind == "cosine":
        return cosine_schedule(T)
    if kind == "sigmoid":
        return sigmoid_schedule(T)
    if T < 2:
        return linear_schedule(T)
    return rescale_zero_terminal_snr(linear_schedule(T))


def schedules(min_T: int = 1, max_T: int = MAX_T, zero_terminal_snr: bool = False):
    """Arbitrary valid schedules: random betas or a preset.

    Zero-terminal-SNR schedules (alpha_bar_T = 0) break identities that divide by
    alpha_bar_T, so they are only drawn when ``zero_terminal_snr=True``.
    """
    randoms = random_betas(min_T, max_T).map(Schedule.from_betas)
    presets = preset_schedules(min_T, max_T)
    if not zero_terminal_snr:
        presets = presets.filter(lambda s: s.alpha_bar[-1] > 0)
    return st.one_of(randoms, presets)


@st.composite
def schedule_and_t(draw, low: int = 1, min_T: int = 1, max_T: int = MAX_T, **kw):
    """A schedule and a step t in [low, T]."""
    schedule = draw(schedules(max(min_T, low), max_T, **kw))
    t = draw(st.integers(low, schedule.T))
    return schedule, t


def arrays(shape=(8, 3), scale: float = 3.0):
    """Float64 arrays of finite values in [-scale, scale]."""
    return hnp.arrays(
        np.float64,
        shape,
        elements=st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
    )


@st.composite
def rngs(draw) -> np.random.Generator:
    """A NumPy generator from a drawn seed (so failures replay)."""
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
