"""The variational bound of a Gaussian diffusion in PyTorch, term by term, in bits per
dimension.

Ho et al. (2020), eq. 5 writes the negative ELBO as

    L = L_T + sum_{t >= 2} L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I))                          (the prior term),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))   (t = 2..T),
    L_0     = -log p_theta(x_0 | x_1)                               (the decoder, sec. 3.3).

Each term here is averaged over the data dimensions and divided by log 2, so that it
reads in bits per dimension, as in Nichol & Dhariwal (2021). The Gaussian KL and the
discretised Gaussian likelihood are the torch twins of `minidiff.process.normal_kl` and
`minidiff.process.discretized_gaussian_log_likelihood` (same formulas, same bin edges);
the tests hold each pair together to round-off.

The functions here take tensors; `VariationalBound` adds the bound's methods
(`prior_bpd`, `vlb_term`, `vlb_terms`) to `GaussianDiffusion`, which derives from it. This
module never imports `minidiff.diffusion.gaussian`: the dependency runs one way.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from minidiff.diffusion._util import call_denoiser, check_data, randn_like
from minidiff.process import Schedule

__all__ = [
    "normal_kl",
    "gaussian_log_prob",
    "discretized_gaussian_log_likelihood",
    "check_on_bins",
    "mean_over_dims",
    "prior_term_bpd",
    "term_bpd",
    "VariationalBound",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def mean_over_dims(x: torch.Tensor) -> torch.Tensor:
    """The mean over every dimension but the first: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def normal_kl(
    mean1: torch.Tensor, log_var1: torch.Tensor, mean2: torch.Tensor, log_var2: torch.Tensor
) -> torch.Tensor:
    """KL( N(mean1, exp(log_var1)) || N(mean2, exp(log_var2)) ), elementwise, in nats:

    0.5 (expm1(d) - d + (mean1 - mean2)^2 exp(-log_var2)),  d = log_var1 - log_var2,

    the form of `minidiff.process.normal_kl` (expm1(d) - d keeps the KL >= 0 for small d).
    """
    delta = log_var1 - log_var2
    return 0.5 * (torch.expm1(delta) - delta + (mean1 - mean2) ** 2 * torch.exp(-log_var2))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_var)), elementwise: -0.5 (log 2 pi + log_var + (x - mean)^2 / var)."""
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def _check_num_bins(num_bins: int) -> int:
    if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    return int(num_bins)


def check_on_bins(x: torch.Tensor, num_bins: int) -> torch.Tensor:
    """The bin index (as a float tensor) of data ``x`` on ``num_bins`` evenly spaced values
    in [-1, 1], after checking that every value lies on a bin centre -1 + 2 i / (num_bins - 1)
    (to 1/100 of a bin width), as `minidiff.process.discretized_gaussian_log_likelihood` does.

    Raises:
        ValueError: if ``x`` leaves [-1, 1] or lies between bin centres.
    """
    last = _check_num_bins(num_bins) - 1
    if not bool(torch.all(x.abs() <= 1.0 + 1e-12)):
        raise ValueError("x must lie in [-1, 1] for the discretised likelihood")
    index = torch.round((x + 1.0) * (last / 2.0))
    if bool(torch.any((x - (-1.0 + index * (2.0 / last))).abs() > 0.01 / last)):
        raise ValueError(f"x must lie on the {num_bins} bin centres -1 + 2 i / {last}")
    return index


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(d)) for d <= 0, accurate near 0 and for large -d (Maechler 2012)."""
    return torch.where(d > -_LOG_2, torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _log_normal_interval_prob(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """log P(lower < Z < upper) for a standard normal Z, lower <= upper (may be +-inf).

    Computed in log space on the side of zero where the interval lies, as
    log Phi(u) + log(1 - Phi(l) / Phi(u)) with Phi's logarithm from `torch.special.log_ndtr`,
    so an interval far in a tail keeps a finite log probability where Phi(u) - Phi(l) itself
    would underflow to 0 (an untrained network's decoder at t = 1 lands there).
    """
    flip = lower > 0  # P(l < Z < u) = P(-u < Z < -l): put the interval left of zero
    low, high = torch.where(flip, -upper, lower), torch.where(flip, -lower, upper)
    log_high = torch.special.log_ndtr(high)
    log_prob = log_high + _log1mexp(torch.special.log_ndtr(low) - log_high)
    return torch.where(low < high, log_prob, -math.inf)  # an empty interval (zero scale)


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, num_bins: int = 256
) -> torch.Tensor:
    """log P(x) of data on ``num_bins`` values in [-1, 1] under N(mean, exp(log_scale)^2)
    discretised to those bins (Ho et al. 2020, sec. 3.3, eq. 13), in nats, elementwise.

    The bins are those of `minidiff.process.discretized_gaussian_log_likelihood`: bin i is
    centred at -1 + 2 i / (num_bins - 1), its edges lie half a spacing either side, and the
    outermost bins extend to -inf and +inf, so the probabilities sum to 1.

    Args:
        x: (B, ...) data on the bin centres (8-bit pixels scaled to [-1, 1]).
        mean: the Gaussian's mean, broadcastable with ``x``.
        log_scale: the log standard deviation (not the variance), broadcastable with ``x``.
        num_bins: the number of data values (256 for 8-bit data).
    """
    index = check_on_bins(x, num_bins)  # checks num_bins too
    last = int(num_bins) - 1
    x, mean, log_scale = torch.broadcast_tensors(x, mean, log_scale)
    index = index.expand_as(x)

    def edge(j: torch.Tensor) -> torch.Tensor:  # the edge between bins j and j + 1
        return -1.0 + (2.0 * j + 1.0) / last

    def standardise(value: torch.Tensor) -> torch.Tensor:  # (value - mean) / scale
        z = (value - mean) * torch.exp(-log_scale)
        return torch.where(value == mean, torch.zeros_like(z), z)  # 0 * inf at scale 0

    inf = torch.full_like(x, math.inf)
    lower = torch.where(index == 0, -inf, standardise(edge(index - 1)))
    upper = torch.where(index == last, inf, standardise(edge(index)))
    return _log_normal_interval_prob(lower, upper)


def prior_term_bpd(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """L_T = KL(N(mean, exp(log_var)) || N(0, I)) in bits per dimension, (B,)
    (Ho et al. 2020, eq. 5), for the mean and log variance (B, ...) of q(x_T | x_0)."""
    zero = torch.zeros_like(mean)
    return mean_over_dims(normal_kl(mean, log_var, zero, zero)) / _LOG_2


def term_bpd(
    true_mean: torch.Tensor,
    true_log_var: torch.Tensor,
    model_mean: torch.Tensor,
    model_log_var: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    num_bins: int | None = 256,
) -> torch.Tensor:
    """The bound's term at step t in bits per dimension, (B,) (Ho et al. 2020, eq. 5):

    - t >= 2: L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)), the KL of
      N(true_mean, exp(true_log_var)) from N(model_mean, exp(model_log_var));
    - t = 1:  L_0 = -log p_theta(x_0 | x_1), the discretised Gaussian decoder on
      ``num_bins`` values (sec. 3.3), or with ``num_bins=None`` the Gaussian density
      N(x_0; model_mean, exp(model_log_var)) itself, for continuous data (then L_0 may be
      negative).

    Args:
        true_mean, true_log_var: (B, C, ...) the posterior q(x_{t-1} | x_t, x_0).
        model_mean, model_log_var: (B, C, ...) the model's p_theta(x_{t-1} | x_t).
        x0: (B, C, ...) the clean data.
        t: (B,) int64 steps in 1..T.
        num_bins: data values for the decoder at t = 1; None for continuous data.
    """
    kl = mean_over_dims(normal_kl(true_mean, true_log_var, model_mean, model_log_var))
    # The decoder is evaluated at the model's mean only where t = 1; elsewhere at x_0 with
    # unit variance, so that an unused infinite log-likelihood cannot turn the gradient of
    # torch.where into NaN.
    first = (t == 1).reshape((-1,) + (1,) * (x0.ndim - 1)).expand_as(x0)  # (B, ...)
    mean = torch.where(first, model_mean, x0)
    log_var = torch.where(first, model_log_var, torch.zeros_like(x0))
    if num_bins is None:
        decoder = gaussian_log_prob(x0, mean, log_var)
    else:
        decoder = discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var, num_bins)
    nll = -mean_over_dims(decoder)
    return torch.where(t == 1, nll, kl) / _LOG_2


class VariationalBound:
    """The variational bound of a Gaussian diffusion (Ho et al. 2020, eq. 5), term by term,
    in bits per dimension: the methods `GaussianDiffusion` inherits.

    They use the diffusion's ``schedule``, ``T``, ``gather``, ``q_sample``,
    ``posterior_mean`` and ``p_mean_variance`` (see `GaussianDiffusion`).
    """

    schedule: Schedule
    T: int
    gather: Callable[[np.ndarray, torch.Tensor, torch.Tensor], torch.Tensor]
    q_sample: Callable[..., torch.Tensor]
    posterior_mean: Callable[..., torch.Tensor]
    p_mean_variance: Callable[..., dict[str, torch.Tensor]]

    # -- the variational bound (Ho et al. 2020, eq. 5) -----------------------------------
    def prior_bpd(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = KL(q(x_T | x_0) || N(0, I)) in bits per dimension, (B,) (Ho et al. 2020,
        eq. 5): q(x_T | x_0) = N(sqrt(alpha_bar_T) x_0, (1 - alpha_bar_T) I) (eq. 4). The term
        has no parameters, and is 0 for a zero-terminal-SNR schedule."""
        x0 = check_data(x0)
        T = torch.full((x0.shape[0],), self.T, dtype=torch.int64, device=x0.device)
        mean = self.gather(self.schedule.sqrt_alpha_bar, T, x0) * x0
        log_var = torch.log(self.gather(self.schedule.one_minus_alpha_bar, T, x0))
        return prior_term_bpd(mean, log_var.expand_as(x0))

    def vlb_term(
        self,
        output: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        *,
        clip_x0: float | None = None,
        num_bins: int | None = 256,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The bound's term at step t in bits per dimension, (B,) (Ho et al. 2020, eq. 5):
        L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) for t >= 2 and the
        decoder L_0 = -log p_theta(x_0 | x_1) at t = 1 (`minidiff.diffusion.term_bpd`).

        Args:
            output: (B, C, ...) the denoiser's output at (x_t, t).
            x0: (B, C, ...) the clean data x_t was drawn from.
            xt: (B, C, ...) the noisy state.
            t: (B,) int64 steps in 1..T.
            clip_x0: passed to `p_mean_variance`.
            num_bins: data values for the decoder at t = 1; None for continuous data.

        Returns:
            the term (B,) and the model's `p_mean_variance` dict.
        """
        model = self.p_mean_variance(output, xt, t, clip_x0=clip_x0)
        true_log_var = self.gather(self.schedule.posterior_log_var_clipped, t, xt).expand_as(xt)
        term = term_bpd(
            self.posterior_mean(x0, xt, t), true_log_var, model["mean"], model["log_var"],
            x0, t, num_bins,
        )  # fmt: skip
        return term, model

    @torch.no_grad()
    def vlb_terms(
        self,
        denoiser: Callable[..., torch.Tensor],
        x0: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        clip_x0: float | None = None,
        num_bins: int | None = 256,
    ) -> dict[str, torch.Tensor]:
        """Every term of the variational bound (Ho et al. 2020, eq. 5), in bits per
        dimension, by a loop over t = T..1 (one denoiser call per step; no gradients).

        At each t a fresh eps is drawn, x_t = q_sample(x_0, t, eps), and L_{t-1} is
        evaluated by `vlb_term` (L_0 with the decoder of ``num_bins`` values).

        Args:
            denoiser: as in `training_losses`.
            x0: (B, C, ...) clean data.
            generator: the random generator for the noise.
            y: conditioning passed on to the denoiser.
            clip_x0: clip x0_hat in p(x_{t-1} | x_t) (see `p_mean_variance`).
            num_bins: as in `training_losses`.

        Returns:
            a dict with ``terms`` (B, T), column t - 1 holding L_{t-1}; ``prior`` (B,), L_T;
            ``total`` (B,), L_T + sum_t L_{t-1}, the bound on -log p(x_0) in bits/dim;
            ``x0_mse`` and ``eps_mse`` (B, T), the mean squared errors of x0_hat and eps_hat.
        """
        x0 = check_data(x0)
        if num_bins is not None:
            check_on_bins(x0, num_bins)  # fail before the loop, not at its end
        columns: dict[str, list[torch.Tensor]] = {"terms": [], "x0_mse": [], "eps_mse": []}
        for step in range(self.T, 0, -1):
            t = torch.full((x0.shape[0],), step, dtype=torch.int64, device=x0.device)
            eps = randn_like(x0, generator)
            xt = self.q_sample(x0, t, eps)
            output = call_denoiser(denoiser, xt, t, y)
            term, model = self.vlb_term(output, x0, xt, t, clip_x0=clip_x0, num_bins=num_bins)
            columns["terms"].append(term)
            columns["x0_mse"].append(mean_over_dims((model["x0"] - x0) ** 2))
            columns["eps_mse"].append(mean_over_dims((model["eps"] - eps) ** 2))
        result = {name: torch.stack(values[::-1], dim=1) for name, values in columns.items()}
        result["prior"] = self.prior_bpd(x0)
        result["total"] = result["terms"].sum(dim=1) + result["prior"]
        return result
