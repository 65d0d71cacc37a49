"""Super-resolution by a conditional diffusion model: SR3 and its residual variant SRDiff.

- SR3 (Saharia et al. 2021, "Image super-resolution via iterative refinement", sec. 2.4):
  the U-Net sees x_t of the high-resolution image concatenated, channel-wise, with the
  bicubically upsampled low-resolution image, and predicts eps (``target="image"``).
- SRDiff (Li et al. 2022, "SRDiff: single image super-resolution with diffusion
  probabilistic models", sec. 3.2): the same network, but the diffused x_0 is the residual
  x_high - up(x_low); the sample is up(x_low) + the sampled residual (``target="residual"``).
- Noise augmentation of the low-resolution input (Saharia et al. 2021, sec. 2.4; Ho et al.
  2022, "Cascaded diffusion models", sec. 4.1): x_low + aug_sigma z before upsampling. One
  function, `low_res_condition`, builds the condition in training (`superres_loss`) and in
  sampling (`upscale`), so the two cannot apply it differently.

Down-sampling is the mean over factor x factor blocks (area), up-sampling bicubic.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from minidiff.atomic import write_file
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.samplers import sample_ddim
from minidiff.nn.unet import UNet, UNetConfig
from minidiff.process import make_schedule
from minidiff.training.ema import EMA

__all__ = [
    "SR_TARGETS",
    "SuperResTarget",
    "SuperResConfig",
    "SUPERRES_PRESETS",
    "SuperResNet",
    "downsample",
    "upsample",
    "low_res_condition",
    "superres_loss",
    "train_superres",
    "upscale",
    "SUPERRES_FILE",
    "save_superres",
    "load_superres",
]

SUPERRES_FILE = "superres.pt"  # a super-resolution run folder holds this one file

SuperResTarget = Literal["image", "residual"]
SR_TARGETS: tuple[str, ...] = get_args(SuperResTarget)


def _small_unet(image_size: int) -> UNetConfig:
    return UNetConfig(in_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                      attention_resolutions=(), dropout=0.0, image_size=image_size)  # fmt: skip


@dataclass(frozen=True)
class SuperResConfig:
    """A super-resolution run: the data, the network, the diffusion, training and sampling."""

    dataset: str = "fashion-mnist"  # "fashion-mnist" (28 x 28) or "digits" (8 x 8)
    factor: int = 2  # high / low resolution: 2 (14 -> 28), 4 (7 -> 28)
    target: SuperResTarget = "residual"  # "image": SR3 as written; "residual": SRDiff
    aug_sigma: float = 0.0  # sd of the noise added to the low-res input (both phases)
    model: UNetConfig = field(default_factory=lambda: _small_unet(28))  # for 1 channel
    schedule: str = "cosine"  # `minidiff.process.make_schedule` name
    T: int = 1000
    steps: int = 1500  # training steps
    batch_size: int = 64
    lr: float = 1e-3
    ema_decay: float = 0.995
    seed: int = 0
    sampling_steps: int = 50  # DDIM jumps of `upscale`
    sampling_eta: float = 1.0

    def __post_init__(self) -> None:
        if self.target not in SR_TARGETS:
            raise ValueError(f"target must be one of {SR_TARGETS}, got {self.target!r}")
        size = self.model.image_size
        if not isinstance(self.factor, int) or self.factor < 2 or size % self.factor:
            raise ValueError(f"factor must be an integer >= 2 dividing the image size {size}, "
                             f"got {self.factor!r}")  # fmt: skip
        if not (isinstance(self.aug_sigma, (int, float)) and 0 <= self.aug_sigma < math.inf):
            raise ValueError(f"aug_sigma must be a finite number >= 0, got {self.aug_sigma!r}")

    def diffusion(self) -> GaussianDiffusion:
        """The eps-prediction diffusion of this run."""
        return GaussianDiffusion(make_schedule(self.schedule, self.T))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SuperResConfig:
        data = dict(data)
        model = dict(data.pop("model"))
        for key in ("channel_mults", "attention_resolutions"):
            model[key] = tuple(model[key])
        return cls(model=UNetConfig(**model), **data)


SUPERRES_PRESETS: dict[str, SuperResConfig] = {
    # Fashion-MNIST 14 -> 28 and 7 -> 28 with the SRDiff residual (a 0.65M-parameter U-Net,
    # levels 28 and 14, no attention); 1500 steps of batch 64 (benchmarks/README.md has
    # what 300 steps of batch 16 reach)
    "fashion-mnist-sr2": SuperResConfig(factor=2),
    "fashion-mnist-sr4": SuperResConfig(factor=4),
    # the 8x8 digits from 4x4: a minute of CPU, for tests and the tutorial
    "digits-sr2": SuperResConfig(
        dataset="digits", factor=2, model=_small_unet(8), steps=600, batch_size=128, lr=2e-3
    ),  # fmt: skip
}


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The mean over factor x factor blocks: (B, C, H, W) -> (B, C, H / f, W / f)."""
    return F.avg_pool2d(x, factor)


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic up-sampling (B, C, h, w) -> (B, C, f h, f w) (half-pixel centres)."""
    return F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)


def low_res_condition(
    low: torch.Tensor, factor: int, aug_sigma: float, generator: torch.Generator | None
) -> torch.Tensor:
    """The network's condition: up(x_low + aug_sigma z), z ~ N(0, I) drawn first from
    ``generator`` (none drawn when aug_sigma = 0). Training and sampling both call this."""
    if aug_sigma > 0:
        z = torch.randn(low.shape, generator=generator, dtype=low.dtype, device=low.device)
        low = low + aug_sigma * z
    return upsample(low, factor)


class SuperResNet(nn.Module):
    """A `UNet` on [x_t, condition] (2C channels in, C out): SR3's concatenation."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        c = config.in_channels
        self.unet = UNet.from_config(replace(config, in_channels=2 * c, out_channels=c))

    def forward(self, xt: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([xt, condition], dim=1), t)


