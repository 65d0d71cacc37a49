"""Inpainting with an unconditional diffusion model: replacement and RePaint.

- Replacement (Song et al. 2021, "Score-based generative modeling through stochastic
  differential equations", sec. 5 and app. I.2): after every reverse step t -> t_prev the
  known pixels are replaced by a forward-noised copy of the data, x_{t_prev}^known ~
  q(x_{t_prev} | x_0) (eq. 4 of Ho et al. 2020), and the unknown pixels keep the model's step.
- RePaint (Lugmayr et al. 2022, Algorithm 1 and sec. 4.2): the same replacement, plus
  "time travel": at every j-th level the chain is noised j levels back up with
  q(x_t | x_s) = N(sqrt(alpha_bar_t / alpha_bar_s) x_s, (1 - alpha_bar_t / alpha_bar_s) I)
  and denoised down again, r - 1 times, so that the unknown region harmonises with the
  known one. `repaint_schedule` lists the moves and `repaint_nfe` counts its denoiser calls;
  replacement is the case r = 1.

Each reverse step is DDIM's eq. 12 (Song, Meng & Ermon 2021) with sigma(eta) of eq. 16 on
the grid `minidiff.process.ddim_timesteps`: eta = 1 on the full grid is ancestral
sampling (Ho et al. 2020, Algorithm 2) with the posterior variance. The known region is
pasted after the last step too, so the result equals the data there exactly.

Masks hold 1 where a pixel is known and 0 where it is to be filled in (`inpainting_mask`,
`mask_from_image`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from minidiff.diffusion._sampling import Denoiser, SamplerOptions, denoise, open_frame
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process import Spacing, ddim_coefficients
from minidiff.process.forward import log_alpha_bar_ratio

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "MASK_KINDS",
    "MaskKind",
    "inpainting_mask",
    "mask_from_image",
    "repaint_schedule",
    "repaint_nfe",
    "inpaint",
]

MaskKind = Literal["left", "right", "top", "bottom", "center", "random"]
MASK_KINDS: tuple[str, ...] = get_args(MaskKind)


def inpainting_mask(
    kind: MaskKind, size: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A (size, size) mask, 1 = known, 0 = to fill in; ``kind`` names the missing part.

    ``left``/``right``/``top``/``bottom``: that half is missing (size // 2 columns or rows);
    ``center``: the centre square of side size // 2 is missing; ``random``: each pixel is
    missing with probability 1/2 (independent draws from ``generator``).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    mask = torch.ones(size, size)
    half = size // 2
    if kind == "left":
        mask[:, :half] = 0
    elif kind == "right":
        mask[:, size - half :] = 0
    elif kind == "top":
        mask[:half, :] = 0
    elif kind == "bottom":
        mask[size - half :, :] = 0
    elif kind == "center":
        lo = (size - half) // 2
        mask[lo : lo + half, lo : lo + half] = 0
    elif kind == "random":
        mask = (torch.rand(size, size, generator=generator) >= 0.5).float()
    else:
        raise ValueError(f"kind must be one of {MASK_KINDS}, got {kind!r}")
    return mask


def mask_from_image(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A mask from a grey image (H, W) of values in [0, 1] or uint8 0..255: white
    (>= half the range) marks the pixels to fill in, as in a painted-over mask; returns
    (H, W) with 1 = known."""
    a = torch.as_tensor(np.asarray(image))
    if a.ndim != 2 or a.numel() == 0:
        raise ValueError(f"image must be a grey (H, W) array, got shape {tuple(a.shape)}")
    top = 255.0 if a.dtype == torch.uint8 else 1.0
    return (a.double() < top / 2).float()


