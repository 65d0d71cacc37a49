"""Tests of `minidiff.training.objectives`: the draws of a training step per process."""

import torch

from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.discrete import AbsorbingDiffusionConfig, UniformDiffusionConfig
from minidiff.process.schedule import linear_schedule
from minidiff.training.objectives import training_draws


def test_gaussian_draws_are_algorithm_1s_t_and_eps():
    """For the Gaussian diffusion: t (B,) in 1..T and eps of x0's shape, the same as
    drawing t then eps from a generator with the same seed."""
    x0 = torch.zeros(64, 1, 5)
    diffusion = GaussianDiffusion(linear_schedule(7))
    draws = training_draws(diffusion, x0, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    t = torch.randint(1, 8, (64,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    assert torch.equal(draws["t"], t) and torch.equal(draws["eps"], eps)


def test_discrete_processes_draw_their_own():
    """A discrete process's draws come from its `training_draws`, and its training loss at
    those draws equals the loss it computes from the same generator state."""
    x0 = torch.randint(0, 5, (6, 9))
    denoiser = lambda xt, t: torch.zeros(*xt.shape, 5)  # noqa: E731
    for config in (AbsorbingDiffusionConfig(), UniformDiffusionConfig(T=4, loss="vlb")):
        diffusion = config.build(5)
        draws = training_draws(diffusion, x0, torch.Generator().manual_seed(2))
        assert set(draws) == {"t", "u"} and all(v.shape[0] == 6 for v in draws.values())
        loss = diffusion.training_losses(denoiser, x0, **draws)["loss"]
        again = diffusion.nelbo(denoiser, x0, torch.Generator().manual_seed(2))
        assert loss.shape == (6,) and torch.allclose(loss, again, rtol=1e-12, atol=1e-12)
