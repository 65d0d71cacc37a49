"""The kinds of network and of diffusion a preset's sections may hold, and what builds them.

Each kind is one entry of its table: the kind's name, its config class, and what builds
it (`ModelKind` in `MODEL_KINDS`, `DiffusionKind` in `DIFFUSION_KINDS`). A model kind says
whether it denoises ``"tokens"`` or ``"continuous"`` data, and a `minidiff.configs.Preset`
pairs it with a diffusion kind of the same data. ``gaussian`` is `DiffusionConfig`, the
forward process of Ho et al. (2020); ``absorbing`` and ``uniform`` are the discrete
processes of `minidiff.discrete.configs`. `build_model` and `build_diffusion` turn a
preset's sections into the network and the process; `minidiff.configs` re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from minidiff.applications.text import CaptionUNetConfig, TextConditionedUNet
from minidiff.diffusion.gaussian import (
    LOSSES,
    PARAMETERIZATIONS,
    VARIANCES,
    GaussianDiffusion,
    Loss,
    Parameterization,
    Variance,
)
from minidiff.discrete.configs import AbsorbingDiffusionConfig, UniformDiffusionConfig
from minidiff.nn.diffwave import DiffWave, DiffWaveConfig
from minidiff.nn.flops import mlp_forward_flops, unet_forward_flops
from minidiff.nn.mlp import ToyMLP, ToyMLPConfig
from minidiff.nn.sequence import SequenceDenoiserConfig, build_sequence_denoiser
from minidiff.nn.unet import UNet, UNetConfig
from minidiff.process import SCHEDULES, Schedule, linear_schedule, make_schedule, toy_schedule

if TYPE_CHECKING:
    from minidiff.configs import Preset

__all__ = [
    "MODELS",
    "MODEL_KINDS",
    "MODEL_CONFIGS",
    "IMAGE_MODELS",
    "DIFFUSIONS",
    "DIFFUSION_KINDS",
    "DIFFUSION_CONFIGS",
    "SCHEDULE_NAMES",
    "DataKind",
    "ModelKind",
    "DiffusionKind",
    "DiffusionConfig",
    "build_model",
    "build_diffusion",
    "describe",
    "DATASET_SIZES",
    "check_int",
    "kind_of",
    "OUTPUT_FIELDS",
]

# "toy": `minidiff.process.toy_schedule`; "diffwave": DiffWave's linear betas 1e-4..0.05
# for T = 50 (Kong et al. 2021, sec. 4), not rescaled with T
SCHEDULE_NAMES: tuple[str, ...] = (*SCHEDULES, "toy", "diffwave")
DIFFWAVE_BETA = (1e-4, 0.05)
DataKind = Literal["continuous", "tokens"]  # what a network denoises and a process corrupts
# training-set sizes, for the epochs in `describe` (2-D data is drawn fresh: no entry)
# (digits: the train split)
DATASET_SIZES = {"cifar10": 50_000, "digits": 1_438, "fashion-mnist": 60_000}


def check_int(name: str, value: Any, low: int) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class DiffusionConfig:
    """The forward process and what the network learns; `build` gives the diffusion."""

    schedule: str = "linear"  # one of SCHEDULE_NAMES ("toy": the T-scaled linear toy schedule)
    T: int = 1000  # number of diffusion steps
    parameterization: Parameterization = "eps"  # what the network predicts: eps, x0 or v
    variance: Variance = "fixed_large"  # reverse variance: fixed_small, fixed_large, learned_range
    loss: Loss = "simple"  # "simple", "vlb" or "hybrid"

    def __post_init__(self) -> None:
        choices = {"schedule": SCHEDULE_NAMES, "parameterization": PARAMETERIZATIONS,
                   "variance": VARIANCES, "loss": LOSSES}  # fmt: skip
        for name, options in choices.items():
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")
        check_int("T", self.T, low=21 if self.schedule == "toy" else 1)
        if self.variance == "learned_range" and self.loss == "simple":
            raise ValueError(
                "variance 'learned_range' needs loss 'vlb' or 'hybrid': L_simple does not "
                "depend on the variance, which would stay untrained (Nichol & Dhariwal "
                "2021, sec. 3.1), got loss 'simple'"
            )

    def build_schedule(self) -> Schedule:
        """The noise schedule: `minidiff.process.toy_schedule` for "toy", else
        `minidiff.process.make_schedule` with the paper's defaults."""
        if self.schedule == "toy":
            return toy_schedule(self.T)
        if self.schedule == "diffwave":
            return linear_schedule(self.T, *DIFFWAVE_BETA)
        return make_schedule(self.schedule, self.T)

    def build(self) -> GaussianDiffusion:
        """The `GaussianDiffusion` of these settings."""
        return GaussianDiffusion(self.build_schedule(), self.parameterization, self.variance,
                                 self.loss)  # fmt: skip


