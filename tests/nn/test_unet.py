"""Tests of the DDPM U-Net: shapes per preset, the paper's parameter count, gradient flow
to every parameter, class conditioning, batch independence and argument validation."""

from __future__ import annotations

import pytest
import torch

from minidiff.nn.unet import UNet, UNetConfig

DDPM_CIFAR10_PARAMETERS = 35_746_307  # Ho et al. (2020), appendix B: "35.7 million"


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _inputs(unet: UNet, batch: int, seed: int = 0, dtype=torch.float64):
    c = unet.config
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c.in_channels, c.image_size, c.image_size, generator=generator,
                    dtype=dtype)  # fmt: skip
    t = torch.randint(0, 1000, (batch,), generator=generator)
    return x, t


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.05)
    return module


@pytest.fixture(scope="module")
def ddpm_cifar10() -> UNet:
    """The paper's network, built once for this module."""
    return UNet.ddpm_cifar10().eval()


def test_ddpm_cifar10_has_the_papers_parameter_count(ddpm_cifar10):
    """UNet.ddpm_cifar10() has exactly 35,746,307 parameters, the count of the paper's
    CIFAR-10 model (35.7M, Ho et al. 2020, appendix B) and of google/ddpm-cifar10-32."""
    assert _count(ddpm_cifar10) == DDPM_CIFAR10_PARAMETERS
    assert ddpm_cifar10.config == UNetConfig()


def test_ddpm_cifar10_output_shape_equals_input_shape(ddpm_cifar10):
    """The paper's network maps (B, 3, 32, 32) to (B, 3, 32, 32)."""
    x, t = _inputs(ddpm_cifar10, batch=1, dtype=torch.float32)
    with torch.no_grad():
        assert ddpm_cifar10(x, t).shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    "build",
    [
        lambda: UNet.tiny(),
        lambda: UNet.tiny(image_size=16, in_channels=1),
        lambda: UNet.tiny(num_classes=3),
        lambda: UNet.small_cifar10(),
    ],
    ids=["tiny-8", "tiny-16-gray", "tiny-conditional", "small_cifar10"],
)
def test_preset_output_shape_equals_input_shape(build):
    """Each preset maps (B, C, H, W) to (B, C, H, W): a denoiser predicting eps, x0 or v
    has the shape of x_t."""
    unet = build().eval()
    x, t = _inputs(unet, batch=2, dtype=torch.float32)
    y = None if unet.config.num_classes is None else torch.tensor([0, 2])
    with torch.no_grad():
        assert unet(x, t, y).shape == x.shape


def test_learned_variance_doubles_the_output_channels():
    """out_channels = 2 in_channels gives (B, 2C, H, W): the mean's and the variance's
    outputs (Nichol & Dhariwal 2021, sec. 3.1); the default is in_channels."""
    unet = UNet.tiny(out_channels=6).eval()
    x, t = _inputs(unet, batch=2, dtype=torch.float32)
    with torch.no_grad():
        assert unet(x, t).shape == (2, 6, 8, 8)
    assert UNet.tiny().out_conv.out_channels == 3


def test_every_parameter_receives_a_gradient():
    """Every parameter is connected to the output: one backward pass through the
    conditional tiny U-Net (float64) leaves a finite, nonzero gradient on each, including
    the time and class embeddings and the attention layers."""
    unet = _randomize(UNet.tiny(num_classes=4).double(), seed=1)
    x, t = _inputs(unet, batch=2)
    unet(x, t, torch.tensor([1, 3])).square().sum().backward()
    for name, p in unet.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_paper_initialisation_starts_near_zero_output():
    """With the DDPM code's initialisation the output conv is scaled by 1e-10 in variance,
    so a fresh network outputs ~0 (|out| << 1) while its inputs are O(1)."""
    unet = UNet.tiny().double().eval()
    x, t = _inputs(unet, batch=2)
    with torch.no_grad():
        assert unet(x, t).abs().max() < 1e-3


def test_class_conditioning_changes_the_output():
    """A conditional net's output depends on the label: two labels give different
    predictions for the same x_t and t, and the same label gives the same one."""
    unet = _randomize(UNet.tiny(num_classes=3).double(), seed=2).eval()
    x, t = _inputs(unet, batch=2)
    with torch.no_grad():
        a = unet(x, t, torch.tensor([0, 0]))
        b = unet(x, t, torch.tensor([1, 2]))
        assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-6
        torch.testing.assert_close(unet(x, t, torch.tensor([0, 0])), a, rtol=0, atol=0)


def test_conditioning_errors():
    """y is refused by an unconditional net, required by a conditional one, and must be
    integer labels in [0, num_classes) of shape (B,)."""
    plain, conditional = UNet.tiny(), UNet.tiny(num_classes=3)
    x, t = _inputs(plain, batch=2, dtype=torch.float32)
    with pytest.raises(ValueError, match="unconditional"):
        plain(x, t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="required"):
        conditional(x, t)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        conditional(x, t, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        conditional(x, t, torch.tensor([0]))


def test_batch_elements_are_processed_independently():
    """GroupNorm normalises each sample on its own and attention mixes positions, never
    samples: in eval mode the batched output equals the outputs of one sample at a time."""
    unet = _randomize(UNet.tiny().double(), seed=3).eval()
    x, t = _inputs(unet, batch=3)
    with torch.no_grad():
        batched = unet(x, t)
        single = torch.cat([unet(x[i : i + 1], t[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-9, atol=1e-11)


def test_input_shape_errors():
    """x must be (B, in_channels, image_size, image_size) and t must be (B,)."""
    unet = UNet.tiny()
    x, t = _inputs(unet, batch=2, dtype=torch.float32)
    with pytest.raises(ValueError, match="x must"):
        unet(x[:, :2], t)
    with pytest.raises(ValueError, match="t must"):
        unet(x, t[:1])


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image_size": 30}, "image_size 30"),
        ({"attention_resolutions": (12,)}, "attention resolution 12"),
        ({"base_channels": 48}, "base_channels .* 48 is not divisible by the 32"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"channel_mults": (1, 0)}, "channel_mults"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"in_channels": 0}, "in_channels"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_classes": 0}, "num_classes"),
        ({"out_channels": 0}, "out_channels"),
    ],
)
def test_invalid_arguments_raise_value_error(overrides, match):
    """Arguments that cannot build the U-Net raise a ValueError naming the bad value:
    an image size not divisible by 2^(levels-1), an unreachable attention resolution,
    channels not divisible by the 32 GroupNorm groups, and so on."""
    with torch.device("meta"), pytest.raises(ValueError, match=match):
        UNet.ddpm_cifar10(**overrides)
    config = UNetConfig(**{**UNetConfig().__dict__, **overrides})  # built, not checked
    with pytest.raises(ValueError, match=match):
        config.check()
