"""Denoising score matching at geometric noise levels: the noise-conditional score network
(NCSN) of Song & Ermon (2019), the "variance exploding" view of diffusion.

- Noise levels: sigma_1 > sigma_2 > ... > sigma_L, a geometric sequence (sec. 4.2).
- Perturbed data: x~ = x + sigma z, z ~ N(0, I), whose law is p_sigma = p * N(0, sigma^2 I).
- Denoising score matching (Vincent 2011; Song & Ermon 2019, eqs. 5-6): with the weight
  lambda(sigma) = sigma^2, one level per example,

      l(theta; sigma) = 1/2 E || sigma s_theta(x~, sigma) + z ||^2,

  minimised exactly by the score of the perturbed law, s_theta(x~, sigma) = grad log
  p_sigma(x~), because E[z | x~] = -sigma grad log p_sigma(x~) (Tweedie's formula). At the
  minimum the loss is 1/2 (D - sigma^2 E || grad log p_sigma(x~) ||^2).
- Sampling: annealed Langevin dynamics (Algorithm 1), with the step sizes of
  `minidiff.markov.annealed_step_sizes`, optionally followed by one denoising step
  x <- x + sigma_L^2 s(x, sigma_L) (Tweedie; Song & Ermon 2020, appendix; Jolicoeur-Martineau
  et al. 2021).

The score network interface is ``score_net(x: (B, D...), c: (B,)) -> (B, D...)`` where the
condition c is either the level's index i in 0..L-1 (int64; ``condition="index"``, the
default, the paper's noise-conditional network) or sigma_i itself (``condition="sigma"``,
in x's dtype). Index 0 is the largest noise level sigma_1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from minidiff.markov import annealed_step_sizes

if TYPE_CHECKING:
    from minidiff.toy.mixture import GaussianMixture

__all__ = [
    "SCORE_CONDITIONS",
    "ScoreCondition",
    "geometric_sigmas",
    "dsm_loss_terms",
    "dsm_loss",
    "sample_ncsn",
    "exact_score_net",
]

ScoreCondition = Literal["index", "sigma"]
SCORE_CONDITIONS: tuple[str, ...] = get_args(ScoreCondition)

ScoreNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def geometric_sigmas(
    sigma_max: float,
    sigma_min: float,
    L: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The noise levels sigma_i = sigma_max (sigma_min / sigma_max)^((i - 1) / (L - 1)),
    i = 1..L: strictly decreasing, with a constant ratio (Song & Ermon 2019, sec. 4.2).

    Computed in float64 and cast once.

    Args:
        sigma_max: sigma_1, the largest level.
        sigma_min: sigma_L, the smallest level, 0 < sigma_min < sigma_max.
        L: the number of levels, >= 2.

    Returns:
        (L,) sigma_1 > ... > sigma_L.
    """
    if isinstance(L, bool) or int(L) != L or L < 2:
        raise ValueError(f"L must be an integer >= 2, got {L!r}")
    if not (math.isfinite(sigma_min) and sigma_min > 0):
        raise ValueError(f"sigma_min must be positive and finite, got {sigma_min!r}")
    if not (math.isfinite(sigma_max) and sigma_max > sigma_min):
        raise ValueError(
            f"sigma_max must be finite and > sigma_min = {sigma_min!r}, got {sigma_max!r}"
        )
    exponents = np.arange(int(L)) / (int(L) - 1)  # 0, ..., 1
    sigmas = sigma_max * (sigma_min / sigma_max) ** exponents
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # exact end points
    return torch.from_numpy(sigmas).to(device=device, dtype=dtype)


def _check_sigmas(sigmas) -> torch.Tensor:
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1 or not sigmas.dtype.is_floating_point:
        raise ValueError(f"sigmas must be a non-empty 1-D float tensor (L,), got {sigmas!r}")
    if not bool(torch.all(torch.isfinite(sigmas) & (sigmas > 0))):
        raise ValueError(f"sigmas must be finite and > 0, got {sigmas.tolist()}")
    if sigmas.shape[0] > 1 and not bool(torch.all(sigmas[1:] < sigmas[:-1])):
        raise ValueError(f"sigmas must be strictly decreasing, got {sigmas.tolist()}")
    return sigmas


