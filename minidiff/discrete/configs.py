"""The diffusion sections of text presets (`minidiff.configs`): the absorbing and the
uniform process over a vocabulary, each a frozen dataclass whose `build` gives the
process object that `minidiff.training.Trainer` trains with and the samplers use.

- `AbsorbingDiffusionConfig`: the continuous-time absorbing ("mask") diffusion of Sahoo
  et al. (2024, MDLM), `minidiff.discrete.masked.MaskedDiffusion`;
- `UniformDiffusionConfig`: the uniform D3PM of Austin et al. (2021) with T steps, the
  schedule alpha_bar_t = 1 - t / T and the hybrid loss (sec. 3.4), `minidiff.discrete.D3PM`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minidiff.discrete.d3pm import D3PM, D3PM_LOSSES, HYBRID_CE_WEIGHT, D3PMLoss
from minidiff.discrete.masked import MaskedDiffusion, absorbing_linear_beta

__all__ = ["AbsorbingDiffusionConfig", "UniformDiffusionConfig"]


def _check_steps(T) -> None:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")


@dataclass(frozen=True)
class AbsorbingDiffusionConfig:
    """The absorbing diffusion (MDLM): trained in continuous time, sampled in T steps."""

    T: int = 256  # unmasking steps of the sampler (the bound is the T -> infinity limit)

    def __post_init__(self) -> None:
        _check_steps(self.T)

    def build(self, vocab_size: int) -> MaskedDiffusion:
        """The process over ``vocab_size`` data states (the mask is state ``vocab_size``)."""
        return MaskedDiffusion(vocab_size, self.T)


@dataclass(frozen=True)
class UniformDiffusionConfig:
    """The uniform D3PM with T steps and its hybrid loss (Austin et al. 2021)."""

    T: int = 1000  # steps of the chain; beta_t = 1 / (T - t + 1), alpha_bar_t = 1 - t / T
    loss: D3PMLoss = "hybrid"  # L_vlb + ce_weight * CE (sec. 3.4), "vlb" or "ce"
    ce_weight: float = HYBRID_CE_WEIGHT  # lambda of the hybrid loss: 0.01 for text (sec. 4.1)

    def __post_init__(self) -> None:
        _check_steps(self.T)
        if self.loss not in D3PM_LOSSES:
            raise ValueError(f"loss must be one of {D3PM_LOSSES}, got {self.loss!r}")
        w = self.ce_weight
        if isinstance(w, bool) or not (isinstance(w, (int, float)) and 0 <= w < math.inf):
            raise ValueError(f"ce_weight must be a finite number >= 0, got {w!r}")

    def build(self, vocab_size: int) -> D3PM:
        """The uniform chain over ``vocab_size`` states."""
        return D3PM("uniform", absorbing_linear_beta(self.T), vocab_size, loss=self.loss,
                    ce_weight=self.ce_weight)  # fmt: skip
