"""Load the weights of a diffusers ``UNet2DModel`` of the DDPM layout into `UNet`.

The released DDPM CIFAR-10 weights are on the Hugging Face Hub as google/ddpm-cifar10-32,
in diffusers' layout: ``block_out_channels=(128, 256, 256, 256)``, ``down_block_types=
("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D")``, ``up_block_types=
("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")``, ``layers_per_block=2``,
``attention_head_dim=None`` (one head), ``norm_num_groups=32``, ``norm_eps=1e-6``,
``downsample_padding=0`` ("SAME" padding), ``flip_sin_to_cos=False``, ``freq_shift=1``.
The two networks compute the same function; only the parameter names differ. With
internet access and diffusers installed::

    from diffusers import UNet2DModel
    from minidiff.nn import UNet, load_diffusers_unet_state_dict

    reference = UNet2DModel.from_pretrained("google/ddpm-cifar10-32")
    unet = load_diffusers_unet_state_dict(UNet.ddpm_cifar10(), reference.state_dict())

(minidiff never downloads anything itself.) Checkpoints saved with older diffusers
versions name the attention layers ``query``/``key``/``value``/``proj_attn``; both
spellings are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from minidiff.nn.unet import UNet

__all__ = [
    "diffusers_ddpm_cifar10_config",
    "diffusers_key",
    "convert_diffusers_state_dict",
    "load_diffusers_unet_state_dict",
]


def diffusers_ddpm_cifar10_config(
    block_out_channels: tuple[int, ...] = (128, 256, 256, 256), **overrides
) -> dict:
    """The arguments of diffusers' ``UNet2DModel`` for google/ddpm-cifar10-32, the layout
    this converter reads (``block_out_channels`` may be scaled down for small tests;
    ``overrides`` set any other argument, e.g. ``dropout=0.1``, the paper's value)."""
    config = dict(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(block_out_channels),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        attention_head_dim=None,
        norm_num_groups=32,
        norm_eps=1e-6,
        downsample_padding=0,
        flip_sin_to_cos=False,
        freq_shift=1,
        act_fn="silu",
        time_embedding_type="positional",
        center_input_sample=False,
    )
    return {**config, **overrides}


# minidiff name -> diffusers name, applied in order to a parameter's dotted name.
_RULES: tuple[tuple[str, str], ...] = (
    (r"^input_conv\.", "conv_in."),
    (r"^out_norm\.", "conv_norm_out."),
    (r"^out_conv\.", "conv_out."),
    (r"^down\.(\d+)\.res_blocks\.", r"down_blocks.\1.resnets."),
    (r"^down\.(\d+)\.attentions\.", r"down_blocks.\1.attentions."),
    (r"^down\.(\d+)\.downsample\.", r"down_blocks.\1.downsamplers.0."),
    (r"^up\.(\d+)\.res_blocks\.", r"up_blocks.\1.resnets."),
    (r"^up\.(\d+)\.attentions\.", r"up_blocks.\1.attentions."),
    (r"^up\.(\d+)\.upsample\.", r"up_blocks.\1.upsamplers.0."),
    (r"^middle\.res_block_1\.", "mid_block.resnets.0."),
    (r"^middle\.attention\.", "mid_block.attentions.0."),
    (r"^middle\.res_block_2\.", "mid_block.resnets.1."),
    # inside a ResBlock
    (r"\.time_proj\.", ".time_emb_proj."),
    (r"\.skip\.", ".conv_shortcut."),
    # inside an AttentionBlock
    (r"(attentions\.\d+)\.norm\.", r"\1.group_norm."),
    (r"(attentions\.\d+)\.q\.", r"\1.to_q."),
    (r"(attentions\.\d+)\.k\.", r"\1.to_k."),
    (r"(attentions\.\d+)\.v\.", r"\1.to_v."),
    (r"(attentions\.\d+)\.proj_out\.", r"\1.to_out.0."),
)

# Older diffusers attention names -> current ones.
_DEPRECATED: tuple[tuple[str, str], ...] = (
    (r"(attentions\.\d+)\.query\.", r"\1.to_q."),
    (r"(attentions\.\d+)\.key\.", r"\1.to_k."),
    (r"(attentions\.\d+)\.value\.", r"\1.to_v."),
    (r"(attentions\.\d+)\.proj_attn\.", r"\1.to_out.0."),
)


def diffusers_key(name: str) -> str:
    """The diffusers ``UNet2DModel`` name of the `UNet` parameter ``name``.

    Both up paths are stored in the order they run (index 0 = lowest resolution), and
    the time and class embeddings have the same names in both.
    """
    for pattern, replacement in _RULES:
        name = re.sub(pattern, replacement, name)
    return name


def _modernise(name: str) -> str:
    for pattern, replacement in _DEPRECATED:
        name = re.sub(pattern, replacement, name)
    return name


def convert_diffusers_state_dict(
    unet: UNet, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename a diffusers ``UNet2DModel`` state dict to ``unet``'s parameter names.

    Args:
        unet: the target network; its architecture decides which keys are expected.
        state_dict: a diffusers ``UNet2DModel.state_dict()`` of the DDPM layout (module
            docstring) with the same channels, levels and attention resolutions.

    Returns:
        A state dict for ``unet.load_state_dict`` (the same tensors, renamed).

    Raises:
        ValueError: listing every missing, unexpected and shape-mismatched key, if the
            state dict does not fit ``unet``.
    """
    source = {_modernise(key): value for key, value in state_dict.items()}
    converted, missing, mismatched = {}, [], []
    for name, target in unet.state_dict().items():
        key = diffusers_key(name)
        if key not in source:
            missing.append(key)
        elif name == "class_embedding.weight" and source[key].shape[0] == target.shape[0] - 1:
            # diffusers has no null label: keep this net's own null row (the last one)
            converted[name] = torch.cat([source[key], target[-1:].to(source[key])])
        elif tuple(source[key].shape) != tuple(target.shape):
            mismatched.append(
                f"{key}: {tuple(source[key].shape)} but {name} is {tuple(target.shape)}"
            )
        else:
            converted[name] = source[key]
    used = {diffusers_key(name) for name in unet.state_dict()}
    unexpected = sorted(key for key in source if key not in used)
    if missing or unexpected or mismatched:
        lines = ["the diffusers state dict does not fit this UNet:"]
        for title, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                lines.append(f"{title} ({len(keys)}): " + ", ".join(keys))
        raise ValueError("\n".join(lines))
    return converted


def load_diffusers_unet_state_dict(unet: UNet, state_dict: Mapping[str, torch.Tensor]) -> UNet:
    """Copy a diffusers ``UNet2DModel`` state dict into ``unet`` (in place) and return it.

    The tensors are cast to ``unet``'s dtype and device. Raises ``ValueError`` as
    `convert_diffusers_state_dict` does.
    """
    unet.load_state_dict(convert_diffusers_state_dict(unet, state_dict), strict=True)
    return unet
