"""Waveform diffusion: a `GaussianDiffusion` over (B, 1, S) signals with a DiffWave network.

DiffWave's settings for T = 50 (Kong et al. 2021, sec. 4 / app. B): betas linearly
spaced from 1e-4 to 0.05, the eps-parameterization and the simple loss of Ho et al.
(2020, eq. 14). Sampling is ancestral (Algorithm 2 of Ho et al.) over the 50 steps, or
DDIM (Song et al. 2021) on fewer steps as the fast sampler. Class-conditional models take
the digit label as the conditioner ``y``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from minidiff.diffusion.budget import TrainingLog, check_counts
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.samplers import sample_ancestral, sample_ddim
from minidiff.nn.diffwave import DiffWave, DiffWaveConfig
from minidiff.process import linear_schedule

__all__ = ["AudioDiffusionConfig", "AudioModel", "train_audio", "sample_audio"]

DIFFWAVE_T = 50
DIFFWAVE_BETA = (1e-4, 0.05)


@dataclass(frozen=True)
class AudioDiffusionConfig:
    """Every setting of a waveform diffusion run."""

    channels: int = 48  # DiffWave residual channels
    layers: int = 12
    dilation_cycle: int = 6
    num_classes: int | None = None  # 10 for class-conditional spoken digits
    T: int = DIFFWAVE_T
    batch: int = 16
    steps: int = 2000
    max_seconds: float | None = None  # wall-clock budget
    max_cpu_seconds: float | None = None  # CPU-time budget
    lr: float = 2e-4  # DiffWave's learning rate
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_counts(self, ("channels", "layers", "dilation_cycle", "T", "batch", "steps"))


@dataclass
class AudioModel:
    config: AudioDiffusionConfig
    network: DiffWave
    diffusion: GaussianDiffusion


def build_audio_model(config: AudioDiffusionConfig) -> AudioModel:
    """A fresh DiffWave network (seeded) with DiffWave's T-step linear schedule."""
    torch.manual_seed(config.seed)
    network = DiffWave(
        DiffWaveConfig(
            config.channels, config.layers, config.dilation_cycle, num_classes=config.num_classes
        )
    )
    diffusion = GaussianDiffusion(linear_schedule(config.T, *DIFFWAVE_BETA))
    return AudioModel(config, network, diffusion)


def train_audio(
    config: AudioDiffusionConfig,
    waveforms: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    log_every: int = 50,
    log: Callable[[dict], None] | None = None,
) -> tuple[AudioModel, list[dict]]:
    """Train on (N, 1, S) waveforms (and labels (N,) when class-conditional) with Adam;
    returns the model and ``{"step", "loss", "seconds", "cpu_seconds"}`` records."""
    if (labels is None) != (config.num_classes is None):
        raise ValueError("give labels exactly when config.num_classes is set")
    model = build_audio_model(config)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.network.parameters(), lr=config.lr)
    record = TrainingLog(config.steps, log_every, config.max_seconds, config.max_cpu_seconds, log)
    for step in range(1, config.steps + 1):
        index = torch.randint(0, len(waveforms), (config.batch,), generator=generator)
        y = None if labels is None else labels[index]
        losses = model.diffusion.training_losses(
            model.network, waveforms[index], generator=generator, y=y
        )
        loss = losses["loss"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.network.parameters(), config.grad_clip)
        optimizer.step()
        if record.update(step, loss.item()):
            break
    model.network.eval()
    return model, record.history


@torch.no_grad()
def sample_audio(
    model: AudioModel,
    n: int,
    length: int,
    *,
    labels: torch.Tensor | None = None,
    ddim_steps: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 1, length) waveforms in [-1, 1]: ancestral over all T steps, or DDIM (eta = 0)
    on ``ddim_steps`` steps; ``labels`` (n,) pick the digits of a class-conditional model."""
    if (labels is None) != (model.config.num_classes is None):
        raise ValueError("give labels exactly when the model is class-conditional")
    denoiser = model.network if labels is None else (lambda xt, t: model.network(xt, t, labels))
    shape = (n, 1, length)
    if ddim_steps is None:
        x = sample_ancestral(denoiser, model.diffusion, shape, clip_x0=1.0, generator=generator)
    else:
        x = sample_ddim(
            denoiser, model.diffusion, shape, steps=ddim_steps, clip_x0=1.0, generator=generator
        )
    return x.clamp(-1.0, 1.0)


def config_record(config: AudioDiffusionConfig) -> dict:
    """The config as a JSON-ready dict."""
    return asdict(config)
