"""Guidance: classifier-free (Ho & Salimans 2022) and classifier guidance (Dhariwal &
Nichol 2021), each a denoiser wrapper, so every sampler of `minidiff.diffusion` uses it
unchanged through the protocol ``denoiser(xt, t) -> output``.

Scale convention. This module uses the scale s of Dhariwal & Nichol (2021) for both:

    classifier-free:  out = out(x_t, null) + s (out(x_t, y) - out(x_t, null)),
    classifier:       grad log p_s(x_t | y) = grad log p(x_t) + s grad log p(y | x_t),

so s = 0 is the unconditional model, s = 1 the conditional one and s > 1 guides beyond
it. Ho & Salimans (2022, eq. 6) write eps~ = (1 + w) eps(x_t, y) - w eps(x_t, null), the
same thing with w = s - 1 (their w = 0 is our s = 1, the plain conditional model).

Classifier-free guidance is linear in the network output, and eps, x0 and v are affine
in one another with coefficients that depend only on (x_t, t) (Ho et al. 2020, eq. 15;
Salimans & Ho 2022): weights that sum to 1 commute with the change of parameterization,
so guiding the output in whatever parameterization the diffusion uses is the same as
guiding eps. With a learned variance only the prediction half is guided; the variance
half comes from the conditional pass.

Guidance rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps
are Flawed", sec. 3.4): a large s inflates the guided prediction's spread and
over-exposes images. With per-sample standard deviations over all non-batch axes,

    out_rescaled = out_cfg * std(out_cond) / std(out_cfg),
    out_final    = phi out_rescaled + (1 - phi) out_cfg          (phi = 0.7 in the paper),

phi = 0 being plain guidance. The paper's network predicts v; here the rescale acts on the
output in the diffusion's own parameterization (unlike guidance itself, it is not
invariant to the choice).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Literal

import torch

from minidiff.diffusion.gaussian import GaussianDiffusion

__all__ = [
    "CLASSIFIER_GUIDANCE_FORMS",
    "GRADIENT_POINTS",
    "guided_output",
    "rescale_guided",
    "ClassifierFreeGuidance",
    "class_log_prob_gradient",
    "ClassifierGuidance",
]

CLASSIFIER_GUIDANCE_FORMS = ("mean", "eps")
ClassifierGuidanceForm = Literal["mean", "eps"]
GRADIENT_POINTS = ("mean", "xt")
GradientPoint = Literal["mean", "xt"]

# model(xt, t, condition) -> output; condition: (B, ...) labels, tokens, ...
ConditionalModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# log_prob(xt, t, y) -> (B,) log p(y | x_t), differentiable in xt
ClassLogProb = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_real(value, name: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= low:
        raise ValueError(f"{name} must be a real number >= {low}, got {value!r}")
    return float(value)


def guided_output(
    conditional: torch.Tensor, unconditional: torch.Tensor, scale: float
) -> torch.Tensor:
    """out_null + s (out_y - out_null) (Ho & Salimans 2022, eq. 6 with w = s - 1)."""
    ### BEGIN SOLUTION
    return unconditional + scale * (conditional - unconditional)
    ### END SOLUTION


def rescale_guided(guided: torch.Tensor, conditional: torch.Tensor, phi: float) -> torch.Tensor:
    """Lin et al. (2024), sec. 3.4: phi out_cfg std(out_y) / std(out_cfg) + (1 - phi) out_cfg,
    standard deviations per sample over all axes but the first. (B, ...) -> (B, ...)."""
    dims = tuple(range(1, guided.ndim))
    factor = conditional.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return phi * guided * factor + (1.0 - phi) * guided


class ClassifierFreeGuidance:
    """A guided denoiser ``guided(xt, t) -> output`` from a conditional network.

    out = out(x_t, t, null) + s (out(x_t, t, condition) - out(x_t, t, null)), both terms
    from one forward pass over the doubled batch [x_t; x_t] with [condition; null].

    Args:
        model: ``model(xt, t, condition) -> output`` trained with condition dropout, e.g. a
            class-conditional `minidiff.nn.UNet` (condition: labels, null = num_classes).
        condition: (B, ...) the condition of each sample (labels, token ids, ...).
        null_condition: (B, ...) the null condition, same shape and dtype.
        scale: s >= 0 (s = 0 unconditional, s = 1 conditional; see the module docstring).
        rescale: phi in [0, 1] of Lin et al. (2024), 0 for plain guidance.
        diffusion: needed only with a learned variance (the variance half is not guided).
        batched: one forward pass over 2B samples (True) or two passes of B.
    """

    def __init__(
        self,
        model: ConditionalModel,
        condition: torch.Tensor,
        null_condition: torch.Tensor,
        scale: float,
        *,
        rescale: float = 0.0,
        diffusion: GaussianDiffusion | None = None,
        batched: bool = True,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        if condition.shape != null_condition.shape or condition.dtype != null_condition.dtype:
            raise ValueError(
                f"null_condition must match condition's shape {tuple(condition.shape)} and "
                f"dtype {condition.dtype}, got {tuple(null_condition.shape)} "
                f"{null_condition.dtype}"
            )
        self.model, self.condition, self.null_condition = model, condition, null_condition
        self.scale = _check_real(scale, "scale")
        self.rescale = _check_real(rescale, "rescale")
        if self.rescale > 1.0:
            raise ValueError(f"rescale must be in [0, 1], got {rescale!r}")
        self.diffusion, self.batched = diffusion, bool(batched)

    def both(self, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(out(x_t, t, condition), out(x_t, t, null)), each (B, ...)."""
        if self.condition.shape[0] != xt.shape[0]:
            raise ValueError(f"condition holds {self.condition.shape[0]} samples, "
                             f"x_t {xt.shape[0]}")  # fmt: skip
        condition = self.condition.to(xt.device)
        null = self.null_condition.to(xt.device)
        if not self.batched:
            return self.model(xt, t, condition), self.model(xt, t, null)
        out = self.model(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([condition, null]))
        return out.chunk(2)  # (B, ...) twice

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        conditional, unconditional = self.both(xt, t)
        variance = None
        if self.diffusion is not None and self.diffusion.learns_variance:
            conditional, variance = self.diffusion.split_output(conditional, xt)
            unconditional, _ = self.diffusion.split_output(unconditional, xt)
        out = guided_output(conditional, unconditional, self.scale)
        if self.rescale > 0.0:
            out = rescale_guided(out, conditional, self.rescale)
        return out if variance is None else torch.cat([out, variance], dim=1)


