"""Named training presets: data, network, diffusion, training and sampling settings.

A `Preset` is a flat frozen dataclass (one field per setting, so that a command line can
override any of them as ``field=value``); `preset(name)` returns one of `PRESETS`,
`override(preset, ["field=value", ...])` changes fields, parsing each value by the
field's type, and `build_model`, `build_diffusion`, `Preset.train_config` and `describe`
turn a preset into the objects and figures a training run needs.

- ``cifar10``: the DDPM CIFAR-10 run of Ho et al. (2020), as in the paper (sec. 4 and
  appendix B) and, where the paper is silent (LR warmup, gradient clipping, the reverse
  variance), its released code: T = 1000 linear betas 1e-4..0.02, eps-prediction, L_simple,
  sigma_t^2 = beta_t, the 35.7M U-Net with dropout 0.1, random horizontal flips, Adam
  2e-4, batch 128, 5000 warmup steps, gradient norm clipped to 1, EMA 0.9999, 800k steps.
- ``cifar10-small``: the same recipe with `UNet.small_cifar10` (about 1/6 of the FLOPs)
  and 100k steps, for one GPU in hours (see `describe` and the field comments).
- ``digits``: the 8x8 scikit-learn digits padded to 16x16, a tiny U-Net; CPU minutes.
- ``toy2d``: `ToyMLP` on a 2-D data set with `minidiff.toy.toy_schedule`.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import torch

from minidiff.diffusion.gaussian import LOSSES, PARAMETERIZATIONS, VARIANCES, GaussianDiffusion
from minidiff.nn.flops import mlp_forward_flops, unet_forward_flops
from minidiff.nn.mlp import ToyMLP
from minidiff.nn.unet import UNet
from minidiff.process import SCHEDULES, make_schedule, toy_schedule
from minidiff.training.config import MemoryFormat, Precision, TrainConfig

__all__ = [
    "PRESETS",
    "PresetName",
    "MODELS",
    "SAMPLERS",
    "SCHEDULE_NAMES",
    "DATASET_SIZES",
    "Preset",
    "preset",
    "override",
    "build_model",
    "build_diffusion",
    "describe",
]

PresetName = Literal["toy2d", "digits", "cifar10", "cifar10-small"]
PRESETS: tuple[str, ...] = get_args(PresetName)
ModelKind = Literal["unet", "mlp"]
MODELS: tuple[str, ...] = get_args(ModelKind)
Sampler = Literal["ancestral", "ddim"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
SCHEDULE_NAMES: tuple[str, ...] = (*SCHEDULES, "toy")  # "toy": `minidiff.toy.toy_schedule`
# training-set sizes, for the epochs in `describe` (2-D data is drawn fresh: no entry)
DATASET_SIZES = {"cifar10": 50_000, "digits": 1_438}  # digits: the train split


@dataclass(frozen=True)
class Preset:
    """The settings of one training run; see the module docstring for the presets."""

    name: str  # the preset this was built from (kept through overrides)
    # -- data
    dataset: str  # "cifar10", "digits", or a 2-D set of `minidiff.toy.DATASETS`
    image_size: int | None  # side of the (padded) square images; None for 2-D points
    pad_to: int | None  # pad the images to pad_to x pad_to with background; None: as is
    random_flip: bool  # random horizontal flips during training
    # -- model
    model: ModelKind  # "unet" (`UNet`) or "mlp" (`ToyMLP`)
    in_channels: int  # image channels (U-Net) or the data dimension D (MLP)
    base_channels: int  # U-Net: channels of level 0
    channel_mults: tuple[int, ...]  # U-Net: channel multiplier per resolution level
    num_res_blocks: int  # U-Net: residual blocks per level
    attention_resolutions: tuple[int, ...]  # U-Net: resolutions with self-attention
    dropout: float  # U-Net: dropout in the residual blocks
    mlp_hidden: tuple[int, ...]  # MLP: hidden widths
    mlp_embed_dim: int  # MLP: width of the sinusoidal time embedding
    # -- diffusion
    schedule: str  # one of SCHEDULE_NAMES ("toy": the T-scaled linear toy schedule)
    T: int  # number of diffusion steps
    parameterization: str  # what the network predicts: "eps", "x0" or "v"
    variance: str  # reverse variance: "fixed_small", "fixed_large" or "learned_range"
    loss: str  # "simple", "vlb" or "hybrid"
    # -- training (`train_config` builds the `TrainConfig`)
    lr: float  # peak Adam learning rate
    batch_size: int  # examples per optimizer step
    steps: int  # optimizer steps
    warmup_steps: int  # steps of linear learning-rate warmup
    grad_clip: float | None  # global gradient-norm clip; None: off
    ema_decay: float  # decay of the exponential moving average of the weights
    num_bins: int | None  # data levels for the discrete decoder L_0; None: continuous data
    seed: int  # seeds every generator of the run
    # -- sampling
    sampler: Sampler  # "ancestral" (Ho et al. 2020, alg. 2) or "ddim" (Song et al. 2021)
    sampling_steps: int | None  # DDIM steps; None: all T steps
    sampling_eta: float  # DDIM's eta (Song et al. 2021, eq. 16): 0 deterministic, 1 stochastic
    num_samples: int  # samples drawn for a figure or an evaluation
    # -- speed and bookkeeping (passed on to the `TrainConfig`; they do not change the math
    # except precision, which is a trajectory setting of a resumed run)
    precision: Precision = "auto"  # "auto": bf16 autocast on CUDA where supported, else fp32
    memory_format: MemoryFormat = "auto"  # "auto": channels_last on CUDA, else contiguous
    compile: bool = False  # wrap the model's forward in torch.compile
    log_every: int = 100  # one metrics.jsonl line every this many steps
    sample_every: int = 0  # a sample grid (`minidiff.runs.train`) every this many steps; 0: never
    checkpoint_every: int = 5000  # a checkpoint every this many steps; 0: only at the end
    keep_last: int | None = 3  # checkpoints kept; None: all

    def __post_init__(self) -> None:
        choices = {
            "model": MODELS, "schedule": SCHEDULE_NAMES, "parameterization": PARAMETERIZATIONS,
            "variance": VARIANCES, "loss": LOSSES, "sampler": SAMPLERS,
        }  # fmt: skip
        for name, options in choices.items():
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")
        for name in ("in_channels", "base_channels", "num_res_blocks", "mlp_embed_dim", "T",
                     "batch_size", "num_samples"):  # fmt: skip
            _check_int(name, getattr(self, name), low=1)
        for name in ("steps", "warmup_steps", "seed"):
            _check_int(name, getattr(self, name), low=0)
        for name in ("image_size", "pad_to", "sampling_steps"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1)
        if self.sampling_steps is not None and self.sampling_steps > self.T:
            raise ValueError(f"sampling_steps must be <= T = {self.T}, "
                             f"got {self.sampling_steps!r}")  # fmt: skip
        if self.model == "unet" and self.image_size is None:
            raise ValueError("image_size is required for model 'unet', got None")
        eta = self.sampling_eta
        if isinstance(eta, bool) or not (isinstance(eta, (int, float)) and 0.0 <= eta < math.inf):
            raise ValueError(f"sampling_eta must be a finite number >= 0, got {eta!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        self.train_config()  # validates the training settings

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The `TrainConfig` of this preset; ``overrides`` replace any of its settings
        (the fields the preset lacks, e.g. ``betas``, keep `TrainConfig`'s defaults)."""
        settings = dict(
            lr=self.lr, batch_size=self.batch_size, steps=self.steps,
            warmup_steps=self.warmup_steps, grad_clip=self.grad_clip, ema_decay=self.ema_decay,
            num_bins=self.num_bins, seed=self.seed, precision=self.precision,
            memory_format=self.memory_format, compile=self.compile, log_every=self.log_every,
            sample_every=self.sample_every, checkpoint_every=self.checkpoint_every,
            keep_last=self.keep_last,
        )  # fmt: skip
        return TrainConfig(**{**settings, **overrides})


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