@dataclass(frozen=True)
class ModelKind:
    """One kind of network a preset's model section may hold (an entry of `MODEL_KINDS`)."""

    config: type  # the section's frozen dataclass
    build: Callable[[Any, torch.Generator | None], nn.Module]  # (config, generator) -> net
    sample_shape: Callable[[Any], tuple[int, ...]]  # config -> the shape of one example
    data: DataKind = "continuous"  # what it denoises: "continuous" values or "tokens"
    flops: Callable[[nn.Module], int] | None = None  # forward FLOPs per example, if counted
    # (output field, data width field): a learned variance doubles the output to twice the
    # data's width (`build_model`); None: no variance output, a learned variance is refused
    output: tuple[str, str] | None = None
    images: bool = False  # (C, H, W) images in [-1, 1]: `IMAGE_MODELS`


@dataclass(frozen=True)
class DiffusionKind:
    """One kind of process a preset's diffusion section may hold (`DIFFUSION_KINDS`)."""

    config: type  # the section's frozen dataclass
    build: Callable[[Any], Any]  # the preset -> the process the Trainer and samplers take
    data: DataKind = "continuous"  # the data it corrupts, matched with the model kind's


def _counted_flops(example: Callable[[Any], tuple[torch.Tensor, ...]]):
    """Forward FLOPs per example of a network ``model(*example(model.config))``, counted
    by `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-accumulate)."""

    def flops(model: nn.Module) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*example(model.config))
        return int(counter.get_total_flops())

    return flops


def _one(c) -> tuple[torch.Tensor, ...]:
    """One example input of a sequence or DiffWave network of config ``c`` (for FLOPs)."""
    if isinstance(c, SequenceDenoiserConfig):
        return torch.zeros(1, c.length, dtype=torch.int64), torch.full((1,), 0.5)
    y = () if c.num_classes is None else (torch.zeros(1, dtype=torch.int64),)
    return torch.zeros(1, 1, c.length), torch.ones(1, dtype=torch.int64), *y


# fmt: off
MODEL_KINDS: dict[str, ModelKind] = {
    "unet": ModelKind(
        UNetConfig, lambda c, g: UNet.from_config(c),
        lambda c: (c.in_channels, c.image_size, c.image_size), flops=unet_forward_flops,
        output=("out_channels", "in_channels"), images=True),
    "mlp": ModelKind(
        ToyMLPConfig, lambda c, g: ToyMLP.from_config(c, generator=g), lambda c: (c.dim,),
        flops=mlp_forward_flops, output=("out_dim", "dim")),
    # a U-Net with a caption encoder and cross-attention (`minidiff.applications.text`);
    # its FLOPs are its U-Net's (the caption encoder's are < 1% of them here)
    "caption-unet": ModelKind(
        CaptionUNetConfig, lambda c, g: TextConditionedUNet.from_config(c),
        lambda c: (c.in_channels, c.image_size, c.image_size),
        flops=lambda m: unet_forward_flops(m.unet), output=("out_channels", "in_channels"),
        images=True),
    "sequence": ModelKind(SequenceDenoiserConfig, lambda c, g: build_sequence_denoiser(c),
                          lambda c: (c.length,), data="tokens", flops=_counted_flops(_one)),
    "diffwave": ModelKind(DiffWaveConfig, lambda c, g: DiffWave(c), lambda c: (1, c.length),
                          flops=_counted_flops(_one)),
}
DIFFUSION_KINDS: dict[str, DiffusionKind] = {
    "gaussian": DiffusionKind(DiffusionConfig, lambda p: p.diffusion.build()),
    "absorbing": DiffusionKind(AbsorbingDiffusionConfig,
                               lambda p: p.diffusion.build(p.model.vocab_size), data="tokens"),
    "uniform": DiffusionKind(UniformDiffusionConfig,
                             lambda p: p.diffusion.build(p.model.vocab_size), data="tokens"),
}
# fmt: on
MODELS: tuple[str, ...] = tuple(MODEL_KINDS)
DIFFUSIONS: tuple[str, ...] = tuple(DIFFUSION_KINDS)
MODEL_CONFIGS = {kind: entry.config for kind, entry in MODEL_KINDS.items()}
DIFFUSION_CONFIGS = {kind: entry.config for kind, entry in DIFFUSION_KINDS.items()}
# settings a network's output width takes from the variance (`build_model`)
OUTPUT_FIELDS = {kind: e.output[0] for kind, e in MODEL_KINDS.items() if e.output is not None}
IMAGE_MODELS = tuple(kind for kind, e in MODEL_KINDS.items() if e.images)


