"""Named training presets, each composed of sections: data, model, diffusion, training,
sampling.

A `Preset` holds one frozen dataclass per section, and each section is (or builds) the
object it configures:

- ``data``: `DataConfig` (the data set and how it is fed);
- ``model``, ``diffusion``: the config of one kind of network and of process
  (`minidiff.kinds`: `MODEL_KINDS`, `DIFFUSION_KINDS`; re-exported here with
  `build_model`, `build_diffusion` and `describe`);
- ``training``: the `minidiff.training.TrainConfig` itself;
- ``sampling``: `SamplingConfig` (the sampler of figures and evaluations).

`preset(name)` returns one of `PRESETS`; `override(p, ["section.field=value", ...])`
changes settings, parsing each value by its field's type (a bare ``field=value`` works
where the name is unique); `build_model`, `build_diffusion` and `describe` turn a preset
into the network, the diffusion and its size and cost. Fields declared with
`minidiff.training.config.resumable` (the bookkeeping of training, all of sampling) may
change when a run is resumed.

- ``cifar10``: the DDPM CIFAR-10 run of Ho et al. (2020), as in the paper (sec. 4 and
  appendix B) and, where the paper is silent (LR warmup, gradient clipping, the reverse
  variance), its released code: T = 1000 linear betas 1e-4..0.02, eps-prediction, L_simple,
  sigma_t^2 = beta_t, the 35.7M U-Net with dropout 0.1, random horizontal flips, Adam
  2e-4, batch 128, 5000 warmup steps, gradient norm clipped to 1, EMA 0.9999, 800k steps.
- ``cifar10-small``: the same recipe with `UNet.small_cifar10` (about 1/6 of the FLOPs)
  and 100k steps, for one GPU in hours (see `describe` and the comments).
- ``digits``: the 8x8 scikit-learn digits, a tiny U-Net; CPU minutes.
- ``digits-cond``, ``cifar10-cond``: ``digits`` and ``cifar10`` conditioned on the class
  (``model.num_classes=10``), labels dropped with probability ``training.p_uncond`` for
  classifier-free guidance (Ho & Salimans 2022); sampled with ``sampling.guidance``.
- ``toy2d``: `ToyMLP` on a 2-D data set with `minidiff.process.toy_schedule`.
- ``digits-caption``: ``digits`` conditioned on captions (text-to-image in miniature): a
  `minidiff.applications.text.CaptionUNetConfig` (a small caption encoder, cross-attention
  at 4x4, the vocabulary of the digit captions), trained on (image, caption) pairs of
  `minidiff.applications.captions.caption_pairs`, captions dropped to the empty one with
  probability ``training.p_uncond``.
- ``text-kjv``: a dilated-convolution denoiser of characters of the King James Bible with
  the absorbing diffusion of MDLM (Sahoo et al. 2024); ``audio``: a DiffWave network
  (Kong et al. 2021) on synthetic tones with its T = 50 schedule; ``audio-digits``: the
  same, class-conditional, on the spoken digits of espeak-ng.
- ``fashion-mnist``: Fashion-MNIST 28x28 with a small U-Net, for inpainting and anomaly
  detection on two CPU cores.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

from minidiff.applications.captions import WordTokenizer
from minidiff.applications.text import CaptionUNetConfig
from minidiff.data.text import VOCAB
from minidiff.discrete.configs import AbsorbingDiffusionConfig
from minidiff.kinds import (
    DATASET_SIZES,
    DIFFUSION_CONFIGS,
    DIFFUSION_KINDS,
    DIFFUSIONS,
    IMAGE_MODELS,
    MODEL_CONFIGS,
    MODEL_KINDS,
    MODELS,
    OUTPUT_FIELDS,
    SCHEDULE_NAMES,
    DiffusionConfig,
    DiffusionKind,
    ModelKind,
    build_diffusion,
    build_model,
    check_int,
    describe,
    kind_of,
)
from minidiff.nn.diffwave import DiffWaveConfig
from minidiff.nn.mlp import ToyMLPConfig
from minidiff.nn.sequence import SequenceDenoiserConfig
from minidiff.nn.unet import UNetConfig
from minidiff.sections import assign
from minidiff.training.config import TrainConfig, resumable

__all__ = [
    "PRESETS",
    "PresetName",
    "MODELS",
    "MODEL_KINDS",
    "IMAGE_MODELS",
    "DIFFUSIONS",
    "DIFFUSION_KINDS",
    "ModelKind",
    "DiffusionKind",
    "SAMPLERS",
    "SCHEDULE_NAMES",
    "DATASET_SIZES",
    "DataConfig",
    "DiffusionConfig",
    "SamplingConfig",
    "Preset",
    "preset",
    "override",
    "build_model",
    "build_diffusion",
    "describe",
]

PresetName = Literal[
    "toy2d", "digits", "cifar10", "cifar10-small", "digits-cond", "cifar10-cond",
    "digits-caption", "text-kjv", "audio", "audio-digits", "fashion-mnist",
]  # fmt: skip
PRESETS: tuple[str, ...] = get_args(PresetName)
Sampler = Literal["ancestral", "ddim"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
# settings `override` leaves alone: the name, and the output width `build_model` derives
FIXED_FIELDS = ("name", "model.out_channels", "model.out_dim")
# data sets with class labels: their classes
LABELLED_DATASETS = {"cifar10": 10, "digits": 10, "fashion-mnist": 10, "spoken-digits": 10}


@dataclass(frozen=True)
class DataConfig:
    """The data set of a run and how it is fed (`minidiff.runs.training_data`)."""

    dataset: str  # "cifar10", "digits", "fashion-mnist", or a 2-D set of `minidiff.toy.DATASETS`
    pad_to: int | None = None  # pad the images to pad_to x pad_to with background; None: as is
    random_flip: bool = False  # random horizontal flips during training

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a non-empty string, got {self.dataset!r}")
        if self.pad_to is not None:
            check_int("pad_to", self.pad_to, low=1)


@dataclass(frozen=True)
class SamplingConfig:
    """How figures and evaluations sample (`minidiff.runs.sample`); every setting may
    change when a run is resumed."""

    sampler: Sampler = resumable("ancestral")  # ancestral (Ho et al. 2020, alg. 2) or ddim
    sampling_steps: int | None = resumable(None)  # DDIM steps; None: all T steps
    sampling_eta: float = resumable(0.0)  # DDIM's eta (Song et al. 2021, eq. 16): 0 deterministic
    num_samples: int = resumable(64)  # samples drawn for a figure or an evaluation
    # classifier-free guidance scale s of a class-conditional run (`minidiff.applications.
    # guidance`): 0 unconditional, 1 conditional; 2 = w = 1 of Ho & Salimans (2022, eq. 6)
    guidance: float = resumable(2.0)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        check_int("num_samples", self.num_samples, low=1)
        if self.sampling_steps is not None:
            check_int("sampling_steps", self.sampling_steps, low=1)
        eta = self.sampling_eta
        if isinstance(eta, bool) or not (isinstance(eta, (int, float)) and 0.0 <= eta < math.inf):
            raise ValueError(f"sampling_eta must be a finite number >= 0, got {eta!r}")
        s = self.guidance
        if isinstance(s, bool) or not (isinstance(s, (int, float)) and 0.0 <= s < math.inf):
            raise ValueError(f"guidance must be a finite number >= 0, got {s!r}")


@dataclass(frozen=True)
class Preset:
    """The settings of one training run, by section; see the module docstring."""

    name: str  # the preset this was built from (kept through overrides)
    data: DataConfig
    model: Any  # a config of `MODEL_KINDS`; a U-Net's or MLP's output follows the variance
    diffusion: Any  # a config of `DIFFUSION_KINDS`
    training: TrainConfig
    sampling: SamplingConfig

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        sections = {"data": DataConfig, "training": TrainConfig, "sampling": SamplingConfig}
        for name, kind in sections.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")  # fmt: skip
        model, diffusion = self.model_kind, self.diffusion_kind  # type checks
        if MODEL_KINDS[model].data != DIFFUSION_KINDS[diffusion].data:
            raise ValueError(f"model kind {model!r} denoises {MODEL_KINDS[model].data} data, "
                             f"but diffusion kind {diffusion!r} corrupts "
                             f"{DIFFUSION_KINDS[diffusion].data} data")  # fmt: skip
        if isinstance(self.model, UNetConfig):
            self.model.check()
        out = OUTPUT_FIELDS.get(model)
        if out is not None and getattr(self.model, out) is not None:
            raise ValueError(f"model.{out} must be None (build_model sets it from the "
                             f"variance), got {getattr(self.model, out)!r}")  # fmt: skip
        self._check_labels()
        steps = self.sampling.sampling_steps
        if steps is not None and steps > self.diffusion.T:
            raise ValueError(f"sampling_steps must be <= T = {self.diffusion.T}, got {steps!r}")
        if diffusion != "gaussian" and (self.sampling.sampler != "ancestral"
                                        or self.training.num_bins is not None):  # fmt: skip
            raise ValueError(f"diffusion kind {diffusion!r} needs sampling.sampler ancestral "
                             f"and training.num_bins none, got {self.sampling.sampler!r} and "
                             f"{self.training.num_bins!r}")  # fmt: skip

    def _check_labels(self) -> None:
        classes = getattr(self.model, "num_classes", None)
        labelled = LABELLED_DATASETS.get(self.data.dataset)
        if classes is not None and classes != labelled:  # labels only where the data has them
            raise ValueError(f"model.num_classes must be None or, for a labelled data set "
                             f"{tuple(LABELLED_DATASETS)}, its number of classes; got "
                             f"{classes!r} for {self.data.dataset!r}")  # fmt: skip

    @property
    def model_kind(self) -> str:
        """The kind of `MODEL_KINDS` the model section builds (``"unet"``, ``"mlp"``, ...)."""
        return kind_of("model", self.model, MODEL_CONFIGS)

    @property
    def diffusion_kind(self) -> str:
        """The kind of `DIFFUSION_KINDS` of the diffusion section (``"gaussian"``, ...)."""
        return kind_of("diffusion", self.diffusion, DIFFUSION_CONFIGS)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one example: (C, H, W) for the U-Net, (D,) for the MLP, (L,)
        tokens for a sequence denoiser, (1, S) for a waveform."""
        return MODEL_KINDS[self.model_kind].sample_shape(self.model)


