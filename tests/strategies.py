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


# -- Markov chains (layer 0) -------------------------------------------------------------
# Positive weights lie in [WEIGHT_MIN, 1], so every positive transition probability of a
# drawn chain is at least WEIGHT_MIN / K: far from round-off, while zeros are exact zeros.
WEIGHT_MIN = 1e-3


def _positive_weights(rng: np.random.Generator, shape) -> np.ndarray:
    return np.exp(rng.uniform(np.log(WEIGHT_MIN), 0.0, size=shape))


@st.composite
def symmetric_weight_matrices(draw, min_K: int = 2, max_K: int = 8, connected: bool = True):
    """Symmetric non-negative weights W: (K, K) with positive row sums.

    The random walk P_ij = W_ij / sum_k W_ik is reversible with respect to
    pi_i proportional to sum_k W_ik. With ``connected=True`` a path 0-1-...-(K-1) of
    positive weights makes it irreducible; otherwise W may split into blocks.
    """
    K = draw(st.integers(min_K, max_K))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([1.0, 0.5, 0.2]))
    upper = np.triu(_positive_weights(rng, (K, K)) * (rng.random((K, K)) < density))
    W = upper + np.triu(upper, 1).T
    if connected:
        path = _positive_weights(rng, K - 1)
        W[np.arange(K - 1), np.arange(1, K)] += path
        W[np.arange(1, K), np.arange(K - 1)] += path
    empty = np.flatnonzero(W.sum(axis=1) == 0.0)
    W[empty, empty] = 1.0  # an isolated state holds still
    return W


@st.composite
def stochastic_matrices(
    draw, min_K: int = 2, max_K: int = 8, reversible: bool = False, irreducible: bool = False
):
    """Row-stochastic matrices P: (K, K), K in [min_K, max_K], of several shapes.

    Families: dense, sparse (exact zeros, so possibly reducible, with transient states or
    several closed classes), lazy ((I + P) / 2, aperiodic) and nearly deterministic (a
    random permutation plus small weights). ``reversible=True`` draws the random walk on
    a symmetric weight matrix instead. ``irreducible=True`` adds a cycle (or, when
    reversible, a path) of positive weights through all states.
    """
    if reversible:
        W = draw(symmetric_weight_matrices(min_K, max_K, connected=irreducible))
        return W / W.sum(axis=1, keepdims=True)
    K = draw(st.integers(min_K, max_K))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    family = draw(st.sampled_from(["dense", "sparse", "lazy", "nearly_deterministic"]))
    W = _positive_weights(rng, (K, K))
    if family == "sparse":
        W *= rng.random((K, K)) < 0.3
    elif family == "nearly_deterministic":
        W = WEIGHT_MIN * (rng.random((K, K)) < 0.5)
        W[np.arange(K), rng.permutation(K)] = 1.0
    if irreducible:
        W[np.arange(K), (np.arange(K) + 1) % K] += _positive_weights(rng, K)
    empty = np.flatnonzero(W.sum(axis=1) == 0.0)
    W[empty, empty] = 1.0
    P = W / W.sum(axis=1, keepdims=True)
    if family == "lazy":
        P = 0.5 * (np.eye(K) + P)
    return P


@st.composite
def probability_vectors(draw, K: int):
    """A law on K states: Dirichlet weights, a point mass, or a law with some zeros."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    family = draw(st.sampled_from(["dirichlet", "point", "sparse"]))
    if family == "point":
        return np.eye(K)[rng.integers(K)]
    p = rng.dirichlet(np.full(K, 0.5))
    if family == "sparse":
        p = p * (rng.random(K) < 0.5)
        p[rng.integers(K)] += 1.0  # never all zero
    return p / p.sum()


@st.composite
def paper_betas(draw, min_T: int = 1, max_T: int = 200, endpoints: bool = True):
    """Betas in paper indexing, (T + 1,) with beta[0] = 0, for Markov chains.

    Drawn from `random_betas`; with ``endpoints=True`` a few steps are set to exactly
    0 (keep the state) or 1 (forget it), which a Markov chain allows.
    """
    betas = draw(random_betas(min_T, max_T))
    if endpoints and draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        chosen = rng.random(betas.shape[0]) < 0.1
        betas = np.where(chosen, rng.integers(0, 2, size=betas.shape[0]).astype(float), betas)
    return np.concatenate([[0.0], betas])


# -- the Gaussian process (layer 1) ------------------------------------------------------
@st.composite
def schedule_and_ordered_steps(
    draw, n: int = 2, low: int = 0, min_T: int = 1, strict: bool = False, **kw
):
    """A schedule and ``n`` steps ``low <= t_1 <= ... <= t_n <= T``; ties are allowed
    unless ``strict`` (then ``t_1 < ... < t_n``)."""
    min_T = max(min_T, low, low + n - 1 if strict else 0)
    schedule = draw(schedules(min_T, MAX_T, **kw))
    steps = st.lists(st.integers(low, schedule.T), min_size=n, max_size=n, unique=strict)
    return (schedule, *sorted(draw(steps)))


@st.composite
def schedule_and_batched_t(draw, low: int = 1, max_batch: int = 5, **kw):
    """A schedule and a batch of steps t: (B,) integers in [low, T], B in 1..max_batch."""
    schedule = draw(schedules(max(1, low), MAX_T, **kw))
    batch = draw(st.integers(1, max_batch))
    t = draw(st.lists(st.integers(low, schedule.T), min_size=batch, max_size=batch))
    return schedule, np.array(t, dtype=np.int64)


@st.composite
def gaussian_mixtures(draw, min_K: int = 1, max_K: int = 4, min_D: int = 1, max_D: int = 3):
    """A random `GaussianMixture`: K in [min_K, max_K] components in D in [min_D, max_D]
    dimensions, weights at least 0.1 / K apart from renormalisation, means in [-2, 2]^D
    and covariances Q diag(lambda) Q^T with a random rotation Q and eigenvalues
    log-uniform in [0.1^2, 1] (standard deviations from 0.1 to 1, condition number <= 100).
    """
    from minidiff.toy.mixture import GaussianMixture

    K = draw(st.integers(min_K, max_K))
    D = draw(st.integers(min_D, max_D))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = 0.1 / K + rng.dirichlet(np.ones(K))
    means = rng.uniform(-2.0, 2.0, size=(K, D))
    rotations, _ = np.linalg.qr(rng.standard_normal((K, D, D)))  # (K, D, D) orthogonal
    eigenvalues = np.exp(rng.uniform(np.log(0.01), 0.0, size=(K, D)))
    covs = np.einsum("kij,kj,klj->kil", rotations, eigenvalues, rotations)
    return GaussianMixture(weights / weights.sum(), means, 0.5 * (covs + covs.transpose(0, 2, 1)))
