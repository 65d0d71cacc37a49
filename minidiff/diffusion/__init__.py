"""Layer 3: diffusion in PyTorch.

`GaussianDiffusion` (the forward process, the reverse step and the losses, with every
coefficient gathered from `minidiff.process`), the samplers, score matching and flow
matching.
"""

from minidiff.diffusion.flow_matching import (
    FLOW_METHODS,
    exact_velocity,
    flow_matching_loss,
    flow_matching_loss_terms,
    flow_times,
    linear_path,
    sample_flow,
    velocity_target,
)
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
from minidiff.diffusion.score_matching import (
    SCORE_CONDITIONS,
    dsm_loss,
    dsm_loss_terms,
    exact_score_net,
    geometric_sigmas,
    sample_ncsn,
)

__all__ = [
    "LOSSES",
    "PARAMETERIZATIONS",
    "VARIANCES",
    "GaussianDiffusion",
    "Loss",
    "TorchDenoiser",
    "Parameterization",
    "Variance",
    "FLOW_METHODS",
    "exact_velocity",
    "flow_matching_loss",
    "flow_matching_loss_terms",
    "flow_times",
    "linear_path",
    "sample_flow",
    "velocity_target",
    "SCORE_CONDITIONS",
    "sample_ncsn",
    "dsm_loss",
    "dsm_loss_terms",
    "exact_score_net",
    "geometric_sigmas",
]

# -- samplers ----------------------------------------------------------------------------
from minidiff.diffusion.langevin import (  # noqa: E402
    langevin_corrector,
    sample_annealed_langevin,
    sample_pc,
)
from minidiff.diffusion.samplers import (  # noqa: E402
    SamplerOptions,
    ddim_invert,
    sample_ancestral,
    sample_ddim,
)
from minidiff.diffusion.sde import (  # noqa: E402
    ODE_METHODS,
    sample_dpm_solver_pp_2m,
    sample_dpm_solver_pp_3m,
    sample_ode,
    sample_sde,
)

__all__ += [
    "SamplerOptions",
    "ddim_invert",
    "sample_ancestral",
    "sample_ddim",
    "ODE_METHODS",
    "sample_ode",
    "sample_sde",
    "sample_dpm_solver_pp_2m",
    "sample_dpm_solver_pp_3m",
    "langevin_corrector",
    "sample_annealed_langevin",
    "sample_pc",
]