_CIFAR10 = Preset(
    name="cifar10",
    # app. B: "random horizontal flips during training for CIFAR10"
    data=DataConfig("cifar10", pad_to=None, random_flip=True),
    model=UNetConfig(),  # app. B: the 35.7M U-Net (`UNet.ddpm_cifar10`), dropout 0.1
    diffusion=DiffusionConfig(
        schedule="linear", T=1000,  # sec. 4: T = 1000, betas linear from 1e-4 to 0.02
        parameterization="eps",  # sec. 3.2, eq. 11: predict eps
        # sec. 3.2: sigma_t^2 = beta_t and beta_tilde_t gave similar results; the released
        # CIFAR-10 run uses beta_t ("fixedlarge"), hence "fixed_large"
        variance="fixed_large",
        loss="simple",  # sec. 3.4, eq. 14: L_simple
    ),
    training=TrainConfig(
        lr=2e-4, batch_size=128, steps=800_000,  # app. B
        warmup_steps=5000, grad_clip=1.0,  # the released code (not stated in the paper)
        ema_decay=0.9999,  # app. B
        num_bins=256,  # sec. 3.3: 8-bit data, discrete decoder
        seed=0, log_every=100, sample_every=0, checkpoint_every=5000, keep_last=3,
    ),
    sampling=SamplingConfig(
        sampler="ancestral", sampling_steps=None, sampling_eta=0.0,  # alg. 2
        num_samples=50_000,  # FID on 50k samples
    ),
)  # fmt: skip

