"""Finite-state Markov chains: transition matrices, n-step kernels, stationary laws.

A chain on the states {0, ..., K-1} is a row-stochastic matrix P: (K, K) with
``P[i, j] = Pr(x_{n+1} = j | x_n = i)``. Laws are row vectors p: (K,) (or a batch
(B, K)), and one step maps p to p P. The facts used here are textbook material
(e.g. Levin, Peres & Wilmer, "Markov Chains and Mixing Times", ch. 1 and 4):

- the n-step kernel is the matrix power P^n (Chapman-Kolmogorov);
- a stationary law pi = pi P exists, and it is unique exactly when the chain has a single
  closed communicating class; it puts no mass on transient states;
- detailed balance pi_i P_ij = pi_j P_ji makes pi stationary and the chain reversible;
- the total-variation distance to a stationary law never increases along the chain.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidiff.markov._checks import check_count, check_rng

__all__ = [
    "ROW_SUM_ATOL",
    "validate_transition_matrix",
    "validate_distribution",
    "n_step_kernel",
    "law_after",
    "closed_classes",
    "stationary_distribution",
    "tv_distance",
    "detailed_balance_residual",
    "is_reversible",
    "sample_path",
]

# Rows of a transition matrix (and probability vectors) must sum to 1 within this
# tolerance: loose enough for products of many float64 matrices, tight enough to catch
# a forgotten normalisation.
ROW_SUM_ATOL = 1e-9


def validate_transition_matrix(
    P: ArrayLike, atol: float = ROW_SUM_ATOL, name: str = "P"
) -> np.ndarray:
    """Check that ``P`` is a row-stochastic matrix and return it as float64.

    Args:
        P: (K, K) transition matrix, ``P[i, j] = Pr(x_{n+1} = j | x_n = i)``.
        atol: how far a row sum may be from 1.
        name: the argument name used in error messages.

    Returns:
        P: (K, K) float64 (a copy only when a conversion was needed).

    Raises:
        ValueError: if ``P`` is not square, is empty, has a non-finite or negative entry
            (the message names the entry) or a row that does not sum to 1 (the message
            names the row and its sum).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty square (K, K) matrix, got shape {P.shape}")
    bad = ~np.isfinite(P) | (P < 0.0)
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), P.shape)
        raise ValueError(
            f"{name}[{i}, {j}] = {float(P[i, j])!r} is invalid: transition probabilities must be "
            f"finite and non-negative (row {i})"
        )
    row_sums = P.sum(axis=1)
    off = np.abs(row_sums - 1.0) > atol
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"row {i} of {name} sums to {float(row_sums[i])!r}, expected 1 (within {atol:g}): "
            f"each row is the law of the next state"
        )
    return P


