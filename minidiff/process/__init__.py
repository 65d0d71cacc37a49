"""Layer 1: the Gaussian diffusion math in float64 NumPy.

Schedules, the forward marginals q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0),
conversions between eps / x0 / v / score, Gaussian KL and the discretised likelihood,
and DDIM's sigma(eta). Every per-step quantity used anywhere in minidiff is computed here.
"""

from minidiff.process.ddim import ddim_posterior_mean_var, ddim_sigma
from minidiff.process.forward import (
    check_x0_eps,
    log_alpha_bar_ratio,
    q_mean_var,
    q_mean_var_between,
    q_sample,
    q_step_mean_var,
)
from minidiff.process.likelihood import (
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    normal_kl,
    standard_normal_cdf,
)
from minidiff.process.parameterization import (
    eps_from_score,
    eps_from_v,
    eps_from_x0,
    score_from_eps,
    v_from_eps,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from minidiff.process.posterior import posterior_mean_from_eps, posterior_mean_var
from minidiff.process.schedule import (
    Schedule,
    cosine_alpha_bar,
    cosine_schedule,
    linear_schedule,
    rescale_zero_terminal_snr,
    sigmoid_schedule,
)

SCHEDULES = ("linear", "cosine", "sigmoid")


def make_schedule(name: str, T: int = 1000) -> Schedule:
    """A named preset schedule with its paper defaults: one of `SCHEDULES`."""
    if name == "linear":
        return linear_schedule(T)
    elif name == "cosine":
        return cosine_schedule(T)
    elif name == "sigmoid":
        return sigmoid_schedule(T)
    else:
        raise ValueError(f"unknown schedule {name!r}; expected one of {SCHEDULES}")


__all__ = [
    "SCHEDULES",
    "Schedule",
    "cosine_alpha_bar",
    "cosine_schedule",
    "ddim_posterior_mean_var",
    "ddim_sigma",
    "discretized_gaussian_log_likelihood",
    "eps_from_score",
    "eps_from_v",
    "eps_from_x0",
    "gaussian_log_prob",
    "linear_schedule",
    "log_alpha_bar_ratio",
    "make_schedule",
    "normal_kl",
    "posterior_mean_from_eps",
    "posterior_mean_var",
    "q_mean_var",
    "q_mean_var_between",
    "q_sample",
    "check_x0_eps",
    "q_step_mean_var",
    "rescale_zero_terminal_snr",
    "score_from_eps",
    "sigmoid_schedule",
    "standard_normal_cdf",
    "v_from_eps",
    "v_from_x0_eps",
    "x0_from_eps",
    "x0_from_v",
]