def repaint_schedule(n: int, jump_length: int, resamplings: int) -> list[tuple[int, int]]:
    """The moves (level, next level) of RePaint on a grid of n steps (levels n..0; level
    L is grid time ``grid[n - L]``), Lugmayr et al. (2022), sec. 4.2.

    Down one level at a time from n to 0; on first reaching a jump level L (L = 0, j, 2j,
    ... with L + j <= n) the chain goes up j levels and down again, ``resamplings - 1``
    times. A down move (L, L - 1) costs one denoiser call; an up move (L, L + j) none.
    ``resamplings = 1`` is plain replacement: n down moves.
    """
    for name, value, low in (("n", n, 1), ("jump_length", jump_length, 1),
                             ("resamplings", resamplings, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    moves: list[tuple[int, int]] = []
    for level in range(n, 0, -1):
        moves.append((level, level - 1))
        below = level - 1
        if below % jump_length == 0 and below + jump_length <= n:
            for _ in range(resamplings - 1):
                moves.append((below, below + jump_length))
                moves += [(u, u - 1) for u in range(below + jump_length, below, -1)]
    return moves


def repaint_nfe(n: int, jump_length: int, resamplings: int) -> int:
    """Denoiser calls of `repaint_schedule`: n + (r - 1) j (floor((n - j) / j) + 1) for
    j <= n (the jump levels are 0, j, ..., up to n - j), and n for j > n."""
    jumps = (n - jump_length) // jump_length + 1 if jump_length <= n else 0
    return n + (resamplings - 1) * jump_length * jumps


def _check_mask(mask: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    try:
        torch.broadcast_shapes(mask.shape, known.shape)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the image "
                         f"shape {tuple(known.shape)}") from err  # fmt: skip
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold only 0 (to fill in) and 1 (known)")
    return mask.to(device=known.device).bool().expand_as(known)


@torch.no_grad()
def inpaint(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    x0_known: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int | None = None,
    spacing: Spacing = "uniform",
    eta: float = 1.0,
    jump_length: int = 10,
    resamplings: int = 1,
    clip_x0: float | None = None,
    **options: Unpack[SamplerOptions],
) -> torch.Tensor:
    """Fill in the unknown pixels of ``x0_known``: replacement (``resamplings = 1``,
    Song et al. 2021) or RePaint (``resamplings = r > 1``, Lugmayr et al. 2022, Alg. 1).

    From x_T ~ N(0, I), for each move of ``repaint_schedule(steps, jump_length,
    resamplings)`` over the grid:
        down t -> t_prev: 1. x0_hat, eps_hat from denoiser(x_t, t);
            2. x_{t_prev} = sqrt(alpha_bar_{t_prev}) x0_hat + sqrt(1 - alpha_bar_{t_prev}
               - sigma^2) eps_hat + sigma z (DDIM eq. 12, sigma = sigma_t(eta), eq. 16);
            3. known pixels <- sqrt(alpha_bar_{t_prev}) x_0 + sqrt(1 - alpha_bar_{t_prev}) z'
               (Ho et al. 2020, eq. 4), and <- x_0 itself at t_prev = 0;
        up s -> t: x_t = sqrt(alpha_bar_t / alpha_bar_s) x_s + sqrt(1 - alpha_bar_t /
            alpha_bar_s) z (q(x_t | x_s), RePaint's eq. 1 over j steps).
    The known region is also replaced at x_T.

    Args:
        denoiser: ``denoiser(xt, t) -> output`` in the diffusion's parameterization.
        diffusion: the `GaussianDiffusion`.
        x0_known: (B, ...) the data; only its known pixels are read.
        mask: 1 = known, 0 = to fill in; broadcastable to ``x0_known`` ((H, W), (B, C, H, W)).
        steps, spacing: the grid `minidiff.process.ddim_timesteps(T, steps, spacing)`.
        eta: DDIM's stochasticity; 1 (default) on the full grid is ancestral sampling.
        jump_length, resamplings: RePaint's j and r (r = 1: no time travel).
        clip_x0: clip x0_hat to [-clip_x0, clip_x0], or None.
        **options: generator, noise, progress, dtype, device (`SamplerOptions`); dtype
            and device default to ``x0_known``'s.

    Returns:
        (B, ...) the completed images, equal to ``x0_known`` where ``mask`` is 1.
    """
    if options.get("return_trajectory"):
        raise TypeError("inpaint takes no option 'return_trajectory'")
    if isinstance(eta, bool) or not (isinstance(eta, (int, float)) and 0 <= eta < np.inf):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    if not isinstance(x0_known, torch.Tensor) or not x0_known.dtype.is_floating_point:
        raise TypeError(f"x0_known must be a floating-point tensor, got {x0_known!r:.60}")
    options = {"dtype": x0_known.dtype, "device": x0_known.device, **options}
    frame = open_frame(diffusion, tuple(x0_known.shape), options, desc="inpaint",
                       steps=steps, spacing=spacing, clip_x0=clip_x0)  # fmt: skip
    known = x0_known.to(dtype=frame.x_T.dtype, device=frame.x_T.device)
    keep = _check_mask(mask, known)
    n = len(frame.grid) - 1
    times = frame.grid[::-1].copy()  # times[L]: the time of level L; times[n] = T
    down = ddim_coefficients(diffusion.schedule, times[1:], times[:-1], eta)  # index L - 1
    signal, direction, sigma = map(frame.table, (down.signal, down.direction, down.sigma))
    schedule = diffusion.schedule

    def paste(x: torch.Tensor, t: int) -> torch.Tensor:  # 3. the known region at time t
        if t == 0:
            return torch.where(keep, known, x)
        if not bool(keep.any()):  # nothing known: no draws, the plain sampler's chain
            return x
        noised = schedule.sqrt_alpha_bar[t] * known + schedule.sqrt_one_minus_alpha_bar[t] * (
            frame.draw(known)
        )
        return torch.where(keep, noised, x)

    x = paste(frame.x_T, int(times[n]))
    for level, target in repaint_schedule(n, jump_length, resamplings):
        if target == level - 1:  # down: one reverse step
            x0, eps = denoise(denoiser, diffusion, x, int(times[level]), clip_x0)  # 1.
            x = signal[target] * x0 + direction[target] * eps  # 2. eq. 12
            if down.sigma[target] > 0:
                x = x + sigma[target] * frame.draw(x)
            x = paste(x, int(times[target]))
        else:  # up: q(x_t | x_s) over the jump
            log_ratio = float(log_alpha_bar_ratio(schedule, int(times[level]), int(times[target])))
            x = np.exp(0.5 * log_ratio) * x + np.sqrt(-np.expm1(log_ratio)) * frame.draw(x)
    return x