# fmt: off
_PRESETS: dict[str, Preset] = {
    "cifar10": _CIFAR10,
    # `UNet.small_cifar10` (base 64, mults 1-2-2, one block per level: 4.4M parameters,
    # 2.15 GFLOPs per image, 17% of the paper's); 100k steps at batch 128 (12.8M images,
    # 256 epochs) make 8.3e16 training FLOPs (3 x forward x batch x steps, `describe`):
    # about 2.3 hours at 10 TFLOP/s sustained, a modest share of one GPU's bf16 peak.
    "cifar10-small": replace(
        _CIFAR10, name="cifar10-small",
        model=replace(_CIFAR10.model, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=1),
        training=replace(_CIFAR10.training, steps=100_000),
        sampling=SamplingConfig(sampler="ddim", sampling_steps=100, num_samples=10_000),
    ),
    # the 8x8 digits as they are (17 levels, u / 8 - 1 for u in 0..16: num_bins=17 puts
    # the decoder's bins on them), a `UNet.tiny`-sized net (0.7M parameters, levels 8x8
    # and 4x4, attention at 4x4) without dropout. Batch 128 keeps two CPU cores busier
    # than 64 (about 690 vs 475 images/s), and lr 2e-3 goes with it: 2800 steps (250
    # epochs of the train split) take about 9 minutes. DDIM with eta = 1 (stochastic, 50
    # steps) scores clearly better than eta = 0 for this small a network, and as well as
    # 100 steps (benchmarks/digits.py; benchmarks/README.md has the figures).
    "digits": (_DIGITS := replace(
        _CIFAR10, name="digits",
        data=DataConfig("digits", pad_to=None, random_flip=False),
        model=UNetConfig(in_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                         attention_resolutions=(4,), dropout=0.0, image_size=8),
        training=replace(_CIFAR10.training, lr=2e-3, batch_size=128, steps=2800,
                         warmup_steps=100, ema_decay=0.999, num_bins=17, log_every=50,
                         sample_every=500, checkpoint_every=500),
        sampling=SamplingConfig(sampler="ddim", sampling_steps=50, sampling_eta=1.0,
                                num_samples=64),
    )),
    # class-conditional versions, for classifier-free guidance (Ho & Salimans 2022): the
    # same recipes with a label embedding; training.p_uncond of the labels are dropped
    "digits-cond": replace(_DIGITS, name="digits-cond",
                           model=replace(_DIGITS.model, num_classes=10)),
    "cifar10-cond": replace(_CIFAR10, name="cifar10-cond",
                            model=replace(_CIFAR10.model, num_classes=10)),
    # the 2-D benchmark's settings (`minidiff.toy.train` defaults): ToyMLP, T = 200
    "toy2d": replace(
        _CIFAR10, name="toy2d",
        data=DataConfig("swissroll", pad_to=None, random_flip=False),
        model=ToyMLPConfig(dim=2, hidden=(128, 128, 128), embed_dim=32),
        diffusion=replace(_CIFAR10.diffusion, schedule="toy", T=200, variance="fixed_small"),
        training=replace(_CIFAR10.training, lr=8e-3, batch_size=256, steps=6000,
                         warmup_steps=200, ema_decay=0.995, num_bins=None),
        sampling=replace(_CIFAR10.sampling, num_samples=2000),
    ),
    # -- captions (text-to-image in miniature) ---------------------------------------------
    # digits with a caption encoder (width 64, 2 layers, 12 tokens) and cross-attention at
    # 4x4; the vocabulary travels with the preset, so a checkpoint reads prompts by itself
    "digits-caption": replace(_DIGITS, name="digits-caption", model=CaptionUNetConfig(
        **{**asdict(_DIGITS.model), "context_dim": 64}, text_layers=2, text_heads=4,
        caption_length=12, vocabulary=WordTokenizer.for_digits().words,
    )),
    # -- text and audio ------------------------------------------------------------------
    # characters of the KJV (`minidiff.data.text`) in windows of 128, the absorbing
    # diffusion of MDLM and a 0.55M-parameter dilated-convolution denoiser: batch 32 at
    # lr 2e-3 passes the trigram (2.654 bits/char on the test split) in 5 CPU minutes on one
    # thread (benchmarks/text.py: 2.619 after 1075 steps); sampled by unmasking in T = 256 steps
    "text-kjv": replace(
        _CIFAR10, name="text-kjv",
        data=DataConfig("kjv"),
        model=SequenceDenoiserConfig(vocab_size=len(VOCAB), network="conv", width=80, depth=8,
                                     length=128),
        diffusion=AbsorbingDiffusionConfig(T=256),
        training=replace(_CIFAR10.training, lr=2e-3, batch_size=32, steps=20_000,
                         warmup_steps=200, ema_decay=0.995, num_bins=None, log_every=100,
                         checkpoint_every=1000),
        sampling=SamplingConfig(sampler="ancestral", num_samples=5),
    ),
    # synthetic tones (`minidiff.data.audio.synthetic_tones`: known pitch, so the samples'
    # dominant frequencies have a ground truth) of 1024 samples at 8 kHz; a DiffWave of 32
    # channels and 10 layers (receptive field 373 samples) with DiffWave's T = 50 linear
    # schedule, eps-prediction, sampled by DDIM in 10 steps; CPU minutes
    "audio": (_AUDIO := replace(
        _CIFAR10, name="audio",
        data=DataConfig("tones"),
        model=DiffWaveConfig(channels=32, layers=10, dilation_cycle=5, length=1024),
        diffusion=DiffusionConfig(schedule="diffwave", T=50, variance="fixed_small"),
        training=replace(_CIFAR10.training, lr=1e-3, batch_size=16, steps=3000,
                         warmup_steps=100, ema_decay=0.995, num_bins=None, log_every=50,
                         checkpoint_every=500),
        sampling=SamplingConfig(sampler="ddim", sampling_steps=10, num_samples=8),
    )),
    # one second of espeak-ng's spoken digits (`minidiff.data.audio.spoken_digits`, the
    # training voices), class-conditional; 12 layers see 253 ms: a run for a GPU
    "audio-digits": replace(
        _AUDIO, name="audio-digits",
        data=DataConfig("spoken-digits"),
        model=DiffWaveConfig(channels=64, layers=12, dilation_cycle=6, num_classes=10,
                             length=8000),
        training=replace(_AUDIO.training, batch_size=8, steps=20_000),
        sampling=SamplingConfig(sampler="ddim", sampling_steps=10, num_samples=10),
    ),
    # -- restoration and anomaly detection (`minidiff.applications.inpainting`, `anomaly`) --
    # Fashion-MNIST 28x28 as it is (256 levels, u / 127.5 - 1), a U-Net of base 32, levels
    # 28, 14 and 7 (attention at 7), one block per level: 1.1M parameters, 0.38 GFLOPs
    # per image. One step of batch 64 takes about 2.7 s on one shared CPU thread, so the
    # 1500 steps (1.6 epochs) are about an hour on one thread and tens of minutes on two;
    # benchmarks/restoration.py and benchmarks/anomaly.py say what shorter runs reach.
    "fashion-mnist": replace(
        _DIGITS, name="fashion-mnist",
        data=DataConfig("fashion-mnist", pad_to=None, random_flip=False),
        model=UNetConfig(in_channels=1, base_channels=32, channel_mults=(1, 2, 2),
                         num_res_blocks=1, attention_resolutions=(7,), dropout=0.0,
                         image_size=28),
        diffusion=replace(_DIGITS.diffusion, schedule="cosine"),
        training=replace(_DIGITS.training, lr=1e-3, batch_size=64, steps=1500, num_bins=256,
                         warmup_steps=100, ema_decay=0.995, sample_every=500),
    ),
}
# fmt: on


def preset(name: PresetName) -> Preset:
    """The preset called ``name``, one of `PRESETS`."""
    if name in PRESETS:
        return _PRESETS[name]
    else:
        raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")


def override(base: Preset, assignments: list[str] | tuple[str, ...]) -> Preset:
    """A copy of ``base`` with settings from ``"section.field=value"`` strings.

    ``section.field`` names a setting (``training.lr``, ``model.channel_mults``); a bare
    ``field`` works where exactly one section has it (``lr``, ``T``; ``dropout`` only for a
    U-Net). Values are parsed by the field's type: ``int``, ``float``, ``bool``
    (true/false, 1/0, yes/no), ``str``, tuples as comma-separated items
    (``channel_mults=1,2,2``; an empty value is the empty tuple), ``none`` for an optional
    field. All assignments apply together (see `minidiff.sections.assign`).

    Raises:
        ValueError: an assignment without ``=``, an unknown field (the message lists the
            fields), a name that several sections have (the message lists them), a value
            that does not parse as the field's type (naming the field, the value and the
            type), or settings the `Preset` refuses.
    """
    if not isinstance(base, Preset):
        raise TypeError(f"base must be a Preset, got {type(base).__name__}")
    return assign(base, assignments, fixed=FIXED_FIELDS)