_UNET_PAPER = dict(
    model="unet", in_channels=3, base_channels=128, channel_mults=(1, 2, 2, 2),
    num_res_blocks=2, attention_resolutions=(16,), dropout=0.1, mlp_hidden=(128, 128, 128),
    mlp_embed_dim=32,
)  # fmt: skip

_CIFAR10 = Preset(
    name="cifar10",
    dataset="cifar10", image_size=32, pad_to=None,
    random_flip=True,  # app. B: "random horizontal flips during training for CIFAR10"
    **_UNET_PAPER,  # app. B: the 35.7M U-Net (`UNet.ddpm_cifar10`), dropout 0.1
    schedule="linear", T=1000,  # sec. 4: T = 1000, betas linear from 1e-4 to 0.02
    parameterization="eps",  # sec. 3.2, eq. 11: predict eps
    # sec. 3.2: sigma_t^2 = beta_t and beta_tilde_t gave similar results; the released
    # CIFAR-10 run uses beta_t ("fixedlarge"), hence "fixed_large"
    variance="fixed_large",
    loss="simple",  # sec. 3.4, eq. 14: L_simple
    lr=2e-4, batch_size=128, steps=800_000,  # app. B
    warmup_steps=5000, grad_clip=1.0,  # the released code (not stated in the paper)
    ema_decay=0.9999,  # app. B
    num_bins=256,  # sec. 3.3: 8-bit data, discrete decoder
    seed=0,
    sampler="ancestral", sampling_steps=None, sampling_eta=0.0,  # alg. 2
    num_samples=50_000,  # FID on 50k samples
)  # fmt: skip