def kind_of(section: str, value: Any, configs: dict[str, type]) -> str:
    """The kind whose config class ``value`` is an instance of."""
    for kind, cls in configs.items():
        if type(value) is cls:
            return kind
    expected = " or ".join(cls.__name__ for cls in configs.values())
    raise TypeError(f"{section} must be a {expected}, got {type(value).__name__}")


def build_model(p: Preset, generator: torch.Generator | None = None) -> nn.Module:
    """The network of preset ``p``, built by its kind's entry of `MODEL_KINDS` (``generator``
    draws the MLP's initial weights; the others draw from torch's global generator). With
    a learned variance a U-Net's or MLP's output has twice the data's channels: the
    prediction, then the interpolation weight of the log variance (Nichol & Dhariwal 2021,
    sec. 3.1). Build it under ``with torch.device("meta"):`` to count without allocating."""
    kind, config = MODEL_KINDS[p.model_kind], p.model
    if getattr(p.diffusion, "variance", None) == "learned_range":
        if kind.output is None:
            raise ValueError(f"{type(config).__name__} has no variance output: use "
                             "diffusion.variance fixed_small or fixed_large")  # fmt: skip
        out, width = kind.output
        config = replace(config, **{out: 2 * getattr(config, width)})
    return kind.build(config, generator)


def build_diffusion(p: Preset) -> Any:
    """The process of preset ``p``, built by its kind's entry of `DIFFUSION_KINDS`: a
    `GaussianDiffusion`, a `minidiff.discrete.MaskedDiffusion` or a `minidiff.discrete.D3PM`."""
    return DIFFUSION_KINDS[p.diffusion_kind].build(p)


def describe(p: Preset, model: nn.Module | None = None) -> dict[str, Any]:
    """The size and cost of preset ``p``'s run, without running anything.

    Convention: a training step costs 3 x the forward FLOPs per example x the batch size
    (the backward pass ~ 2 x the forward); FLOP = 2 multiply-accumulates
    (`minidiff.nn.flops`). The network is ``model`` if given (`build_model` of ``p``), else
    built here, a U-Net on the meta device (no memory, no weights).

    Returns:
        A dict with ``name``, ``model``, ``parameters``, ``forward_flops_per_example``,
        ``train_flops_per_step``, ``train_flops_total``, ``examples_seen`` (batch x
        steps) and ``epochs`` (examples seen / training-set size; None for 2-D data,
        which is drawn fresh).
    """
    if model is None and p.model_kind in IMAGE_MODELS:
        with torch.device("meta"):
            model = build_model(p)
    elif model is None:
        model = build_model(p, generator=torch.Generator().manual_seed(0))
    flops = MODEL_KINDS[p.model_kind].flops
    forward = None if flops is None else flops(model)  # not counted for this kind: None
    batch, steps = p.training.batch_size, p.training.steps
    per_step = None if forward is None else 3 * forward * batch
    seen = batch * steps
    size = DATASET_SIZES.get(p.data.dataset)
    return {
        "name": p.name,
        "model": p.model_kind,
        "parameters": sum(q.numel() for q in model.parameters()),
        "forward_flops_per_example": forward,
        "train_flops_per_step": per_step,
        "train_flops_total": None if per_step is None else per_step * steps,
        "examples_seen": seen,
        "epochs": None if size is None else seen / size,
    }