def class_log_prob_gradient(
    log_prob: ClassLogProb, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """grad_x log p(y | x, t) per sample, (B, ...).

    The gradient of the batch sum sum_b log p(y_b | x_b) with respect to x is the stack
    of each sample's own gradient, since samples do not interact in the classifier (no
    batch normalisation): one backward pass serves the whole batch.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(log_prob(x, t, y).sum(), x)
    return gradient


class ClassifierGuidance:
    """A denoiser guided by a classifier's gradient (Dhariwal & Nichol 2021, sec. 4).

    - ``form="eps"`` (sec. 4.2, Algorithm 2, for DDIM and any sampler):
      eps^ = eps(x_t) - s sqrt(1 - alpha_bar_t) grad_{x_t} log p(y | x_t, t), the score of
      p(x_t) p(y | x_t)^s (Tweedie: eps = -sqrt(1 - alpha_bar_t) grad log p(x_t)), with
      the gradient at x_t and step t: exact, no approximation.
    - ``form="mean"`` (sec. 4.1, Algorithm 1, for the ancestral sampler): the reverse
      step's mean moves to mu + s Sigma g, with g the gradient of log p(y | x_{t-1}) at
      x_{t-1} = mu, step t - 1 (``gradient_at="mean"``, the point of the Taylor expansion
      of sec. 4.1). The released code takes it at x_t and step t instead
      (``gradient_at="xt"``, as Algorithm 1 is printed); its authors call this a slight
      bug that did not change their results (openai/guided-diffusion issue 51). The shift
      is passed to the sampler as x0^' = x0^ + s Sigma g / c_0, with c_0 the x0 coefficient
      of the posterior mean (Ho et al. 2020, eq. 7), so `p_mean_variance` returns mu + s Sigma g.
      An x0 clip in the sampler (``clip_x0``) acts after the shift.

    Args:
        denoiser: the (unconditional) ``denoiser(xt, t) -> output``.
        diffusion: its `GaussianDiffusion`.
        log_prob: ``log_prob(xt, t, y) -> (B,)`` log p(y | x_t, t), differentiable in xt
            (a noise-aware classifier's log-softmax, or an exact class posterior).
        y: (B,) the class of each sample.
        scale: s >= 0.
        form: one of `CLASSIFIER_GUIDANCE_FORMS`.
        gradient_at: one of `GRADIENT_POINTS` (the ``"mean"`` form only).
    """

    def __init__(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        diffusion: GaussianDiffusion,
        log_prob: ClassLogProb,
        y: torch.Tensor,
        scale: float,
        *,
        form: ClassifierGuidanceForm = "eps",
        gradient_at: GradientPoint = "mean",
    ) -> None:
        if form not in CLASSIFIER_GUIDANCE_FORMS:
            raise ValueError(f"form must be one of {CLASSIFIER_GUIDANCE_FORMS}, got {form!r}")
        if gradient_at not in GRADIENT_POINTS:
            raise ValueError(f"gradient_at must be one of {GRADIENT_POINTS}, got {gradient_at!r}")
        if not isinstance(diffusion, GaussianDiffusion):
            raise TypeError(
                f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}"
            )
        self.denoiser, self.diffusion, self.log_prob, self.y = denoiser, diffusion, log_prob, y
        self.scale = _check_real(scale, "scale")
        self.form, self.gradient_at = form, gradient_at

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        d = self.diffusion
        output = self.denoiser(xt, t)
        _, variance = d.split_output(output, xt)
        x0, eps = d.predict_x0_eps(output, xt, t)
        y = self.y.to(xt.device)
        sqrt_alpha_bar = d.gather(d.schedule.sqrt_alpha_bar, t, xt)
        sqrt_one_minus_alpha_bar = d.gather(d.schedule.sqrt_one_minus_alpha_bar, t, xt)
        if self.form == "eps":  # 1. eps^ = eps - s sqrt(1 - alpha_bar_t) grad log p(y | x_t)
            gradient = class_log_prob_gradient(self.log_prob, xt, t, y)
            eps = eps - self.scale * sqrt_one_minus_alpha_bar * gradient
            x0 = (xt - sqrt_one_minus_alpha_bar * eps) / sqrt_alpha_bar
        elif self.form == "mean":  # 2. mu + s Sigma g, passed on as a shift of x0
            step = d.p_mean_variance(output, xt, t)
            point, at = (step["mean"], t - 1) if self.gradient_at == "mean" else (xt, t)
            gradient = class_log_prob_gradient(self.log_prob, point, at, y)
            shift = self.scale * step["var"] * gradient  # s Sigma g
            x0 = x0 + shift / d.gather(d.schedule.posterior_mean_coef_x0, t, xt)
            eps = d.eps_from_x0(xt, t, x0)
        else:
            raise AssertionError(self.form)
        out = d.target(x0, t, eps)  # 3. back to the diffusion's parameterization
        return out if variance is None else torch.cat([out, variance], dim=1)
