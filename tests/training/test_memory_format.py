"""Tests of `TrainConfig.memory_format`: channels_last changes the layout, never the math.

A tensor in channels_last (NHWC) memory format holds the same values as its contiguous
(NCHW) twin; only the order of the elements in memory differs, and with it the order in
which a convolution sums its products. So a run in channels_last must match a contiguous
run to the round-off of that reordering, and nothing else.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minidiff.data import toy_dataset
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.nn import ToyMLP, UNet
from minidiff.process.schedule import linear_schedule
from minidiff.training import TrainConfig, Trainer
from minidiff.training.config import MEMORY_FORMATS, resolve_memory_format
from tests.tolerances import ATOL, RTOL

T = 20
STEPS = 3
# float32: the two runs' parameter updates (theta_N - theta_0) agree to this relative L2
# norm. Round-off of a reordered sum is ~1e-7 relative, but Adam divides each gradient
# element by its own running magnitude, so elements whose gradient is near zero amplify
# it: about 1e-4 after 3 steps; a layout bug moves the updates by O(1) relative.
RTOL_UPDATE_FLOAT32 = 1e-3


class InputRecorder(nn.Module):
    """Wraps a denoiser and records whether each x_t it sees is channels_last."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen_channels_last: list[bool] = []

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.seen_channels_last.append(xt.is_contiguous(memory_format=torch.channels_last))
        return self.inner(xt, t)


def unet_trainer(tmp_path, memory_format, *, dtype=torch.float32, resume=False, **overrides):
    """UNet.tiny (no dropout) on 8 random 8x8 RGB images, batches of 4, fp32 on the CPU."""
    torch.manual_seed(0)
    model = InputRecorder(UNet.tiny()).to(dtype)
    generator = torch.Generator().manual_seed(1)
    data = torch.rand(8, 3, 8, 8, generator=generator, dtype=dtype) * 2 - 1
    settings = dict(
        batch_size=4, warmup_steps=0, lr=1e-3, ema_decay=0.9, num_bins=None, seed=2,
        precision="fp32", memory_format=memory_format, log_every=100, checkpoint_every=0,
        keep_last=None,
    )  # fmt: skip
    config = TrainConfig(**{**settings, **overrides})
    diffusion = GaussianDiffusion(linear_schedule(T))
    return Trainer(model, diffusion, data, config, out_dir=tmp_path, resume=resume)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.dim() == 4]


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_channels_last_converts_the_conv_weights_and_the_step_inputs(tmp_path):
    """memory_format="channels_last" on the CPU: every conv weight of the model and of the
    EMA is channels_last, and so is every x_t the network sees."""
    trainer = unet_trainer(tmp_path, "channels_last")
    for _ in range(2):
        trainer.train_step()
    weights = conv_weights(trainer.model)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    # a 1x1 kernel has the same strides in both layouts; a 3x3 one is really NHWC
    assert not any(w.is_contiguous() for w in weights if w.shape[-1] > 1)
    shadow = [v for v in trainer.ema.shadow.values() if v.dim() == 4]
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in shadow)
    assert trainer.model.seen_channels_last == [True, True]


def test_auto_is_contiguous_on_the_cpu(tmp_path):
    """memory_format="auto" (the default) resolves to contiguous on the CPU: weights and
    inputs stay NCHW."""
    trainer = unet_trainer(tmp_path, "auto")
    trainer.train_step()
    assert not trainer.channels_last
    assert all(w.is_contiguous() for w in conv_weights(trainer.model))
    assert trainer.model.seen_channels_last == [False]


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_the_run_format_is_imposed_on_nhwc_strided_loader_batches(tmp_path, memory_format):
    """image_loader permutes uint8 (N, H, W, C) images to (N, C, H, W), so its batches
    have NHWC strides; the trainer still feeds x_t in the run's format: contiguous really
    means NCHW (else a channels_last input would switch the convolutions to NHWC)."""
    from minidiff.data import image_loader

    images = torch.randint(0, 256, (8, 8, 8, 3), generator=torch.Generator().manual_seed(1))
    loader = image_loader(images.to(torch.uint8), None, 4)
    assert next(iter(loader))[0].is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    model = InputRecorder(UNet.tiny())
    config = TrainConfig(batch_size=4, memory_format=memory_format, precision="fp32")
    diffusion = GaussianDiffusion(linear_schedule(T))
    trainer = Trainer(model, diffusion, loader, config, out_dir=tmp_path)
    trainer.train_step()
    assert model.seen_channels_last == [memory_format == "channels_last"]


