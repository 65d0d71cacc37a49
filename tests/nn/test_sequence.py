"""Tests of `minidiff.nn.sequence`: the token denoisers."""

import pytest
import torch

from minidiff.nn.sequence import DilatedConvDenoiser, SequenceDenoiserConfig, TransformerDenoiser

NETWORKS = (DilatedConvDenoiser, TransformerDenoiser)
V = 7


def _net(cls, **kw):
    torch.manual_seed(0)
    net = cls(SequenceDenoiserConfig(vocab_size=V, width=16, depth=3, kernel_size=3, heads=2, **kw))
    for module in net.modules():  # adaLN starts at zero; randomise it so time matters
        if module.__class__.__name__ == "_AdaNorm":
            torch.nn.init.normal_(module.modulation.weight, std=0.5)
    return net.double()


@pytest.mark.parametrize("cls", NETWORKS)
def test_output_shape_is_logits_over_data_states(cls):
    """(B, L) ids with the mask (V) and t (B,) give (B, L, V) logits."""
    xt = torch.randint(0, V + 1, (3, 11))
    assert _net(cls)(xt, torch.rand(3)).shape == (3, 11, V)


@pytest.mark.parametrize("cls", NETWORKS)
def test_bidirectional_context(cls):
    """The first position's logits depend on a later token, and the last on an earlier one."""
    net, t = _net(cls), torch.full((1,), 0.5)
    xt = torch.randint(0, V, (1, 9))
    changed = xt.clone()
    changed[0, 4] = (xt[0, 4] + 1) % V
    a, b = net(xt, t), net(changed, t)
    assert not torch.allclose(a[0, 0], b[0, 0]) and not torch.allclose(a[0, -1], b[0, -1])


@pytest.mark.parametrize("cls", NETWORKS)
def test_time_conditioning_changes_the_output(cls):
    """Different t, same tokens: different logits (once the adaLN weights are non-zero)."""
    net, xt = _net(cls), torch.randint(0, V + 1, (1, 6))
    assert not torch.allclose(net(xt, torch.tensor([0.1])), net(xt, torch.tensor([0.9])))


@pytest.mark.parametrize("cls", NETWORKS)
def test_bad_inputs_raise(cls):
    """Float tokens, ids beyond the mask and a t of the wrong shape are rejected."""
    net = _net(cls)
    with pytest.raises(ValueError, match="int64"):
        net(torch.zeros(1, 4), torch.zeros(1))
    with pytest.raises(ValueError, match="token ids"):
        net(torch.full((1, 4), V + 1), torch.zeros(1))
    with pytest.raises(ValueError, match="t must"):
        net(torch.zeros(1, 4, dtype=torch.long), torch.zeros(2))


def test_config_validation():
    """Even kernels, zero widths and widths not divisible by heads are rejected."""
    with pytest.raises(ValueError, match="odd"):
        SequenceDenoiserConfig(vocab_size=4, kernel_size=4)
    with pytest.raises(ValueError, match="width"):
        SequenceDenoiserConfig(vocab_size=4, width=0)
    with pytest.raises(ValueError, match="divisible"):
        SequenceDenoiserConfig(vocab_size=4, width=10, heads=4)