# fmt: off
_PRESETS: dict[str, Preset] = {
    "cifar10": _CIFAR10,
    # `UNet.small_cifar10` (base 64, mults 1-2-2, one block per level: 4.4M parameters,
    # 2.15 GFLOPs per image, 17% of the paper's); 100k steps at batch 128 (12.8M images,
    # 256 epochs) make 8.3e16 training FLOPs (3 x forward x batch x steps, `describe`):
    # about 2.3 hours at 10 TFLOP/s sustained, a modest share of one GPU's bf16 peak.
    "cifar10-small": replace(
        _CIFAR10, name="cifar10-small", base_channels=64, channel_mults=(1, 2, 2),
        num_res_blocks=1, steps=100_000, sampler="ddim", sampling_steps=100,
        num_samples=10_000,
    ),
    # the 8x8 digits as they are (17 levels, u / 8 - 1 for u in 0..16: num_bins=17 puts
    # the decoder's bins on them), a `UNet.tiny`-sized net (0.7M parameters, levels 8x8
    # and 4x4, attention at 4x4) without dropout. Batch 128 keeps two CPU cores busier
    # than 64 (about 690 vs 475 images/s), and lr 2e-3 goes with it: 2800 steps (250
    # epochs of the train split) take about 9 minutes. DDIM with eta = 1 (stochastic, 50
    # steps) scores clearly better than eta = 0 for this small a network, and as well as
    # 100 steps (benchmarks/digits.py; benchmarks/README.md has the figures).
    "digits": replace(
        _CIFAR10, name="digits", dataset="digits", image_size=8, pad_to=None,
        random_flip=False, in_channels=1, base_channels=32, channel_mults=(1, 2),
        num_res_blocks=1, attention_resolutions=(4,), dropout=0.0, lr=2e-3, batch_size=128,
        steps=2800, warmup_steps=100, ema_decay=0.999, num_bins=17, sampler="ddim",
        sampling_steps=50, sampling_eta=1.0, num_samples=64, log_every=50,
        sample_every=500, checkpoint_every=500,
    ),
    # the 2-D benchmark's settings (`minidiff.toy.train` defaults): ToyMLP, T = 200
    "toy2d": replace(
        _CIFAR10, name="toy2d", dataset="swissroll", image_size=None, pad_to=None,
        random_flip=False, model="mlp", in_channels=2, dropout=0.0, schedule="toy", T=200,
        variance="fixed_small", lr=8e-3, batch_size=256, steps=6000, warmup_steps=200,
        ema_decay=0.995, num_bins=None, num_samples=2000,
    ),
}
# fmt: on


def preset(name: PresetName) -> Preset:
    """The preset called ``name``, one of `PRESETS`."""
    if name in PRESETS:
        return _PRESETS[name]
    else:
        raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")


