"""Layer 0: Markov chains, in NumPy float64.

- `minidiff.markov.finite`: finite-state chains: transition matrices, n-step kernels,
  stationary laws, detailed balance, total-variation distance, simulation.
- `minidiff.markov.corruption`: the uniform and absorbing corruption chains of discrete
  diffusion (Austin et al. 2021) and their closed-form cumulative kernels.
- `minidiff.markov.gaussian`: the Gaussian chain x_t = sqrt(1 - beta_t) x_{t-1} +
  sqrt(beta_t) eps, the forward process of a Gaussian diffusion, and its marginals.
- `minidiff.markov.langevin`: unadjusted Langevin, MALA and annealed Langevin dynamics
  (Song & Ermon 2019) for a target known through its score.

Per-step arrays use paper indexing: ``beta`` has length T + 1 and ``beta[0] = 0``.
"""

from minidiff.markov.corruption import (
    CORRUPTIONS,
    Corruption,
    absorbing_cumulative_matrix,
    absorbing_step_matrix,
    cumulative_matrix,
    step_matrix,
    uniform_cumulative_matrix,
    uniform_step_matrix,
)
from minidiff.markov.finite import (
    ROW_SUM_ATOL,
    closed_classes,
    detailed_balance_residual,
    is_reversible,
    law_after,
    n_step_kernel,
    sample_path,
    stationary_distribution,
    tv_distance,
    validate_distribution,
    validate_transition_matrix,
)
from minidiff.markov.gaussian import (
    gaussian_chain_marginals,
    gaussian_chain_step,
    gaussian_chain_step_mean_var,
    sample_gaussian_chain,
)
from minidiff.markov.langevin import (
    annealed_langevin,
    annealed_step_sizes,
    langevin_step,
    mala,
    unadjusted_langevin,
)

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "ROW_SUM_ATOL",
    "absorbing_cumulative_matrix",
    "absorbing_step_matrix",
    "annealed_langevin",
    "annealed_step_sizes",
    "closed_classes",
    "cumulative_matrix",
    "detailed_balance_residual",
    "gaussian_chain_marginals",
    "gaussian_chain_step",
    "gaussian_chain_step_mean_var",
    "is_reversible",
    "langevin_step",
    "law_after",
    "mala",
    "n_step_kernel",
    "sample_gaussian_chain",
    "sample_path",
    "stationary_distribution",
    "step_matrix",
    "tv_distance",
    "unadjusted_langevin",
    "uniform_cumulative_matrix",
    "uniform_step_matrix",
    "validate_distribution",
    "validate_transition_matrix",
]