@pytest.mark.parametrize("device_type", ["cpu", "cuda", "mps", "meta"])
@pytest.mark.parametrize("memory_format", MEMORY_FORMATS)
def test_resolve_memory_format_is_channels_last_exactly_on_cuda_for_auto(
    memory_format, device_type
):
    """resolve_memory_format: "auto" is channels_last on CUDA and contiguous on every other
    device; an explicit format is kept on every device."""
    resolved = resolve_memory_format(memory_format, device_type)
    if memory_format == "auto":
        expected = "channels_last" if device_type == "cuda" else "contiguous"
    else:
        expected = memory_format
    assert resolved == expected


def test_channels_last_training_matches_contiguous_in_float64(tmp_path):
    """In float64, 3 steps (loss, backward, clipping, AdamW, EMA) in channels_last give the
    parameters and EMA of the contiguous run to RTOL = 1e-10 (ATOL = 1e-12): the layout
    changes only the summation order."""
    runs = {}
    for memory_format in ("contiguous", "channels_last"):
        trainer = unet_trainer(tmp_path / memory_format, memory_format, dtype=torch.float64)
        losses = [trainer.train_step()["loss"] for _ in range(STEPS)]
        runs[memory_format] = trainer, losses
    (a, losses_a), (b, losses_b) = runs["contiguous"], runs["channels_last"]
    # the reported loss is float32 (`loss.float()`): its own round-off, 1e-6 relative
    torch.testing.assert_close(losses_b, losses_a, rtol=1e-6, atol=0.0)
    for name, tensor in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[name], tensor, rtol=RTOL, atol=ATOL)
    for name, tensor in a.ema.shadow.items():
        torch.testing.assert_close(b.ema.shadow[name], tensor, rtol=RTOL, atol=ATOL)


def test_channels_last_training_matches_contiguous_in_float32(tmp_path):
    """In float32, the 3-step update theta_3 - theta_0 of the channels_last run equals the
    contiguous run's to RTOL_UPDATE_FLOAT32 = 1e-3 in relative L2 norm, and the losses to
    1e-5 relative."""
    theta_0 = flat_parameters(unet_trainer(tmp_path / "init", "contiguous").model)
    runs = {}
    for memory_format in ("contiguous", "channels_last"):
        trainer = unet_trainer(tmp_path / memory_format, memory_format)
        losses = [trainer.train_step()["loss"] for _ in range(STEPS)]
        runs[memory_format] = flat_parameters(trainer.model) - theta_0, losses
    (update_a, losses_a), (update_b, losses_b) = runs["contiguous"], runs["channels_last"]
    torch.testing.assert_close(losses_b, losses_a, rtol=1e-5, atol=0.0)
    relative = float((update_b - update_a).norm() / update_a.norm())
    assert relative <= RTOL_UPDATE_FLOAT32, relative


def test_channels_last_leaves_2d_data_and_an_mlp_alone(tmp_path):
    """With 2-D points and a ToyMLP (no 4-D tensor anywhere) channels_last changes nothing:
    the run is bit-identical to the contiguous one."""
    params = {}
    for memory_format in ("contiguous", "channels_last"):
        model = ToyMLP(2, (16, 16), 8, generator=torch.Generator().manual_seed(0))
        config = TrainConfig(
            batch_size=4, warmup_steps=0, lr=1e-2, num_bins=None, seed=1,
            memory_format=memory_format, log_every=100,
        )  # fmt: skip
        data = toy_dataset("moons", 12, 0)
        diffusion = GaussianDiffusion(linear_schedule(T))
        trainer = Trainer(model, diffusion, data, config, out_dir=tmp_path / memory_format)
        for _ in range(STEPS):
            trainer.train_step()
        params[memory_format] = flat_parameters(trainer.model)
    assert torch.equal(params["channels_last"], params["contiguous"])


def test_a_channels_last_run_resumes_bit_identically(tmp_path):
    """4 steps in channels_last equal 2 steps, a checkpoint (saved contiguous, as
    safetensors requires), a fresh channels_last trainer resumed from it and 2 more, bit
    for bit; the resumed weights are channels_last again."""
    straight = unet_trainer(tmp_path / "a", "channels_last")
    straight.train(4)
    unet_trainer(tmp_path / "b", "channels_last").train(2)
    resumed = unet_trainer(tmp_path / "b", "channels_last", resume=True)
    assert resumed.step == 2
    resumed.train(4)
    assert all(
        w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(resumed.model)
    )
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name]), name


@pytest.mark.parametrize("bad", ["channels-last", "nhwc", "", None, True])
def test_a_bad_memory_format_raises_value_error_naming_the_field(bad):
    """TrainConfig and resolve_memory_format refuse a value outside MEMORY_FORMATS with a
    ValueError naming memory_format and the bad value."""
    with pytest.raises(ValueError, match=rf"memory_format.*{repr(bad)[:4]}"):
        TrainConfig(memory_format=bad)
    with pytest.raises(ValueError, match="memory_format"):
        resolve_memory_format(bad, "cpu")
