"""Tests of the training presets: each builds, ``cifar10`` is the paper's run field by
field, each section is the object it configures, overrides parse every field type by
section path or bare name and refuse bad input by name, and every (parameterization,
variance, loss) a preset accepts trains."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.applications.text import TextConditionedUNet
from minidiff.configs import (
    PRESETS,
    DataConfig,
    DiffusionConfig,
    Preset,
    SamplingConfig,
    build_diffusion,
    build_model,
    describe,
    override,
    preset,
)
from minidiff.data import load_digits
from minidiff.diffusion.gaussian import LOSSES, PARAMETERIZATIONS, VARIANCES, GaussianDiffusion
from minidiff.discrete import D3PM, MaskedDiffusion
from minidiff.nn.diffwave import DiffWave
from minidiff.nn.flops import unet_forward_flops
from minidiff.nn.mlp import ToyMLP, ToyMLPConfig
from minidiff.nn.sequence import DilatedConvDenoiser, TransformerDenoiser
from minidiff.nn.unet import UNet, UNetConfig
from minidiff.training import Trainer
from minidiff.training.config import TrainConfig

MODEL_CLASSES = {"unet": UNet, "mlp": ToyMLP, "diffwave": DiffWave,
                 "caption-unet": TextConditionedUNet,
                 "sequence": (DilatedConvDenoiser, TransformerDenoiser)}  # fmt: skip
DIFFUSION_CLASSES = {"gaussian": GaussianDiffusion, "absorbing": MaskedDiffusion, "uniform": D3PM}
DDPM_CIFAR10_PARAMETERS = 35_746_307  # Ho et al. (2020), appendix B: "35.7 million"


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_its_model_diffusion_and_train_config(name):
    """Each preset yields a network of its model kind (on the meta device), a diffusion of
    its kind with T steps, a TrainConfig, and a description with consistent sums."""
    p = preset(name)
    with torch.device("meta"):
        model = build_model(p)
    assert isinstance(model, MODEL_CLASSES[p.model_kind])
    diffusion = build_diffusion(p)
    assert isinstance(diffusion, DIFFUSION_CLASSES[p.diffusion_kind])
    assert diffusion.T == p.diffusion.T
    assert isinstance(p.training, TrainConfig)
    info = describe(p)
    batch, steps = p.training.batch_size, p.training.steps
    assert info["parameters"] == sum(q.numel() for q in model.parameters())
    assert info["train_flops_per_step"] == 3 * info["forward_flops_per_example"] * batch
    assert info["train_flops_total"] == info["train_flops_per_step"] * steps
    assert info["examples_seen"] == batch * steps


@pytest.mark.parametrize("name", PRESETS)
def test_each_section_is_the_object_it_configures(name):
    """The model section is the network's own config (the built network holds it), the
    diffusion section's settings are the built diffusion's, the training section is the
    TrainConfig the trainer takes: nothing is copied by hand between them."""
    p = preset(name)
    assert isinstance(p.data, DataConfig) and isinstance(p.sampling, SamplingConfig)
    with torch.device("meta"):
        model = build_model(p)
    assert model.config == p.model
    d = p.diffusion
    diffusion = build_diffusion(p)
    if p.diffusion_kind == "gaussian":
        assert (diffusion.parameterization, diffusion.variance, diffusion.loss) == (
            d.parameterization, d.variance, d.loss,
        )  # fmt: skip
    else:  # a discrete process over the denoiser's vocabulary
        assert diffusion.T == d.T and diffusion.data_states == p.model.vocab_size
    assert type(p.training) is TrainConfig


def test_cifar10_preset_is_the_paper_network_with_35_746_307_parameters():
    """Ho et al. (2020), appendix B: the CIFAR-10 U-Net (`UNet.ddpm_cifar10`, 35.7M
    parameters, dropout 0.1); counted on the meta device, 12.44 GFLOPs per image."""
    p = preset("cifar10")
    with torch.device("meta"):
        model = build_model(p)
    assert model.config == UNetConfig()
    assert describe(p)["parameters"] == DDPM_CIFAR10_PARAMETERS
    assert describe(p)["forward_flops_per_example"] == unet_forward_flops(UNetConfig())


def test_cifar10_preset_diffusion_is_the_paper_process():
    """Sec. 4: T = 1000, betas linear from beta_1 = 1e-4 to beta_T = 0.02; sec. 3.2/eq. 11:
    eps-prediction, sigma_t^2 = beta_t (the released CIFAR-10 run's "fixedlarge"); sec. 3.4,
    eq. 14: L_simple; sec. 3.3: 8-bit data (256 bins)."""
    p = preset("cifar10")
    d = build_diffusion(p)
    assert d.schedule.T == 1000
    assert d.schedule.beta[1] == pytest.approx(1e-4, rel=1e-12)
    assert d.schedule.beta[1000] == pytest.approx(0.02, rel=1e-12)
    assert (p.diffusion.parameterization, p.diffusion.variance, p.diffusion.loss) == (
        "eps", "fixed_large", "simple",
    )  # fmt: skip
    assert p.training.num_bins == 256


def test_cifar10_preset_training_is_the_paper_recipe():
    """Appendix B: Adam lr 2e-4, batch 128, 800k steps, EMA 0.9999, dropout 0.1, random
    horizontal flips; the released code: 5000 warmup steps, gradient norm clipped to 1."""
    p = preset("cifar10")
    c = p.training
    assert (c.lr, c.batch_size, c.steps, c.ema_decay) == (2e-4, 128, 800_000, 0.9999)
    assert (c.warmup_steps, c.grad_clip, c.weight_decay) == (5000, 1.0, 0.0)
    assert p.model.dropout == 0.1 and p.data.random_flip
    assert (p.data.dataset, p.model.image_size) == ("cifar10", 32)


def test_digits_and_toy_presets_use_their_data_grids():
    """digits: the 8x8 images as they are, on the 17-level grid (num_bins=17: the data's
    levels u / 8 - 1 are the decoder's bin centres); toy2d: continuous 2-D data
    (num_bins=None) with the T-scaled toy schedule."""
    digits, toy = preset("digits"), preset("toy2d")
    num_bins = digits.training.num_bins
    assert (digits.model.image_size, digits.data.pad_to, num_bins) == (8, None, 17)
    bins = (torch.unique(load_digits(dtype=torch.float64)) + 1) * (num_bins - 1) / 2
    assert torch.equal(bins, bins.round()) and 0 <= bins.min() and bins.max() <= 16
    assert toy.training.num_bins is None and toy.diffusion.schedule == "toy"
    T = toy.diffusion.T
    assert build_diffusion(toy).schedule.beta[T] == pytest.approx(20.0 / T)


def test_unknown_preset_lists_the_choices():
    """An unknown name is a ValueError naming it and listing PRESETS."""
    with pytest.raises(ValueError, match="'imagenet'.*cifar10-small"):
        preset("imagenet")


@pytest.mark.parametrize(
    ("assignment", "match"),
    [("learning_rate=1e-3", "'learning_rate'.*'training.lr'"), ("lr", "field=value"),
     ("training.learning_rate=1", "'training.learning_rate'.*'training.lr'"),
     ("name=x", "unknown field 'name'"), ("model.out_channels=2", "unknown field"),
     ("mlp.hidden=8", "unknown field 'mlp.hidden'")],
)  # fmt: skip
def test_unknown_field_lists_the_fields(assignment, match):
    """An assignment without ``=``, or naming a setting the preset lacks (or one fixed: the
    name, the output width), is a ValueError naming it and listing the settings."""
    with pytest.raises(ValueError, match=match):
        override(preset("cifar10"), [assignment])


def test_section_paths_and_bare_names_set_the_same_setting():
    """``training.lr=...`` and ``lr=...`` give the same preset; all assignments apply
    together, so T and sampling_steps may shrink in either order."""
    base = preset("digits")
    assert override(base, ["training.lr=0.1"]) == override(base, ["lr=0.1"])
    assert override(base, ["model.channel_mults=1,1"]).model.channel_mults == (1, 1)
    first = override(base, ["T=10", "sampling_steps=5"])
    assert first == override(base, ["sampling.sampling_steps=5", "diffusion.T=10"])
    assert (first.diffusion.T, first.sampling.sampling_steps) == (10, 5)


@pytest.mark.parametrize(
    ("assignment", "match"),
    [("T=abc", "'abc'.*'T'.*int"), ("lr=fast", "'fast'.*'lr'.*float"),
     ("random_flip=maybe", "'maybe'.*'random_flip'.*bool"),
     ("channel_mults=1,x", "'x'.*'channel_mults'.*int"),
     ("variance=learned", "'learned'.*'variance'"), ("sampler=euler", "'euler'.*sampler"),
     ("T=0", "T must be"), ("lr=nan", "'nan'.*'lr'.*float"),
     ("variance=learned_range", "learned_range' needs loss 'vlb' or 'hybrid'"),
     ("base_channels=8", "GroupNorm"), ("sampling_steps=2000", "sampling_steps must be <= T"),
     ("num_classes=3", "num_classes must be None or")],
)  # fmt: skip
def test_bad_override_value_names_field_value_and_type(assignment, match):
    """A value that does not parse as the field's type, or that the preset refuses, is a
    ValueError naming the field, the value and the expected type or range."""
    with pytest.raises(ValueError, match=match):
        override(preset("cifar10"), [assignment])


@settings(max_examples=20, deadline=None)
@given(
    T=st.integers(1000, 4000),
    lr=st.floats(1e-6, 1.0, allow_nan=False, allow_infinity=False),
    mults=st.lists(st.integers(1, 8), min_size=1, max_size=5).map(tuple),
    flip=st.booleans(),
)
def test_overrides_round_trip_ints_floats_bools_and_tuples(T, lr, mults, flip):
    """For arbitrary valid values, override(p, [f"field={str(value)}"]) sets each field to
    exactly that value (floats through repr round-trip exactly)."""
    text = ",".join(map(str, mults))
    p = override(preset("cifar10"), [f"T={T}", f"lr={lr!r}", f"channel_mults={text}",
                                     f"random_flip={flip}", "attention_resolutions="])  # fmt: skip
    assert (p.diffusion.T, p.training.lr, p.model.channel_mults, p.data.random_flip) == (
        T, lr, mults, flip,
    )  # fmt: skip
    assert p.name == "cifar10" and p.training.batch_size == 128


def test_override_parses_none_literals_and_empty_tuples():
    """``none`` sets an optional field to None, an empty value gives the empty tuple, a
    Literal field takes one of its options; the base preset is unchanged."""
    base = preset("cifar10")
    p = override(base, ["grad_clip=none", "attention_resolutions=", "sampling_steps=50",
                        "num_bins=None", "grad_clip=0.5", "training.betas=0.5,0.9"])  # fmt: skip
    assert (p.training.grad_clip, p.model.attention_resolutions) == (0.5, ())
    assert p.sampling.sampling_steps == 50 and p.training.betas == (0.5, 0.9)
    assert p.training.num_bins is None and base.training.num_bins == 256
    assert isinstance(p, Preset)


def test_speed_and_bookkeeping_fields_are_training_settings():
    """precision, memory_format, compile, log_every, sample_every, checkpoint_every and
    keep_last are settings of the training section, overridable by name, and reach the
    TrainConfig the trainer takes."""
    p = override(preset("digits"), ["precision=bf16", "memory_format=channels_last",
                                    "compile=true", "log_every=7", "sample_every=11",
                                    "checkpoint_every=13", "keep_last=none"])  # fmt: skip
    config = p.training
    assert (config.precision, config.memory_format, config.compile) == (
        "bf16",
        "channels_last",
        True,
    )
    assert (config.log_every, config.sample_every, config.checkpoint_every) == (7, 11, 13)
    assert config.keep_last is None


@pytest.mark.parametrize(
    ("assignment", "match"),
    [("precision=fp16", "'fp16'.*'precision'"), ("memory_format=nhwc", "'nhwc'.*'memory_format'"),
     ("log_every=0", "log_every must be"), ("keep_last=0", "keep_last must be"),
     ("compile=perhaps", "'perhaps'.*'compile'.*bool")],
)  # fmt: skip
def test_bad_speed_and_bookkeeping_values_are_refused_by_name(assignment, match):
    """A precision or memory format outside its options, a zero interval or keep_last, or a
    non-boolean compile is a ValueError naming the field and the value."""
    with pytest.raises(ValueError, match=match):
        override(preset("digits"), [assignment])


# tiny versions of the two networks: a one-level 8x8 U-Net, a one-layer MLP; T = 20
TINY_UNET = ["base_channels=32", "channel_mults=1", "attention_resolutions=", "T=20",
             "batch_size=4", "sampling_steps=5"]  # fmt: skip
TINY_MLP = ["hidden=16", "embed_dim=8", "T=30", "batch_size=8"]
COMBINATIONS = [
    (*combination, name)
    for name in ("digits", "toy2d")
    for combination in itertools.product(PARAMETERIZATIONS, VARIANCES, LOSSES)
]


@pytest.mark.parametrize(("parameterization", "variance", "loss", "name"), COMBINATIONS)
def test_every_combination_a_preset_accepts_trains_two_steps(parameterization, variance, loss,
                                                              name, tmp_path):  # fmt: skip
    """For every (parameterization, variance, loss): either the preset refuses it up front
    with a ValueError saying why (a learned variance under L_simple, which would leave the
    variance untrained), or its network, diffusion and TrainConfig train two steps with a
    finite loss (a learned variance doubles the network's output)."""
    tiny = TINY_UNET if name == "digits" else TINY_MLP
    settings = [*tiny, f"parameterization={parameterization}", f"variance={variance}",
                f"loss={loss}"]  # fmt: skip
    if variance == "learned_range" and loss == "simple":
        with pytest.raises(ValueError, match="learned_range' needs loss 'vlb' or 'hybrid'"):
            override(preset(name), settings)
        return
    p = override(preset(name), settings)
    shape = p.sample_shape
    x0 = torch.rand((16, *shape), generator=torch.Generator().manual_seed(0)) * 2 - 1
    if name == "digits":  # the digits' 17 levels, as the decoder's bins expect
        x0 = (x0 * 8).round() / 8
    model = build_model(p, generator=torch.Generator().manual_seed(0))
    trainer = Trainer(model, build_diffusion(p), x0, p.training, out_dir=tmp_path)
    losses = [trainer.train_step()["loss"] for _ in range(2)]
    assert all(math.isfinite(value) for value in losses)


@pytest.mark.parametrize("name", ["digits", "toy2d"])
def test_a_learned_variance_doubles_the_networks_output(name):
    """With variance learned_range the network outputs 2C channels (2D for points): the
    prediction and the variance's interpolation weight (Nichol & Dhariwal 2021, sec. 3.1);
    otherwise C."""
    p = preset(name)
    learned = override(p, ["variance=learned_range", "loss=hybrid"])
    x = torch.zeros((2, *p.sample_shape))
    t = torch.tensor([1, 2])
    outputs = [build_model(q, generator=torch.Generator())(x, t) for q in (p, learned)]
    channels = p.sample_shape[0]
    assert outputs[0].shape[1] == channels and outputs[1].shape[1] == 2 * channels
    assert learned.model == p.model  # the section holds the data's width; build_model doubles


REFUSED_SECTIONS = {
    "MLP output width": (lambda: replace(preset("toy2d"), model=ToyMLPConfig(out_dim=4)),
                         ValueError, "model.out_dim must be None"),
    "U-Net output width": (lambda: replace(preset("digits"), model=replace(
        preset("digits").model, out_channels=2)), ValueError, "model.out_channels must be None"),
    "section of another type": (lambda: replace(preset("toy2d"), diffusion=UNetConfig()),
                                TypeError, "diffusion must be"),
    "toy schedule too short": (lambda: DiffusionConfig(schedule="toy", T=20), ValueError,
                               "T must be an integer >= 21"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED_SECTIONS)
def test_a_preset_refuses_an_out_width_and_sections_of_the_wrong_type(case):
    """The output width follows the variance (build_model sets it): a model section with
    it set is refused; so are a section of the wrong type and a toy schedule too short
    for its linear betas."""
    build, error, match = REFUSED_SECTIONS[case]
    with pytest.raises(error, match=match):
        build()


def test_audio_presets_use_diffwaves_schedule():
    """Kong et al. (2021), sec. 4: T = 50 with beta linear from 1e-4 to 0.05 (not rescaled
    with T), eps-prediction and the simple loss; the text preset pairs a sequence denoiser
    over the KJV's vocabulary with the absorbing diffusion."""
    for name in ("audio", "audio-digits"):
        p = preset(name)
        beta = build_diffusion(p).schedule.beta
        assert p.diffusion.T == 50 and beta[0] == 0.0
        assert beta[1] == pytest.approx(1e-4, rel=1e-12)
        assert beta[50] == pytest.approx(0.05, rel=1e-12)
        assert (p.diffusion.parameterization, p.diffusion.loss) == ("eps", "simple")
    text = preset("text-kjv")
    kinds = (text.model_kind, text.diffusion_kind, text.training.num_bins)
    assert kinds == ("sequence", "absorbing", None)


def test_model_and_diffusion_kinds_must_agree_and_round_trip_as_plain_data():
    """A token denoiser with the Gaussian diffusion, or an image network with a discrete
    one, is refused naming both kinds; every preset survives `preset_to_dict` and back,
    its kinds stored by name; a stored Gaussian section without a kind (older runs) reads."""
    from minidiff.discrete import AbsorbingDiffusionConfig
    from minidiff.runs import preset_from_dict, preset_to_dict

    text, digits = preset("text-kjv"), preset("digits")
    with pytest.raises(ValueError, match="'sequence'.*'gaussian'"):
        replace(text, diffusion=digits.diffusion)
    with pytest.raises(ValueError, match="'unet'.*'absorbing'"):
        replace(digits, diffusion=AbsorbingDiffusionConfig())
    for name in PRESETS:
        stored = preset_to_dict(preset(name))
        assert stored["diffusion"]["kind"] == preset(name).diffusion_kind
        assert preset_from_dict(stored) == preset(name)
    stored = preset_to_dict(digits)
    del stored["diffusion"]["kind"]
    assert preset_from_dict(stored) == digits