def _parse(name: str, text: str, kind: Any) -> Any:
    """Parse ``text`` as a value of type ``kind`` (the annotation of field ``name``)."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip().lower() == "none":
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _parse(name, text, option)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0] if len(errors) == 1 else "; ".join(errors))
    if origin is Literal:
        if text in args:
            return text
        raise ValueError(f"bad value {text!r} for field {name!r}: expected one of {args}")
    if origin is tuple:
        items = [item.strip() for item in text.split(",")] if text.strip() else []
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse(name, item, args[0]) for item in items)
        if len(items) != len(args):
            raise ValueError(f"bad value {text!r} for field {name!r}: expected "
                             f"{len(args)} comma-separated values")  # fmt: skip
        return tuple(_parse(name, item, a) for item, a in zip(items, args, strict=True))
    text = text.strip()
    if kind is bool:
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() in truth:
            return truth[text.lower()]
    elif kind is int:
        try:
            return int(text)
        except ValueError:
            pass
    elif kind is float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    elif kind is str:
        if text:
            return text
    type_name = getattr(kind, "__name__", str(kind))
    raise ValueError(f"bad value {text!r} for field {name!r}: expected {type_name}")


def override(base: Preset, assignments: list[str] | tuple[str, ...]) -> Preset:
    """A copy of ``base`` with fields set from ``"field=value"`` strings.

    Values are parsed by the field's type: ``int``, ``float``, ``bool`` (true/false, 1/0,
    yes/no), ``str``, tuples as comma-separated items (``channel_mults=1,2,2``; an empty
    value is the empty tuple), ``none`` for an optional field.

    Raises:
        ValueError: an assignment without ``=``, an unknown field (the message lists the
            fields), a value that does not parse as the field's type (naming the field, the
            value and the type), or settings the `Preset` refuses.
    """
    hints = get_type_hints(Preset)
    names = tuple(f.name for f in fields(Preset) if f.name != "name")
    changes: dict[str, Any] = {}
    for assignment in assignments:
        field, sep, text = assignment.partition("=")
        field = field.strip()
        if not sep:
            raise ValueError(f"override {assignment!r} must have the form field=value")
        if field not in names:
            raise ValueError(f"unknown field {field!r}; expected one of {names}")
        changes[field] = _parse(field, text, hints[field])
    return replace(base, **changes)


def build_model(p: Preset, generator: torch.Generator | None = None) -> UNet | ToyMLP:
    """The network of preset ``p``: a `UNet` or a `ToyMLP` (``generator`` draws the MLP's
    initial weights; the U-Net draws from torch's global generator). Build it under
    ``with torch.device("meta"):`` to count without allocating."""
    if p.model == "unet":
        return UNet(
            in_channels=p.in_channels, base_channels=p.base_channels,
            channel_mults=p.channel_mults, num_res_blocks=p.num_res_blocks,
            attention_resolutions=p.attention_resolutions, dropout=p.dropout,
            image_size=p.image_size,
        )  # fmt: skip
    elif p.model == "mlp":
        return ToyMLP(p.in_channels, p.mlp_hidden, p.mlp_embed_dim, generator=generator)
    else:
        raise ValueError(f"unknown model {p.model!r}; expected one of {MODELS}")


def build_diffusion(p: Preset) -> GaussianDiffusion:
    """The `GaussianDiffusion` of preset ``p``: its schedule with T steps ("toy":
    `minidiff.toy.toy_schedule`, else `minidiff.process.make_schedule` with the paper's
    defaults), parameterization, variance and loss."""
    schedule = toy_schedule(p.T) if p.schedule == "toy" else make_schedule(p.schedule, p.T)
    return GaussianDiffusion(schedule, p.parameterization, p.variance, p.loss)


def describe(p: Preset) -> dict[str, Any]:
    """The size and cost of preset ``p``'s run, without running anything.

    Convention: a training step costs 3 x the forward FLOPs per example x the batch size
    (the backward pass ~ 2 x the forward); FLOP = 2 multiply-accumulates
    (`minidiff.nn.flops`). The U-Net is built on the meta device (no memory, no weights).

    Returns:
        A dict with ``name``, ``model``, ``parameters``, ``forward_flops_per_example``,
        ``train_flops_per_step``, ``train_flops_total``, ``examples_seen`` (batch x
        steps) and ``epochs`` (examples seen / training-set size; None for 2-D data,
        which is drawn fresh).
    """
    if p.model == "unet":
        with torch.device("meta"):
            model = build_model(p)
        forward = unet_forward_flops(model)
    else:
        model = build_model(p, generator=torch.Generator().manual_seed(0))
        forward = mlp_forward_flops(model)
    per_step = 3 * forward * p.batch_size
    seen = p.batch_size * p.steps
    size = DATASET_SIZES.get(p.dataset)
    return {
        "name": p.name,
        "model": p.model,
        "parameters": sum(q.numel() for q in model.parameters()),
        "forward_flops_per_example": forward,
        "train_flops_per_step": per_step,
        "train_flops_total": per_step * p.steps,
        "examples_seen": seen,
        "epochs": None if size is None else seen / size,
    }
