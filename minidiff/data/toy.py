"""The 2-D toy datasets of `minidiff.toy` as torch tensors."""

from __future__ import annotations

import numpy as np
import torch

from minidiff.toy import make_dataset


def toy_dataset(
    name: str,
    n: int,
    generator_or_seed: int | np.random.Generator | torch.Generator = 0,
    *,
    noise: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """n points of a 2-D toy dataset (`minidiff.toy.make_dataset`) as a tensor.

    Args:
        name: one of `minidiff.toy.DATASETS`.
        n: the number of points, >= 1.
        generator_or_seed: an int seed, a NumPy Generator, or a torch Generator (one
            64-bit seed is drawn from it for NumPy).
        noise: see `make_dataset`.
        dtype: the result's dtype.
        device: the result's device.

    Returns:
        (n, 2) tensor; the same points as `make_dataset` with the same NumPy generator.
    """
    if isinstance(generator_or_seed, np.random.Generator):
        rng = generator_or_seed
    elif isinstance(generator_or_seed, torch.Generator):
        seed = torch.randint(
            0, 2**62, (1,), generator=generator_or_seed, device=generator_or_seed.device
        )
        rng = np.random.default_rng(int(seed))
    elif isinstance(generator_or_seed, (int, np.integer)) and not isinstance(
        generator_or_seed, bool
    ):
        rng = np.random.default_rng(int(generator_or_seed))
    else:
        raise ValueError(
            "generator_or_seed must be an int, a numpy.random.Generator or a torch.Generator, "
            f"got {type(generator_or_seed).__name__}"
        )
    points = make_dataset(name, n, rng, noise=noise)  # (n, 2) float64
    return torch.as_tensor(points, dtype=dtype, device=device)
