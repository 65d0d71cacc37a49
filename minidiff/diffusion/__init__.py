"""Layer 3: diffusion in PyTorch.

`GaussianDiffusion` (the forward process, the reverse step and the losses, with every
coefficient gathered from `minidiff.process`), the samplers, score matching and flow
matching.
"""

from minidiff.diffusion.gaussian import (
    LOSSES,
    PARAMETERIZATIONS,
    VARIANCES,
    GaussianDiffusion,
    Loss,
    Parameterization,
    Variance,
)
from minidiff.diffusion.oracle import TorchDenoiser

__all__ = [
    "LOSSES",
    "PARAMETERIZATIONS",
    "VARIANCES",
    "GaussianDiffusion",
    "Loss",
    "TorchDenoiser",
    "Parameterization",
    "Variance",
]
