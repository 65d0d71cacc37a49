"""Tests of `minidiff.nn.diffwave`."""

import pytest
import torch

from minidiff.nn.diffwave import DiffWave, DiffWaveConfig


def _net(**kw):
    torch.manual_seed(0)
    net = DiffWave(
        DiffWaveConfig(channels=8, layers=4, dilation_cycle=2, embedding_dim=16, **kw)
    ).double()
    torch.nn.init.normal_(net.output.weight)  # the zero-initialised output would hide everything
    return net


def test_shape_and_zero_initial_output():
    """(B, 1, S) in, (B, 1, S) out; a fresh network predicts eps = 0 (zero output layer)."""
    torch.manual_seed(0)
    net = DiffWave(DiffWaveConfig(channels=8, layers=3))
    out = net(torch.randn(2, 1, 50), torch.tensor([1, 7]))
    assert out.shape == (2, 1, 50) and (out == 0).all()


def test_receptive_field_is_as_stated():
    """An impulse at s0 changes outputs exactly within receptive_field // 2 of s0."""
    net = _net()
    S, s0 = 64, 32
    x = torch.zeros(1, 1, S, dtype=torch.float64)
    bumped = x.clone()
    bumped[0, 0, s0] = 1.0
    t = torch.tensor([3])
    changed = (net(x, t) - net(bumped, t)).abs()[0, 0] > 0
    half = net.config.receptive_field // 2
    expected = (torch.arange(S) - s0).abs() <= half
    assert torch.equal(changed, expected)


def test_class_conditioning():
    """Labels change the output of a class-conditional net; missing labels are rejected."""
    net = _net(num_classes=3)
    x, t = torch.randn(1, 1, 20, dtype=torch.float64), torch.tensor([5])
    assert not torch.allclose(net(x, t, torch.tensor([0])), net(x, t, torch.tensor([2])))
    with pytest.raises(ValueError, match="labels"):
        net(x, t)
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(1, 20), t, torch.tensor([0]))
