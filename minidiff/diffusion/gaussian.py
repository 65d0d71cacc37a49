"""`GaussianDiffusion`: the Gaussian diffusion of Ho et al. (2020) in PyTorch.

The schedule's tables come from `minidiff.process` (float64 NumPy) and are gathered here,
cast once per device and dtype; no formula is re-derived in this layer. A network knows
nothing of schedules: it is a denoiser ``denoiser(xt, t) -> output`` whose output is in
this diffusion's parameterization (Ho et al. 2020: eps; Salimans & Ho 2022: v), with twice
the channels when the variance is learned (Nichol & Dhariwal 2021, sec. 3.1).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

from minidiff.process import Schedule

__all__ = [
    "PARAMETERIZATIONS",
    "VARIANCES",
    "LOSSES",
    "Parameterization",
    "Variance",
    "Loss",
    "GaussianDiffusion",
]

Parameterization = Literal["eps", "x0", "v"]
Variance = Literal["fixed_small", "fixed_large", "learned_range"]
Loss = Literal["simple", "vlb", "hybrid"]
PARAMETERIZATIONS: tuple[str, ...] = get_args(Parameterization)
VARIANCES: tuple[str, ...] = get_args(Variance)
LOSSES: tuple[str, ...] = get_args(Loss)


def _check_option(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
    return value


class GaussianDiffusion:
    """A Gaussian diffusion: a schedule plus the choices of what the network predicts,
    which reverse variance is used and which loss trains it.

    Args:
        schedule: the noise schedule (`minidiff.process.Schedule`).
        parameterization: what the denoiser predicts: ``"eps"`` (Ho et al. 2020, eq. 11),
            ``"x0"``, or ``"v"`` = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans &
            Ho 2022).
        variance: the reverse variance Sigma_theta(x_t, t): ``"fixed_small"`` = the
            posterior variance beta_tilde_t, ``"fixed_large"`` = beta_t (Ho et al. 2020,
            sec. 3.2), or ``"learned_range"``, an interpolation in the log domain between
            the two, output by the network (Nichol & Dhariwal 2021, eq. 15).
        loss: ``"simple"`` (Ho et al. 2020, eq. 14), ``"vlb"`` (the variational bound,
            eq. 5) or ``"hybrid"`` = simple + lambda * vlb with lambda = 0.001 and a
            stop-gradient on the mean in the vlb term (Nichol & Dhariwal 2021, sec. 3.1).
    """

    def __init__(
        self,
        schedule: Schedule,
        parameterization: Parameterization = "eps",
        variance: Variance = "fixed_small",
        loss: Loss = "simple",
    ) -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(
                f"schedule must be a minidiff.process.Schedule, got {type(schedule).__name__}"
            )
        self.schedule = schedule
        self.parameterization = _check_option(
            parameterization, "parameterization", PARAMETERIZATIONS
        )
        self.variance = _check_option(variance, "variance", VARIANCES)
        self.loss = _check_option(loss, "loss", LOSSES)
        self._tables: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}

    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return self.schedule.T

    @property
    def learns_variance(self) -> bool:
        """Whether the denoiser's output carries the variance (twice the channels)."""
        return self.variance == "learned_range"

    def __repr__(self) -> str:
        return (
            f"GaussianDiffusion({self.schedule!r}, parameterization={self.parameterization!r}, "
            f"variance={self.variance!r}, loss={self.loss!r})"
        )

    # -- tables ---------------------------------------------------------------------
    def table(self, name: str, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """The schedule's per-step table ``name`` (an attribute of `Schedule`, e.g.
        ``"alpha_bar"``), as a (T + 1,) tensor on ``device`` in ``dtype``, cached."""
        key = (name, torch.device(device), dtype)
        if key not in self._tables:
            values = np.asarray(getattr(self.schedule, name), dtype=np.float64)
            self._tables[key] = torch.from_numpy(values.copy()).to(device=device, dtype=dtype)
        return self._tables[key]

    def gather(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table(name)[t]`` shaped (B, 1, ..., 1) to broadcast against ``like`` (B, ...)."""
        values = self.table(name, like.device, like.dtype)[t]
        return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))

    def check_t(
        self, t: torch.Tensor | int, batch: int, device: torch.device, low: int = 1
    ) -> torch.Tensor:
        """``t`` as a (B,) int64 tensor on ``device``, checked to lie in ``[low, T]``."""
        t = torch.as_tensor(t, device=device)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise TypeError(f"t must be an integer tensor, got dtype {t.dtype}")
        t = t.to(torch.int64)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or have shape ({batch},), got {tuple(t.shape)}")
        if batch and (int(t.min()) < low or int(t.max()) > self.T):
            raise ValueError(
                f"t must lie in [{low}, T = {self.T}], "
                f"got values in [{int(t.min())}, {int(t.max())}]"
            )
        return t

    # -- the forward process ----------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4).

        Args:
            x0: (B, ...) clean data.
            t: (B,) integer steps in 0..T.
            eps: (B, ...) standard normal noise.
        """
        t = self.check_t(t, x0.shape[0], x0.device, low=0)
        return (
            self.gather("sqrt_alpha_bar", t, x0) * x0
            + self.gather("sqrt_one_minus_alpha_bar", t, x0) * eps
        )

    def target(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """What the denoiser should output for (x0, eps): eps, x0 or v."""
        if self.parameterization == "eps":
            return eps
        elif self.parameterization == "x0":
            return x0
        elif self.parameterization == "v":
            t = self.check_t(t, x0.shape[0], x0.device, low=0)
            return (
                self.gather("sqrt_alpha_bar", t, x0) * eps
                - self.gather("sqrt_one_minus_alpha_bar", t, x0) * x0
            )
        else:
            raise AssertionError(self.parameterization)

    # -- from a prediction to x0 and eps --------------------------------------------------
    def split_output(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Split a denoiser output into (prediction, variance values in [-1, 1] or None)."""
        if not self.learns_variance:
            return output, None
        if output.shape[1] % 2:
            raise ValueError(
                f"a learned variance needs an even channel count, got {output.shape[1]}"
            )
        prediction, v = output.chunk(2, dim=1)
        return prediction, v

    def x0_eps_from_prediction(
        self, prediction: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) from the denoiser's prediction in this parameterization.

        eps:  x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)   (Ho et al. 2020, eq. 15)
        x0:   eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)
        v:    x0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v,
              eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v     (Salimans & Ho 2022)
        """
        signal = self.gather("sqrt_alpha_bar", t, xt)
        noise = self.gather("sqrt_one_minus_alpha_bar", t, xt)
        if self.parameterization == "eps":
            return (xt - noise * prediction) / signal, prediction
        elif self.parameterization == "x0":
            return prediction, (xt - signal * prediction) / noise
        elif self.parameterization == "v":
            return signal * xt - noise * prediction, noise * xt + signal * prediction
        else:
            raise AssertionError(self.parameterization)

    # -- the reverse process p(x_{t-1} | x_t) ---------------------------------------------
    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7), coefficients from the schedule."""
        return (
            self.gather("posterior_mean_coef_x0", t, xt) * x0
            + self.gather("posterior_mean_coef_xt", t, xt) * xt
        )

    def log_variance(
        self, t: torch.Tensor, like: torch.Tensor, v: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log Sigma_theta(x_t, t), shaped like ``like`` (B, ...).

        fixed_small: log beta_tilde_t (clipped at t = 1, see
        `Schedule.posterior_log_var_clipped`); fixed_large: log beta_t, with beta_tilde_2 at
        t = 1 as in Ho et al.'s code; learned_range: frac log beta_t + (1 - frac) log beta_tilde_t
        with frac = (v + 1) / 2 (Nichol & Dhariwal 2021, eq. 15).
        """
        log_small = self.gather("posterior_log_var_clipped", t, like)
        log_large = self._log_beta_large(t, like)
        if self.variance == "fixed_small":
            return log_small.expand_as(like)
        elif self.variance == "fixed_large":
            return log_large.expand_as(like)
        elif self.variance == "learned_range":
            if v is None:
                raise ValueError("learned_range needs the variance half of the denoiser output")
            frac = (v + 1) / 2
            return frac * log_large + (1 - frac) * log_small
        else:
            raise AssertionError(self.variance)

    def _log_beta_large(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        beta = self.table("beta", like.device, like.dtype)
        posterior = self.table("posterior_var", like.device, like.dtype)
        # t = 1 uses beta_tilde_2 (Ho et al.'s released code) so that the log stays the
        # variance of a well-defined step; T = 1 falls back to beta_1.
        first = posterior[2] if self.T >= 2 else beta[1]
        large = torch.cat([first.reshape(1), first.reshape(1), beta[2:]])
        values = torch.log(large)[t]
        return values.reshape(values.shape + (1,) * (like.ndim - 1))

    def p_mean_variance(
        self,
        output: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor | int,
        clip_x0: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """The reverse step p_theta(x_{t-1} | x_t) = N(mean, exp(log_var)) from a denoiser
        output: x0_hat from the prediction, optionally clipped to [-clip_x0, clip_x0], then
        mean = mu_tilde_t(x_t, x0_hat) (Ho et al. 2020, eqs. 7 and 15).

        Args:
            output: (B, C, ...) the denoiser's output at (x_t, t) ((B, 2C, ...) with a
                learned variance).
            xt: (B, C, ...) the current state.
            t: (B,) integer steps in 1..T (or one int).
            clip_x0: clip x0_hat to this range (1 for data in [-1, 1]); None keeps it.

        Returns:
            a dict with ``mean``, ``var``, ``log_var``, ``x0`` and ``eps``, each (B, C, ...).
        """
        t = self.check_t(t, xt.shape[0], xt.device)
        prediction, v = self.split_output(output)
        if prediction.shape != xt.shape:
            raise ValueError(
                f"the denoiser output {tuple(output.shape)} does not match x_t {tuple(xt.shape)}"
            )
        x0, eps = self.x0_eps_from_prediction(prediction, xt, t)
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            eps = (xt - self.gather("sqrt_alpha_bar", t, xt) * x0) / self.gather(
                "sqrt_one_minus_alpha_bar", t, xt
            )
        log_var = self.log_variance(t, xt, v)
        return {
            "mean": self.posterior_mean(x0, xt, t),
            "var": log_var.exp(),
            "log_var": log_var,
            "x0": x0,
            "eps": eps,
        }
