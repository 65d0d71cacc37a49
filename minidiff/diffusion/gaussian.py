"""`GaussianDiffusion`: the Gaussian diffusion of Ho et al. (2020) in PyTorch.

The schedule's tables come from `minidiff.process` (float64 NumPy) and are gathered here,
cast once per device and dtype; no formula is re-derived in this layer. A network knows
nothing of schedules: it is a denoiser ``denoiser(xt, t) -> output`` whose output is in
this diffusion's parameterization (Ho et al. 2020: eps; Salimans & Ho 2022: v), with twice
the channels when the variance is learned (Nichol & Dhariwal 2021, sec. 3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import torch

from minidiff.diffusion import vlb
from minidiff.diffusion._util import call_denoiser, check_data, randint, randn_like
from minidiff.process import (
    PARAMETERIZATIONS,
    FixedVariance,
    Parameterization,
    Schedule,
    check_x0_eps,
)

__all__ = [
    "PARAMETERIZATIONS",
    "VARIANCES",
    "LOSSES",
    "Parameterization",
    "Variance",
    "Loss",
    "GaussianDiffusion",
    "HYBRID_VLB_WEIGHT",
]

# The reverse variances: the two fixed ones of `minidiff.process.reverse_variance`, and the
# learned interpolation between them (Nichol & Dhariwal 2021, eq. 15).
Variance = Literal[FixedVariance, "learned_range"]
Loss = Literal["simple", "vlb", "hybrid"]
VARIANCES: tuple[str, ...] = get_args(Variance)
LOSSES: tuple[str, ...] = get_args(Loss)

# lambda of the hybrid loss L_simple + lambda L_vlb (Nichol & Dhariwal 2021, sec. 3.1).
HYBRID_VLB_WEIGHT = 0.001


def _check_option(value: str, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
    return value


class GaussianDiffusion(vlb.VariationalBound):
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

    The bound's methods `prior_bpd`, `vlb_term` and `vlb_terms` are those of
    `minidiff.diffusion.vlb.VariationalBound`.
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
    def gather(self, table: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` for a per-step table of this diffusion's schedule (an attribute of
        `Schedule`, e.g. ``diffusion.schedule.sqrt_alpha_bar``), shaped (B, 1, ..., 1) to
        broadcast against ``like`` (B, ...) and in its dtype and device.

        The float64 table is cast once per device and dtype and kept.

        Raises:
            ValueError: if ``table`` is not one of ``self.schedule``'s tables.
        """
        name = next((k for k, v in vars(self.schedule).items() if v is table), None)
        if name is None:
            raise ValueError(
                "table must be a per-step table of this diffusion's schedule, e.g. "
                "diffusion.schedule.sqrt_alpha_bar"
            )
        key = (name, like.device, like.dtype)
        if key not in self._tables:
            values = torch.from_numpy(np.array(table, dtype=np.float64))
            self._tables[key] = values.to(device=like.device, dtype=like.dtype)
        values = self._tables[key][t]
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
        check_x0_eps(x0, eps)
        t = self.check_t(t, x0.shape[0], x0.device, low=0)
        return (
            self.gather(self.schedule.sqrt_alpha_bar, t, x0) * x0
            + self.gather(self.schedule.sqrt_one_minus_alpha_bar, t, x0) * eps
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
                self.gather(self.schedule.sqrt_alpha_bar, t, x0) * eps
                - self.gather(self.schedule.sqrt_one_minus_alpha_bar, t, x0) * x0
            )
        else:
            raise AssertionError(self.parameterization)

    # -- from a prediction to x0 and eps --------------------------------------------------
    def split_output(
        self, output: torch.Tensor, xt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Split a denoiser output into (prediction shaped like ``xt``, variance values in
        [-1, 1] or None), checking the shapes."""
        prediction, v = output, None
        if self.learns_variance:
            if output.ndim < 2 or output.shape[1] % 2:
                raise ValueError(
                    "a learned variance needs an output of shape (B, 2C, ...) with an even "
                    f"channel count, got shape {tuple(output.shape)}"
                )
            prediction, v = output.chunk(2, dim=1)
        if prediction.shape != xt.shape:
            raise ValueError(
                f"the denoiser output {tuple(output.shape)} does not match x_t {tuple(xt.shape)}"
            )
        return prediction, v

    def x0_eps_from_prediction(
        self, prediction: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) from the denoiser's prediction in this parameterization, the
        conversions of `minidiff.process.parameterization`:

        eps:  x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)   (Ho et al. 2020, eq. 15)
        x0:   eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)   (`eps_from_x0`)
        v:    x0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v,
              eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v     (Salimans & Ho 2022)
        """
        signal = self.gather(self.schedule.sqrt_alpha_bar, t, xt)
        noise = self.gather(self.schedule.sqrt_one_minus_alpha_bar, t, xt)
        if self.parameterization == "eps":
            return (xt - noise * prediction) / signal, prediction
        elif self.parameterization == "x0":
            return prediction, self.eps_from_x0(xt, t, prediction)
        elif self.parameterization == "v":
            return signal * xt - noise * prediction, noise * xt + signal * prediction
        else:
            raise AssertionError(self.parameterization)

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t): the torch twin of
        `minidiff.process.eps_from_x0`, used for an x0 prediction and for a clipped x0_hat."""
        return (xt - self.gather(self.schedule.sqrt_alpha_bar, t, xt) * x0) / self.gather(
            self.schedule.sqrt_one_minus_alpha_bar, t, xt
        )

    def predict_x0_eps(
        self,
        output: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor | int,
        clip_x0: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) from a denoiser output at (x_t, t): x0_hat optionally clipped to
        [-clip_x0, clip_x0], and eps_hat then recomputed from it (`eps_from_x0`), so that
        the pair still satisfies x_t = sqrt(alpha_bar_t) x0_hat + sqrt(1 - alpha_bar_t) eps_hat.
        All a DDIM, ODE or SDE step needs: no mean and no variance are formed.

        Args:
            output: (B, C, ...) the denoiser's output ((B, 2C, ...) with a learned variance,
                whose variance half is ignored).
            xt: (B, C, ...) the current state.
            t: (B,) integer steps in 1..T (or one int).
            clip_x0: clip x0_hat to this range (1 for data in [-1, 1]); None keeps it.
        """
        t = self.check_t(t, xt.shape[0], xt.device)
        prediction, _ = self.split_output(output, xt)
        x0, eps = self.x0_eps_from_prediction(prediction, xt, t)
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            eps = self.eps_from_x0(xt, t, x0)
        return x0, eps

    # -- the reverse process p(x_{t-1} | x_t) ---------------------------------------------
    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7), coefficients from the schedule."""
        return (
            self.gather(self.schedule.posterior_mean_coef_x0, t, xt) * x0
            + self.gather(self.schedule.posterior_mean_coef_xt, t, xt) * xt
        )

    def log_variance(
        self, t: torch.Tensor, like: torch.Tensor, v: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log Sigma_theta(x_t, t), shaped like ``like`` (B, ...).

        fixed_small: log beta_tilde_t (clipped at t = 1, `Schedule.posterior_log_var_clipped`);
        fixed_large: log beta_t, with beta_tilde_2 at t = 1 (`Schedule.fixed_large_log_var`);
        learned_range: frac log beta_t + (1 - frac) log beta_tilde_t with frac = (v + 1) / 2
        (Nichol & Dhariwal 2021, eq. 15).
        """
        log_small = self.gather(self.schedule.posterior_log_var_clipped, t, like)
        log_large = self.gather(self.schedule.fixed_large_log_var, t, like)
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

    def p_mean_variance(
        self,
        output: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor | int,
        clip_x0: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """The reverse step p_theta(x_{t-1} | x_t) = N(mean, exp(log_var)) from a denoiser
        output: x0_hat from the prediction, optionally clipped to [-clip_x0, clip_x0]
        (`predict_x0_eps`), then mean = mu_tilde_t(x_t, x0_hat) (Ho et al. 2020, eqs. 7
        and 15) and the diffusion's variance.

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
        x0, eps = self.predict_x0_eps(output, xt, t, clip_x0)
        _, v = self.split_output(output, xt)
        log_var = self.log_variance(t, xt, v)
        return {
            "mean": self.posterior_mean(x0, xt, t),
            "var": log_var.exp(),
            "log_var": log_var,
            "x0": x0,
            "eps": eps,
        }

    # -- the losses (Ho et al. 2020, eq. 14; Nichol & Dhariwal 2021, sec. 3.1) ------------
    def training_losses(
        self,
        denoiser: Callable[..., torch.Tensor],
        x0: torch.Tensor,
        *,
        t: torch.Tensor | int | None = None,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        num_bins: int | None = 256,
    ) -> dict[str, torch.Tensor]:
        """Per-example training losses at one random step (Algorithm 1 of Ho et al. 2020).

        1. t ~ Uniform{1..T} and eps ~ N(0, I) (drawn with ``generator`` unless given);
        2. x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (eq. 4);
        3. ``mse`` = mean over the data dimensions of (target - prediction)^2, the target
           being eps, x0 or v (eq. 14 in this parameterization);
        4. ``vlb`` = T * L_{t-1} in bits per dimension: L_{t-1} is the bound's term at t
           (eq. 5, see `vlb_term`), and with t uniform,
           T * L_{t-1} is an unbiased estimate of L_0 + ... + L_{T-1}, the bound without
           its parameter-free prior term L_T (Nichol & Dhariwal 2021, sec. 3.1);
        5. ``loss`` = ``mse`` (simple), ``vlb`` (vlb), or ``mse + 0.001 * vlb`` (hybrid).
           In the hybrid loss the vlb term sees the prediction through a stop-gradient, so
           it trains only the variance (sec. 3.1); its value is unchanged.

        ``vlb`` is computed, and returned, only for the vlb and hybrid losses.

        Args:
            denoiser: ``denoiser(xt, t) -> output``, or ``denoiser(xt, t, y)`` when ``y``
                is given; output (B, C, ...), or (B, 2C, ...) with a learned variance.
            x0: (B, C, ...) clean data (any shape with a batch dimension first).
            t: (B,) int64 steps in 1..T, or one int; drawn uniformly when None.
            eps: (B, C, ...) the noise; drawn when None.
            generator: the random generator for t and eps.
            y: (B,) class labels (or any conditioning) passed on to the denoiser.
            num_bins: data values of the decoder L_0 (256 for 8-bit data scaled to
                [-1, 1]); None for continuous data, which uses the Gaussian density.

        Returns:
            a dict of (B,) tensors: ``loss``, ``mse``, ``t``, and ``vlb`` (vlb and hybrid).
        """
        x0 = check_data(x0)
        batch = x0.shape[0]
        if t is None:
            t = randint(1, self.T + 1, batch, x0.device, generator)
        t = self.check_t(t, batch, x0.device)
        if eps is None:
            eps = randn_like(x0, generator)
        elif eps.shape != x0.shape:
            raise ValueError(
                f"eps must have the shape of x0 {tuple(x0.shape)}, got {tuple(eps.shape)}"
            )
        xt = self.q_sample(x0, t, eps)
        output = call_denoiser(denoiser, xt, t, y)
        prediction, v = self.split_output(output, xt)
        losses = {"mse": vlb.mean_over_dims((self.target(x0, t, eps) - prediction) ** 2), "t": t}
        if self.loss == "simple":
            losses["loss"] = losses["mse"]
            return losses
        if self.loss == "hybrid":  # stop-gradient on the mean (Nichol & Dhariwal, sec. 3.1)
            detached = prediction.detach()
            output = detached if v is None else torch.cat([detached, v], dim=1)
        term, _ = self.vlb_term(output, x0, xt, t, num_bins=num_bins)
        losses["vlb"] = self.T * term
        if self.loss == "vlb":
            losses["loss"] = losses["vlb"]
        elif self.loss == "hybrid":
            losses["loss"] = losses["mse"] + HYBRID_VLB_WEIGHT * losses["vlb"]
        else:
            raise AssertionError(self.loss)
        return losses
