"""Tests of the diffusers weight converter: the full DDPM CIFAR-10 key mapping, output
equivalence with diffusers' ``UNet2DModel`` in float64, and clear errors on a mismatch."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DModel

from minidiff.nn.convert import (
    convert_diffusers_state_dict,
    diffusers_ddpm_cifar10_config,
    diffusers_key,
    load_diffusers_unet_state_dict,
)
from minidiff.nn.embedding import sinusoidal_embedding
from minidiff.nn.unet import UNet


class _Float64Timesteps(torch.nn.Module):
    """diffusers' time projection, evaluated in float64 (diffusers computes it in float32
    whatever the model's dtype; its layout is tested in test_embedding.py)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim, dtype=torch.float64)


def test_full_ddpm_cifar10_key_mapping_is_one_to_one():
    """Every parameter of UNet.ddpm_cifar10() has a diffusers counterpart of the same
    shape in the full google/ddpm-cifar10-32 layout, and every diffusers key is used
    (both built on the meta device: names and shapes only)."""
    with torch.device("meta"):
        ours = UNet.ddpm_cifar10()
        reference = UNet2DModel(**diffusers_ddpm_cifar10_config())
    converted = convert_diffusers_state_dict(ours, reference.state_dict())
    assert converted.keys() == ours.state_dict().keys()
    assert len(converted) == len(reference.state_dict())
    for name, tensor in ours.state_dict().items():
        assert converted[name].shape == tensor.shape, name


@pytest.mark.parametrize("num_classes", [None, 5])
def test_converted_network_matches_diffusers_output(num_classes):
    """The converted network computes the same function as diffusers' UNet2DModel: with
    random weights (every parameter, GroupNorm affine included, drawn at random) and
    random inputs, the outputs agree to float64 round-off (1e-10 relative to the output's
    scale). Same block layout as DDPM CIFAR-10 with channels (32, 64, 64, 64)."""
    channels = (32, 64, 64, 64)
    extra = {} if num_classes is None else {"num_class_embeds": num_classes}
    reference = UNet2DModel(**diffusers_ddpm_cifar10_config(channels, **extra)).double().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.2)
    reference.time_proj = _Float64Timesteps(channels[0])
    ours = UNet.ddpm_cifar10(base_channels=32, num_classes=num_classes).double().eval()
    load_diffusers_unet_state_dict(ours, reference.state_dict())

    x = torch.randn(2, 3, 32, 32, generator=generator, dtype=torch.float64)
    t = torch.tensor([0, 999])
    y = None if num_classes is None else torch.tensor([1, 4])
    with torch.no_grad():
        expected = reference(x, t, class_labels=y).sample
        out = ours(x, t, y)
    scale = expected.abs().max()
    assert scale > 0.1
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10 * float(scale))


def test_old_attention_names_are_accepted():
    """State dicts from older diffusers (attention ``query``/``key``/``value``/
    ``proj_attn``) convert to the same tensors as the current names."""
    with torch.device("meta"):
        ours = UNet.tiny(image_size=32, base_channels=32, channel_mults=(1, 2, 2, 2))
    state = {diffusers_key(name): torch.zeros(p.shape) for name, p in ours.state_dict().items()}
    renames = {
        ".to_q.": ".query.",
        ".to_k.": ".key.",
        ".to_v.": ".value.",
        ".to_out.0.": ".proj_attn.",
    }
    old = {}
    for key, value in state.items():
        for new_name, old_name in renames.items():
            key = key.replace(new_name, old_name)
        old[key] = value
    assert old.keys() != state.keys()
    assert convert_diffusers_state_dict(ours, old).keys() == ours.state_dict().keys()


def test_mismatched_state_dict_lists_every_problem():
    """A state dict that does not fit raises one ValueError listing the missing key, the
    unexpected key and the shape mismatch, each by name."""
    ours = UNet.tiny()
    state = {diffusers_key(name): p.clone() for name, p in ours.state_dict().items()}
    del state["conv_in.weight"]
    state["extra_block.weight"] = torch.zeros(1)
    state["conv_out.bias"] = torch.zeros(7)
    with pytest.raises(ValueError) as error:
        load_diffusers_unet_state_dict(ours, state)
    message = str(error.value)
    assert "missing keys (1): conv_in.weight" in message
    assert "unexpected keys (1): extra_block.weight" in message
    assert "conv_out.bias: (7,) but out_conv.bias is (3,)" in message


def test_wrong_architecture_is_refused():
    """Weights of the DDPM layout do not load into a net with attention elsewhere: the
    error names the attention keys that do not match."""
    with torch.device("meta"):
        reference = UNet2DModel(**diffusers_ddpm_cifar10_config((32, 64, 64, 64)))
        ours = UNet.ddpm_cifar10(base_channels=32, attention_resolutions=(8,))
    with pytest.raises(ValueError, match="down_blocks.1.attentions.0"):
        convert_diffusers_state_dict(ours, reference.state_dict())
