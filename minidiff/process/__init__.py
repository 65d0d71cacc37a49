"""Layer 1: the Gaussian diffusion math in float64 NumPy.

Schedules, the forward marginals q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0) and the
fixed reverse variances, conversions between eps / x0 / v / score, Gaussian KL and the
discretised likelihood, DDIM's sigma(eta), its update's factors, the named grids of steps
of every sampler, and the per-jump factors of the ODE and SDE solvers.
Every per-step quantity used anywhere in minidiff is computed here.
"""

from minidiff.process.ddim import (
    DdimCoefficients,
    ddim_coefficients,
    ddim_direction,
    ddim_posterior_mean_var,
    ddim_sigma,
)
from minidiff.process.forward import (
    check_x0_eps,
    log_alpha_bar_ratio,
    q_mean_var,
    q_mean_var_between,
    q_sample,
    q_step_mean_var,
)
from minidiff.process.grid import (
    DEFAULT_SPACING,
    INDEX_SPACINGS,
    SPACINGS,
    IndexSpacing,
    Spacing,
    ddim_timesteps,
    karras_timesteps,
    logsnr_timesteps,
    quadratic_timesteps,
    sampling_timesteps,
    trailing_timesteps,
    uniform_timesteps,
)
from minidiff.process.likelihood import (
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    normal_kl,
    standard_normal_cdf,
)
from minidiff.process.named import SCHEDULES, ScheduleName, make_schedule, toy_schedule
from minidiff.process.parameterization import (
    PARAMETERIZATIONS,
    Parameterization,
    eps_from_score,
    eps_from_v,
    eps_from_x0,
    score_from_eps,
    v_from_eps,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from minidiff.process.posterior import (
    FIXED_VARIANCES,
    FixedVariance,
    posterior_mean_from_eps,
    posterior_mean_var,
    reverse_variance,
)
from minidiff.process.schedule import (
    Schedule,
    cosine_alpha_bar,
    cosine_schedule,
    linear_schedule,
    rescale_zero_terminal_snr,
    sigmoid_schedule,
)
from minidiff.process.solvers import (
    DpmSolver3mCoefficients,
    DpmSolverCoefficients,
    ddim_inversion_coefficients,
    dpm_solver_pp_2m_coefficients,
    dpm_solver_pp_3m_coefficients,
    ode_sigma,
    sde_step_variance,
)

__all__ = [
    "DEFAULT_SPACING",
    "FIXED_VARIANCES",
    "INDEX_SPACINGS",
    "PARAMETERIZATIONS",
    "SCHEDULES",
    "SPACINGS",
    "DdimCoefficients",
    "DpmSolver3mCoefficients",
    "DpmSolverCoefficients",
    "FixedVariance",
    "IndexSpacing",
    "Parameterization",
    "Schedule",
    "ScheduleName",
    "Spacing",
    "cosine_alpha_bar",
    "cosine_schedule",
    "ddim_coefficients",
    "ddim_direction",
    "ddim_inversion_coefficients",
    "ddim_posterior_mean_var",
    "ddim_sigma",
    "ddim_timesteps",
    "discretized_gaussian_log_likelihood",
    "dpm_solver_pp_2m_coefficients",
    "dpm_solver_pp_3m_coefficients",
    "eps_from_score",
    "eps_from_v",
    "eps_from_x0",
    "gaussian_log_prob",
    "karras_timesteps",
    "linear_schedule",
    "log_alpha_bar_ratio",
    "logsnr_timesteps",
    "make_schedule",
    "normal_kl",
    "ode_sigma",
    "posterior_mean_from_eps",
    "posterior_mean_var",
    "q_mean_var",
    "quadratic_timesteps",
    "q_mean_var_between",
    "q_sample",
    "check_x0_eps",
    "q_step_mean_var",
    "rescale_zero_terminal_snr",
    "sampling_timesteps",
    "reverse_variance",
    "score_from_eps",
    "sde_step_variance",
    "sigmoid_schedule",
    "standard_normal_cdf",
    "toy_schedule",
    "trailing_timesteps",
    "uniform_timesteps",
    "v_from_eps",
    "v_from_x0_eps",
    "x0_from_eps",
    "x0_from_v",
]