def validate_distribution(
    p: ArrayLike, K: int | None = None, atol: float = ROW_SUM_ATOL, name: str = "p"
) -> np.ndarray:
    """Check that ``p`` is a probability vector (or a batch of them) and return it as float64.

    Args:
        p: (K,) or (B, K) laws on {0, ..., K-1}.
        K: the expected number of states, or None to accept any.
        atol: how far a sum may be from 1.
        name: the argument name used in error messages.

    Raises:
        ValueError: on a wrong shape, a non-finite or negative entry, or a sum away from 1.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] < 1:
        raise ValueError(
            f"{name} must be a probability vector (K,) or a batch (B, K), got shape {p.shape}"
        )
    if K is not None and p.shape[-1] != K:
        raise ValueError(f"{name} has {p.shape[-1]} states but the chain has K = {K}")
    bad = ~np.isfinite(p) | (p < 0.0)
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), p.shape)
        raise ValueError(
            f"{name}{[int(k) for k in index]} = {float(p[index])!r} is invalid: "
            f"probabilities must be finite and >= 0"
        )
    sums = p.sum(axis=-1)
    off = np.abs(sums - 1.0) > atol
    if off.any():
        where = f"row {int(np.argmax(off))} of " if p.ndim == 2 else ""
        raise ValueError(
            f"{where}{name} sums to {float(np.reshape(sums, -1)[np.argmax(off)])!r}, expected 1"
        )
    return p


def n_step_kernel(P: ArrayLike, n: int) -> np.ndarray:
    """The n-step transition matrix P^n (Chapman-Kolmogorov: P^{m+n} = P^m P^n).

    ``n_step_kernel(P, n)[i, j] = Pr(x_n = j | x_0 = i)``; P^0 is the identity. Computed by
    repeated squaring, so it costs O(K^3 log n).

    Args:
        P: (K, K) transition matrix.
        n: number of steps, >= 0.

    Returns:
        (K, K) the matrix P^n.
    """
    P = validate_transition_matrix(P)
    n = check_count(n, "n")
    ### BEGIN SOLUTION
    return np.linalg.matrix_power(P, n)
    ### END SOLUTION


def law_after(p0: ArrayLike, P: ArrayLike, n: int) -> np.ndarray:
    """The law of x_n when x_0 ~ p0: the row vector p_n = p0 P^n.

    Args:
        p0: (K,) or (B, K) initial law(s).
        P: (K, K) transition matrix.
        n: number of steps, >= 0.

    Returns:
        p_n shaped like ``p0``.
    """
    P = validate_transition_matrix(P)
    p0 = validate_distribution(p0, P.shape[0], name="p0")
    return p0 @ n_step_kernel(P, n)


def _reachability(P: np.ndarray) -> np.ndarray:
    """(K, K) bool: ``R[i, j]`` is True when j can be reached from i in >= 0 steps."""
    K = P.shape[0]
    reach = (P > 0.0) | np.eye(K, dtype=bool)
    # Square the "within 2^k steps" relation until it stops growing: at most log2(K) rounds.
    while True:
        step = reach.astype(np.float64)
        grown = (step @ step) > 0.0
        if np.array_equal(grown, reach):
            return reach
        reach = grown


def closed_classes(P: ArrayLike) -> list[np.ndarray]:
    """The closed communicating classes of the chain, each as a sorted array of states.

    States i and j communicate when each can be reached from the other; a class is
    closed when no state outside it can be reached from it. Decided from the pattern of
    positive entries only, so the answer is exact (no rank tolerance).

    Args:
        P: (K, K) transition matrix.

    Returns:
        the closed classes, ordered by their smallest state.
    """
    P = validate_transition_matrix(P)
    reach = _reachability(P)
    communicate = reach & reach.T
    classes, seen = [], np.zeros(P.shape[0], dtype=bool)
    for i in range(P.shape[0]):
        if seen[i]:
            continue
        members = np.flatnonzero(communicate[i])
        seen[members] = True
        # closed: everything reachable from i already communicates with i
        if np.array_equal(np.flatnonzero(reach[i]), members):
            classes.append(members)
    return classes


def stationary_distribution(P: ArrayLike) -> np.ndarray:
    """The unique stationary law pi = pi P, sum(pi) = 1.

    The law is unique exactly when the chain has one closed communicating class C (every
    finite chain has at least one); pi is zero off C. On C the chain is irreducible, and
    pi_C solves (P_CC - I)^T pi_C = 0 with one equation replaced by sum(pi_C) = 1, a
    non-singular system (the rows of (P_CC - I)^T are dependent only through the all-ones
    combination, and the all-ones row is not orthogonal to pi_C).

    Args:
        P: (K, K) transition matrix.

    Returns:
        pi: (K,) the stationary law.

    Raises:
        ValueError: if the chain has several closed classes (then every mixture of their
            stationary laws is stationary).
    """
    P = validate_transition_matrix(P)
    classes = closed_classes(P)
    if len(classes) != 1:
        listed = ", ".join(str(c.tolist()) for c in classes)
        raise ValueError(
            f"P has {len(classes)} closed communicating classes ({listed}): its stationary "
            f"law is not unique"
        )
    ### BEGIN SOLUTION
    C = classes[0]
    A = (P[np.ix_(C, C)] - np.eye(C.size)).T
    A[-1] = 1.0
    b = np.zeros(C.size)
    b[-1] = 1.0
    pi = np.zeros(P.shape[0])
    pi[C] = np.clip(np.linalg.solve(A, b), 0.0, None)  # clip round-off below 0
    return pi / pi.sum()
    ### END SOLUTION


def tv_distance(p: ArrayLike, q: ArrayLike) -> np.ndarray | float:
    """Total-variation distance ||p - q||_TV = (1/2) sum_i |p_i - q_i|, in [0, 1].

    Args:
        p: (K,) or (B, K) laws.
        q: laws broadcastable against ``p``.

    Returns:
        a float for (K,) inputs, else (B,).
    """
    p = validate_distribution(p, name="p")
    q = validate_distribution(q, p.shape[-1], name="q")
    distance = 0.5 * np.abs(p - q).sum(axis=-1)
    return float(distance) if np.ndim(distance) == 0 else distance


def detailed_balance_residual(P: ArrayLike, pi: ArrayLike | None = None) -> np.ndarray:
    """The net probability flow F_ij = pi_i P_ij - pi_j P_ji between each pair of states.

    F is antisymmetric; detailed balance (reversibility) is F = 0.

    Args:
        P: (K, K) transition matrix.
        pi: (K,) a law; by default the unique stationary law of ``P``.

    Returns:
        F: (K, K).
    """
    P = validate_transition_matrix(P)
    pi = (
        stationary_distribution(P)
        if pi is None
        else validate_distribution(pi, P.shape[0], name="pi")
    )
    if pi.ndim != 1:
        raise ValueError(f"pi must be one law (K,), got shape {pi.shape}")
    flow = pi[:, None] * P
    return flow - flow.T


def is_reversible(P: ArrayLike, pi: ArrayLike | None = None, atol: float = 1e-12) -> bool:
    """Whether detailed balance pi_i P_ij = pi_j P_ji holds for all i, j (within ``atol``).

    Summing detailed balance over i gives (pi P)_j = pi_j, so a law in detailed balance
    is stationary; the chain run from pi then looks the same forwards and backwards.

    Args:
        P: (K, K) transition matrix.
        pi: (K,) the law to test; by default the unique stationary law.
        atol: absolute tolerance on each |F_ij|.
    """
    return bool(np.all(np.abs(detailed_balance_residual(P, pi)) <= atol))


def _next_states(cumulative: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One step of every chain by inverse-CDF sampling of the rows ``cumulative[x]``."""
    u = rng.random(x.shape)
    return np.sum(u[:, None] >= cumulative[x], axis=1)


