"""Layer 2: a 2-D diffusion laboratory in NumPy.

Toy datasets, the Gaussian-mixture oracle (exact density, score and denoiser at every
step t), an MLP with hand-written backprop and Adam, DDPM training (Ho et al. 2020,
Algorithm 1), the ancestral DDPM and DDIM samplers, and sample metrics and plots. The
schedule, the DDIM grid and the reverse variances it uses come from `minidiff.process`.
"""

from minidiff.toy.datasets import DATASETS, DEFAULT_NOISE, eight_gaussians_mixture, make_dataset
from minidiff.toy.metrics import DEFAULT_BANDWIDTHS, energy_distance, mmd, sliced_wasserstein
from minidiff.toy.mixture import ORACLE_OUTPUTS, GaussianMixture
from minidiff.toy.mlp import ACTIVATIONS, MLP, sinusoidal_embedding
from minidiff.toy.optim import Adam, clip_grad_norm, ema_update, global_norm
from minidiff.toy.plots import plot_density, plot_samples, plot_trajectory
from minidiff.toy.sampling import TOY_SAMPLERS, sample_ancestral, sample_ddim
from minidiff.toy.train import (
    DEFAULT_T,
    TrainResult,
    ddpm_loss_and_grads,
    learning_rate,
    train_ddpm,
)

__all__ = [
    "DATASETS",
    "DEFAULT_BANDWIDTHS",
    "DEFAULT_NOISE",
    "ORACLE_OUTPUTS",
    "TOY_SAMPLERS",
    "GaussianMixture",
    "eight_gaussians_mixture",
    "energy_distance",
    "make_dataset",
    "mmd",
    "plot_density",
    "plot_samples",
    "plot_trajectory",
    "sample_ancestral",
    "sample_ddim",
    "sliced_wasserstein",
    "ACTIVATIONS",
    "MLP",
    "sinusoidal_embedding",
    "Adam",
    "clip_grad_norm",
    "ema_update",
    "global_norm",
    "DEFAULT_T",
    "TrainResult",
    "ddpm_loss_and_grads",
    "learning_rate",
    "train_ddpm",
]
