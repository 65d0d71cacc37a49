"""The random draws of one training step, per kind of diffusion.

`Trainer` draws them for the whole global batch before each rank takes its shard, so a
step is the same whatever the world size. A process that names its own draws has a
``training_draws(x0, generator)`` method (`minidiff.discrete.MaskedDiffusion`: times t and
the uniforms that mask; `minidiff.discrete.D3PM`: steps t and the uniforms that corrupt);
the Gaussian diffusion's are those of Algorithm 1 of Ho et al. (2020), lines 3-4. Each
process's ``training_losses(model, x0, y=..., num_bins=..., **draws)`` takes them back.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["training_draws"]


def training_draws(diffusion: Any, x0: torch.Tensor, generator: torch.Generator
                   ) -> dict[str, torch.Tensor]:  # fmt: skip
    """The draws of one step for the batch x0 (B, ...), each a tensor with B first.

    The diffusion's own ``training_draws`` if it has one; else t ~ Uniform{1..T} (B,)
    int64 and eps ~ N(0, I) of x0's shape (Ho et al. 2020, Algorithm 1, lines 3-4).
    """
    own = getattr(diffusion, "training_draws", None)
    if own is not None:
        return {k: v.to(x0.device) for k, v in own(x0, generator).items()}
    t = torch.randint(1, diffusion.T + 1, (x0.shape[0],), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return {"t": t, "eps": eps}