def _x0(high: torch.Tensor, condition: torch.Tensor, target: str) -> torch.Tensor:
    return high - condition if target == "residual" else high


def superres_loss(
    network: SuperResNet,
    diffusion: GaussianDiffusion,
    high: torch.Tensor,
    config: SuperResConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The mean L_simple (Ho et al. 2020, eq. 14) of a batch of high-resolution images
    (B, C, H, W): condition = `low_res_condition`(downsample(high)), then t, eps and the
    eps-prediction loss on x_0 = high (SR3) or high - condition (SRDiff)."""
    condition = low_res_condition(downsample(high, config.factor), config.factor,
                                  config.aug_sigma, generator)  # fmt: skip
    x0 = _x0(high, condition, config.target)
    losses = diffusion.training_losses(
        lambda xt, t: network(xt, t, condition), x0, generator=generator, num_bins=None
    )
    return losses["loss"].mean()


def train_superres(
    config: SuperResConfig, high: torch.Tensor, *, progress: bool = False
) -> tuple[SuperResNet, list[float]]:
    """Train a `SuperResNet` on the images ``high`` (N, C, H, W) with AdamW and an EMA.

    Returns:
        the network holding the EMA weights (eval mode) and the loss of each step.
    """
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        network = SuperResNet(config.model)
    diffusion = config.diffusion()
    ema = EMA(network, config.ema_decay)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr)
    losses = []
    steps = range(config.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="superres")
    for _ in steps:
        batch = high[torch.randint(len(high), (config.batch_size,), generator=generator)]
        loss = superres_loss(network, diffusion, batch, config, generator)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        ema.update(network)
        losses.append(loss.item())
    ema.copy_to(network)
    return network.eval(), losses


@torch.no_grad()
def upscale(
    network: nn.Module,
    diffusion: GaussianDiffusion,
    low: torch.Tensor,
    config: SuperResConfig,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample high-resolution images for ``low`` (B, C, h, w): condition =
    `low_res_condition`(low), DDIM (``config.sampling_steps``, ``sampling_eta``) on
    ``network(x_t, t, condition)``, plus the condition for SRDiff; clamped to [-1, 1].

    Returns:
        (B, C, factor h, factor w).
    """
    condition = low_res_condition(low, config.factor, config.aug_sigma, generator)
    clip = 2.0 if config.target == "residual" else 1.0  # a residual of [-1, 1] images
    x = sample_ddim(lambda xt, t: network(xt, t, condition), diffusion, tuple(condition.shape),
                    steps=config.sampling_steps, eta=config.sampling_eta, clip_x0=clip,
                    generator=generator, dtype=low.dtype, device=low.device)  # fmt: skip
    if config.target == "residual":
        x = x + condition
    return x.clamp(-1.0, 1.0)


def save_superres(folder: str | os.PathLike, network: SuperResNet, config: SuperResConfig) -> Path:
    """Write ``folder/superres.pt`` (the config as a dict and the weights), atomically;
    the folder is created if needed. Returns the file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {"format": "minidiff-superres", "config": config.to_dict(),
             "weights": network.state_dict()}  # fmt: skip
    write_file(folder / SUPERRES_FILE, lambda f: torch.save(state, f))
    return folder / SUPERRES_FILE


def load_superres(path: str | os.PathLike) -> tuple[SuperResNet, SuperResConfig]:
    """The network (eval mode) and config of a `save_superres` folder (or its file).

    Raises:
        FileNotFoundError: no ``superres.pt`` there.
        ValueError: a file that is not a super-resolution run.
    """
    path = Path(path)
    file = path / SUPERRES_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no super-resolution run at {path} (expected {SUPERRES_FILE})")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != "minidiff-superres":
        raise ValueError(f"{file} is not a minidiff super-resolution run")
    config = SuperResConfig.from_dict(state["config"])
    network = SuperResNet(config.model)
    network.load_state_dict(state["weights"])
    return network.eval(), config