def _condition(
    condition: str, sigmas: torch.Tensor, index: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """What the score network is called with: the level index (B,) or sigma_i (B,)."""
    if condition == "index":
        return index
    elif condition == "sigma":
        return sigmas.to(like.device, like.dtype)[index]
    else:
        raise ValueError(f"unknown condition {condition!r}; expected one of {SCORE_CONDITIONS}")


def _over_batch(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against like (B, ...)."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def dsm_loss_terms(
    score_net: ScoreNet,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    index: torch.Tensor,
    z: torch.Tensor,
    *,
    condition: ScoreCondition = "index",
) -> torch.Tensor:
    """Per-example denoising score matching loss with lambda(sigma) = sigma^2
    (Song & Ermon 2019, eqs. 5-6):

        l_b = 1/2 || sigma_i s_theta(x_b + sigma_i z_b, c) + z_b ||^2,  i = index_b.

    Args:
        score_net: ``score_net(x~, c) -> (B, ...)``, c the index or sigma (``condition``).
        x: (B, ...) clean data.
        sigmas: (L,) the noise levels, decreasing.
        index: (B,) int64 level indices in 0..L-1.
        z: (B, ...) standard normal noise.

    Returns:
        (B,) the loss of every example (summed over the data dimensions).
    """
    sigmas = _check_sigmas(sigmas)
    index = torch.as_tensor(index, device=x.device)
    if index.shape != (x.shape[0],) or index.dtype.is_floating_point:
        raise ValueError(f"index must be (B,) = ({x.shape[0]},) integers, got {index!r}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= sigmas.shape[0]):
        raise ValueError(f"index must lie in 0..L-1 = 0..{sigmas.shape[0] - 1}")
    if z.shape != x.shape:
        raise ValueError(f"z must have the shape of x {tuple(x.shape)}, got {tuple(z.shape)}")
    sigma = _over_batch(sigmas.to(x.device, x.dtype)[index], x)  # (B, 1, ...)
    x_tilde = x + sigma * z  # x~ ~ p_sigma
    score = score_net(x_tilde, _condition(condition, sigmas, index, x))
    if score.shape != x.shape:
        raise ValueError(f"score_net returned {tuple(score.shape)} for x of {tuple(x.shape)}")
    residual = sigma * score + z  # sigma (s - grad log q(x~ | x)), grad log q = -z / sigma
    return 0.5 * residual.flatten(1).pow(2).sum(dim=1)


def dsm_loss(
    score_net: ScoreNet,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    condition: ScoreCondition = "index",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The NCSN objective (Song & Ermon 2019, eq. 6) on a minibatch: a level i uniform on
    0..L-1 and z ~ N(0, I) per example, then the mean over the batch of `dsm_loss_terms`.

    Its minimiser is s_theta(x~, sigma_i) = grad log p_{sigma_i}(x~) at every level.

    Args:
        score_net: ``score_net(x~, c) -> (B, ...)``.
        x: (B, ...) clean data.
        sigmas: (L,) the noise levels, decreasing (e.g. `geometric_sigmas`).
        condition: call the network with the level ``"index"`` or with ``"sigma"``.
        generator: the source of the level indices and of z.

    Returns:
        the scalar loss.
    """
    index = torch.randint(
        0, len(sigmas), (x.shape[0],), generator=generator, device=x.device
    )  # (B,)
    z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return dsm_loss_terms(score_net, x, sigmas, index, z, condition=condition).mean()


def _steps(n: int, progress: bool):
    if not progress:
        return range(n)
    from tqdm.auto import tqdm  # optional weight, imported where used

    return tqdm(range(n), desc="annealed Langevin")


@torch.no_grad()
def sample_ncsn(
    score_net: ScoreNet,
    shape_or_x: Sequence[int] | torch.Tensor,
    sigmas: torch.Tensor,
    *,
    eps: float,
    n_steps_each: int,
    condition: ScoreCondition = "index",
    generator: torch.Generator | None = None,
    progress: bool = False,
    denoise_last: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Sample an NCSN: annealed Langevin dynamics over geometric noise levels (Song & Ermon
    2019, Algorithm 1). For annealed Langevin over a `GaussianDiffusion`'s own steps, see
    `minidiff.diffusion.langevin.sample_annealed_langevin`.

    For i = 1..L: alpha_i = eps sigma_i^2 / sigma_L^2 (`minidiff.markov.annealed_step_sizes`),
    then ``n_steps_each`` times

        x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z,  z ~ N(0, I).

    Given the same x and the same z this is `minidiff.markov.annealed_langevin` step for
    step. With ``denoise_last``, one final step x <- x + sigma_L^2 s(x, sigma_L) returns
    E[x_0 | x] at the last level instead of a sample still carrying noise sigma_L.

    Args:
        score_net: ``score_net(x, c) -> (B, ...)``.
        shape_or_x: the starting states (B, ...) as a tensor, or a shape: then
            x ~ N(0, sigma_1^2 I), the perturbed law's limit for sigma_1 >> the data's scale.
        sigmas: (L,) the noise levels sigma_1 > ... > sigma_L.
        eps: the step size at the last level, > 0.
        n_steps_each: Langevin steps per level, >= 1.
        condition: call the network with the level ``"index"`` or with ``"sigma"``.
        generator: the source of the starting noise (for a shape) and of every z.
        progress: show a tqdm progress bar over the levels.
        denoise_last: take the final denoising step.
        device: the samples' device when ``shape_or_x`` is a shape.
        dtype: the samples' dtype when ``shape_or_x`` is a shape (torch's default if None).

    Returns:
        (B, ...) the samples.
    """
    sigmas = _check_sigmas(sigmas)
    alphas = annealed_step_sizes(sigmas.detach().cpu().to(torch.float64).numpy(), eps)
    if isinstance(n_steps_each, bool) or int(n_steps_each) != n_steps_each or n_steps_each < 1:
        raise ValueError(f"n_steps_each must be an integer >= 1, got {n_steps_each!r}")
    if isinstance(shape_or_x, torch.Tensor):
        x = shape_or_x.detach().clone()
    else:
        dtype = torch.get_default_dtype() if dtype is None else dtype
        x = float(sigmas[0]) * torch.randn(
            tuple(shape_or_x), generator=generator, device=device, dtype=dtype
        )
    for i in _steps(len(alphas), progress):
        c = _condition(condition, sigmas, torch.full((x.shape[0],), i, device=x.device), x)
        step, noise_scale = float(alphas[i] / 2.0), math.sqrt(alphas[i])
        for _ in range(int(n_steps_each)):
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + step * score_net(x, c) + noise_scale * z
    if denoise_last:
        sigma_L = float(sigmas[-1])
        x = x + sigma_L**2 * score_net(x, c)  # Tweedie: E[x_0 | x] at the last level
    return x


def exact_score_net(
    mixture: GaussianMixture, sigmas: torch.Tensor, *, condition: ScoreCondition = "index"
) -> ScoreNet:
    """The exact score network of a Gaussian mixture p: at level i,
    grad log p_{sigma_i}(x) with p_sigma = sum_k w_k N(mu_k, Sigma_k + sigma_i^2 I).

    Computed in float64 NumPy by `GaussianMixture.score`, returned in x's dtype and device.

    Args:
        mixture: the data law.
        sigmas: (L,) the noise levels.
        condition: whether the network is called with the level index or sigma_i.
    """
    from minidiff.toy.mixture import GaussianMixture

    sigmas = _check_sigmas(sigmas).detach().cpu().to(torch.float64)
    if condition not in SCORE_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {SCORE_CONDITIONS}")
    eye = np.eye(mixture.D)
    levels = [
        GaussianMixture(mixture.weights, mixture.means, mixture.covs + float(s) ** 2 * eye)
        for s in sigmas
    ]

    def score(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = torch.as_tensor(c).detach().cpu()
        if condition == "index":
            index = c.to(torch.int64).numpy()
        else:  # the level whose sigma is nearest
            index = torch.argmin((c[:, None].double() - sigmas[None, :]).abs(), dim=1).numpy()
        x_np = x.detach().cpu().to(torch.float64).numpy()
        out = np.empty_like(x_np)
        for i in np.unique(index):  # one vectorised pass per level
            rows = index == i
            out[rows] = levels[int(i)].score(x_np[rows])
        return torch.from_numpy(out).to(x.device, x.dtype)

    return score