def sample_path(
    P: ArrayLike,
    start: int | ArrayLike,
    n_steps: int,
    rng: np.random.Generator,
    n_chains: int | None = None,
) -> np.ndarray:
    """Simulate x_0, x_1, ..., x_{n_steps} of the chain, for one or many chains at once.

    Args:
        P: (K, K) transition matrix.
        start: where the chains start: an int state, an integer array (B,) of states (one
            chain each), or a float probability vector p0: (K,) from which x_0 is drawn.
        n_steps: number of transitions, >= 0.
        rng: the random generator.
        n_chains: with a law ``start``, the number B of chains to draw (None: one chain).

    Returns:
        path: int64, (n_steps + 1,) for one chain or (n_steps + 1, B) for B chains;
        ``path[n]`` is x_n (index 0 is the start).
    """
    P = validate_transition_matrix(P)
    K = P.shape[0]
    n_steps = check_count(n_steps, "n_steps")
    rng = check_rng(rng)
    start_array = np.asarray(start)
    if np.issubdtype(start_array.dtype, np.floating):
        p0 = validate_distribution(start_array, K, name="start")
        if p0.ndim != 1:
            raise ValueError(f"a law start must be one vector (K,), got shape {p0.shape}")
        size = 1 if n_chains is None else check_count(n_chains, "n_chains")
        x = rng.choice(K, size=size, p=p0)
        single = n_chains is None
    elif np.issubdtype(start_array.dtype, np.integer) and start_array.ndim <= 1:
        if n_chains is not None:
            raise ValueError(
                "n_chains is only used when start is a law; pass B start states instead"
            )
        if np.any((start_array < 0) | (start_array >= K)):
            raise ValueError(f"start states must lie in 0..{K - 1}, got {start_array.tolist()}")
        single = start_array.ndim == 0
        x = start_array.reshape(-1).astype(np.int64)
    else:
        raise ValueError(
            f"start must be an int state, an integer array (B,) or a float law (K,), "
            f"got dtype {start_array.dtype} and shape {start_array.shape}"
        )
    # Inverse-CDF tables, exactly 1 from each row's last positive entry on, so that round-off
    # in the cumulative sums can never select a state of probability 0.
    cumulative = np.cumsum(P, axis=1)
    last_positive = K - 1 - np.argmax(P[:, ::-1] > 0.0, axis=1)
    cumulative[np.arange(K)[None, :] >= last_positive[:, None]] = 1.0
    path = np.empty((n_steps + 1, x.size), dtype=np.int64)
    path[0] = x
    for n in range(1, n_steps + 1):
        path[n] = _next_states(cumulative, path[n - 1], rng)
    return path[:, 0] if single else path
