"""Tests of the training presets: each builds, ``cifar10`` is the paper's run field by
field, overrides parse every field type and refuse bad input by name, presets are frozen."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.configs import (
    PRESETS,
    Preset,
    build_diffusion,
    build_model,
    describe,
    override,
    preset,
)
from minidiff.data import load_digits
from minidiff.nn.flops import unet_forward_flops
from minidiff.nn.mlp import ToyMLP
from minidiff.nn.unet import UNet, UNetConfig
from minidiff.training.config import TrainConfig

DDPM_CIFAR10_PARAMETERS = 35_746_307  # Ho et al. (2020), appendix B: "35.7 million"


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_its_model_diffusion_and_train_config(name):
    """Each preset yields a network (on the meta device), a diffusion with T steps, a
    TrainConfig carrying its training fields, and a description with consistent sums."""
    p = preset(name)
    with torch.device("meta"):
        model = build_model(p)
    assert isinstance(model, UNet if p.model == "unet" else ToyMLP)
    diffusion = build_diffusion(p)
    assert diffusion.schedule.T == p.T
    config = p.train_config()
    assert isinstance(config, TrainConfig)
    assert (config.lr, config.batch_size, config.steps) == (p.lr, p.batch_size, p.steps)
    info = describe(p)
    assert info["parameters"] == sum(q.numel() for q in model.parameters())
    assert info["train_flops_per_step"] == 3 * info["forward_flops_per_example"] * p.batch_size
    assert info["train_flops_total"] == info["train_flops_per_step"] * p.steps
    assert info["examples_seen"] == p.batch_size * p.steps


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
    assert (p.parameterization, p.variance, p.loss) == ("eps", "fixed_large", "simple")
    assert p.num_bins == 256


def test_cifar10_preset_training_is_the_paper_recipe():
    """Appendix B: Adam lr 2e-4, batch 128, 800k steps, EMA 0.9999, dropout 0.1, random
    horizontal flips; the released code: 5000 warmup steps, gradient norm clipped to 1."""
    p = preset("cifar10")
    c = p.train_config()
    assert (c.lr, c.batch_size, c.steps, c.ema_decay) == (2e-4, 128, 800_000, 0.9999)
    assert (c.warmup_steps, c.grad_clip, c.weight_decay) == (5000, 1.0, 0.0)
    assert p.dropout == 0.1 and p.random_flip
    assert (p.dataset, p.image_size) == ("cifar10", 32)


def test_digits_and_toy_presets_use_their_data_grids():
    """digits: the 8x8 images as they are, on the 17-level grid (num_bins=17: the data's
    levels u / 8 - 1 are the decoder's bin centres); toy2d: continuous 2-D data
    (num_bins=None) with the T-scaled toy schedule."""
    digits, toy = preset("digits"), preset("toy2d")
    assert (digits.image_size, digits.pad_to, digits.num_bins) == (8, None, 17)
    bins = (torch.unique(load_digits(dtype=torch.float64)) + 1) * (digits.num_bins - 1) / 2
    assert torch.equal(bins, bins.round()) and 0 <= bins.min() and bins.max() <= 16
    assert toy.num_bins is None and toy.schedule == "toy"
    assert build_diffusion(toy).schedule.beta[toy.T] == pytest.approx(20.0 / toy.T)


def test_presets_are_frozen():
    """Assigning to a preset's field raises FrozenInstanceError."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset("cifar10").lr = 1.0


def test_unknown_preset_lists_the_choices():
    """An unknown name is a ValueError naming it and listing PRESETS."""
    with pytest.raises(ValueError, match="'imagenet'.*cifar10-small"):
        preset("imagenet")


def test_unknown_field_lists_the_fields():
    """An unknown override field is a ValueError naming it and listing the fields."""
    with pytest.raises(ValueError, match="'learning_rate'.*'lr'"):
        override(preset("cifar10"), ["learning_rate=1e-3"])
    with pytest.raises(ValueError, match="field=value"):
        override(preset("cifar10"), ["lr"])


@pytest.mark.parametrize(
    ("assignment", "match"),
    [("T=abc", "'abc'.*'T'.*int"), ("lr=fast", "'fast'.*'lr'.*float"),
     ("random_flip=maybe", "'maybe'.*'random_flip'.*bool"),
     ("channel_mults=1,x", "'x'.*'channel_mults'.*int"),
     ("variance=learned", "variance.*'learned'"), ("sampler=euler", "'euler'.*sampler"),
     ("T=0", "T must be"), ("lr=nan", "'nan'.*'lr'.*float")],
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
                                     f"random_flip={flip}"])  # fmt: skip
    assert (p.T, p.lr, p.channel_mults, p.random_flip) == (T, lr, mults, flip)
    assert p.name == "cifar10" and p.batch_size == 128


def test_override_parses_none_literals_and_empty_tuples():
    """``none`` sets an optional field to None, an empty value gives the empty tuple, a
    Literal field takes one of its options; the base preset is unchanged."""
    base = preset("cifar10")
    p = override(base, ["grad_clip=none", "attention_resolutions=", "model=unet",
                        "sampling_steps=50", "num_bins=None", "grad_clip=0.5"])  # fmt: skip
    assert (p.grad_clip, p.attention_resolutions, p.sampling_steps) == (0.5, (), 50)
    assert p.num_bins is None and base.num_bins == 256
    assert isinstance(p, Preset)


def test_speed_and_bookkeeping_fields_reach_the_train_config():
    """precision, memory_format, compile, log_every, sample_every, checkpoint_every and
    keep_last are preset fields, overridable by name, and passed on to the TrainConfig."""
    names = ("precision", "memory_format", "compile", "log_every", "sample_every",
             "checkpoint_every", "keep_last")  # fmt: skip
    for name in PRESETS:
        p = preset(name)
        config = p.train_config()
        assert all(getattr(config, field) == getattr(p, field) for field in names)
    p = override(preset("digits"), ["precision=bf16", "memory_format=channels_last",
                                    "compile=true", "log_every=7", "sample_every=11",
                                    "checkpoint_every=13", "keep_last=none"])  # fmt: skip
    config = p.train_config()
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
