"""SR3 and SRDiff super-resolution (`minidiff.applications.superres`)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from minidiff.applications.superres import (
    SUPERRES_PRESETS,
    SuperResConfig,
    SuperResNet,
    downsample,
    load_superres,
    low_res_condition,
    save_superres,
    superres_loss,
    train_superres,
    upsample,
    upscale,
)
from minidiff.evaluation.likelihood import mixture_denoiser
from minidiff.toy import GaussianMixture
from tests.tolerances import N_STANDARD_ERRORS

TINY = replace(SUPERRES_PRESETS["digits-sr2"], T=50, steps=3, batch_size=4, sampling_steps=5)


class _Recorder(torch.nn.Module):
    """A network that keeps the conditions it is given and predicts zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.conditions: list[torch.Tensor] = []
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, xt, t, condition):
        self.conditions.append(condition.clone())
        return self.weight * xt


@pytest.mark.parametrize("target", ["image", "residual"])
def test_noise_augmentation_is_the_same_in_training_and_sampling(target):
    """With the same generator state, the loss and the sampler give the network the same
    noise-augmented condition for the same low-resolution image (the augmentation drawn
    first, then upsampled, in both)."""
    config = replace(TINY, aug_sigma=0.3, target=target)
    high = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    train_net, sample_net = _Recorder(), _Recorder()
    superres_loss(train_net, config.diffusion(), high, config, torch.Generator().manual_seed(5))
    upscale(sample_net, config.diffusion(), downsample(high, 2), config,
            generator=torch.Generator().manual_seed(5))  # fmt: skip
    assert torch.equal(train_net.conditions[0], sample_net.conditions[0])
    assert all(torch.equal(c, sample_net.conditions[0]) for c in sample_net.conditions)
    assert not torch.equal(train_net.conditions[0], upsample(downsample(high, 2), 2))


def test_exact_residual_denoiser_samples_the_residual_law():
    """If x_high = up(x_low) + r with r ~ N(0, 0.04 I) independent of x_low, the exact
    denoiser of r's law (a one-component Gaussian mixture) is the exact conditional
    denoiser; SRDiff's samples minus up(x_low) then have per-pixel variance 0.04 (within
    4 standard errors, sd of a variance estimate var sqrt(2 / (n - 1))) and mean 0; T = 500
    keeps the ancestral discretisation bias (7% at T = 200) well below that."""
    config = replace(TINY, T=500, sampling_steps=500, aug_sigma=0.0)  # cosine, 500 steps
    diffusion = config.diffusion()
    law = GaussianMixture([1.0], [np.zeros(64)], [0.04 * np.eye(64)])
    exact = mixture_denoiser(law, diffusion)

    def network(xt, t, condition):  # images (B, 1, 8, 8) as vectors of 64
        return exact(xt.reshape(len(xt), -1), t).reshape(xt.shape)

    low = torch.zeros(100, 1, 4, 4, dtype=torch.float64)
    out = upscale(network, diffusion, low, config, generator=torch.Generator().manual_seed(0))
    r = (out - upsample(low, 2)).flatten()
    n = r.numel()
    assert abs(float(r.var()) - 0.04) < N_STANDARD_ERRORS * 0.04 * math.sqrt(2 / (n - 1))
    assert abs(float(r.mean())) < N_STANDARD_ERRORS * 0.2 / math.sqrt(100)  # images: 100


def test_sr3_with_a_point_mass_denoiser_returns_that_image():
    """SR3 (target "image") whose exact denoiser knows x_0 = c returns c."""
    config = replace(TINY, target="image", sampling_eta=0.0)
    diffusion = config.diffusion()
    c = torch.linspace(-0.9, 0.9, 64, dtype=torch.float64).reshape(1, 1, 8, 8)
    sqrt_ab = torch.tensor(diffusion.schedule.sqrt_alpha_bar)
    sqrt_1m = torch.tensor(diffusion.schedule.sqrt_one_minus_alpha_bar)

    def network(xt, t, condition):  # eps = (x_t - sqrt(alpha_bar) c) / sqrt(1 - alpha_bar)
        return (xt - sqrt_ab[t].reshape(-1, 1, 1, 1) * c) / sqrt_1m[t].reshape(-1, 1, 1, 1)

    out = upscale(network, diffusion, torch.zeros(2, 1, 4, 4, dtype=torch.float64), config)
    torch.testing.assert_close(out, c.expand(2, 1, 8, 8), rtol=0, atol=1e-9)


def test_down_and_up_sampling_shapes_and_block_means():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert downsample(x, 2).tolist() == [[[[2.5, 4.5], [10.5, 12.5]]]]
    assert upsample(downsample(x, 2), 2).shape == (1, 1, 4, 4)
    constant = torch.full((1, 1, 3, 3), 0.25)
    torch.testing.assert_close(upsample(constant, 2), torch.full((1, 1, 6, 6), 0.25))
    assert torch.equal(low_res_condition(x, 2, 0.0, None), upsample(x, 2))


def test_training_runs_and_returns_the_ema_network():
    """A few steps: finite losses, an eval-mode network of the right output shape."""
    high = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    network, losses = train_superres(TINY, high)
    assert len(losses) == TINY.steps and all(math.isfinite(v) for v in losses)
    assert isinstance(network, SuperResNet) and not network.training
    out = upscale(network, TINY.diffusion(), downsample(high[:2], 2), TINY)
    assert out.shape == (2, 1, 8, 8) and out.abs().max() <= 1


def test_config_round_trips_and_checks_its_settings():
    for config in SUPERRES_PRESETS.values():
        assert SuperResConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="target"):
        replace(TINY, target="both")
    with pytest.raises(ValueError, match="factor"):
        replace(TINY, factor=3)
    with pytest.raises(ValueError, match="aug_sigma"):
        replace(TINY, aug_sigma=-1.0)


def test_saved_run_loads_to_the_same_network(tmp_path):
    """save_superres then load_superres: the same config and the same outputs."""
    network, _ = train_superres(replace(TINY, steps=1), torch.zeros(8, 1, 8, 8))
    save_superres(tmp_path / "run", network, TINY)
    loaded, config = load_superres(tmp_path / "run")
    assert config == TINY
    x, t, c = torch.randn(2, 1, 8, 8), torch.tensor([3, 7]), torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded(x, t, c), network(x, t, c))
    with pytest.raises(FileNotFoundError, match="no super-resolution run"):
        load_superres(tmp_path / "nothing")
