"""Layer 3: neural networks in PyTorch.

The DDPM U-Net (Ho et al. 2020, appendix B) and its blocks, the sinusoidal time
embedding, a converter from diffusers' ``UNet2DModel`` weights, the toy MLP in PyTorch
and analytic FLOP counts.
"""

from minidiff.nn.blocks import AttentionBlock, Downsample, ResBlock, Upsample
from minidiff.nn.convert import (
    convert_diffusers_state_dict,
    diffusers_ddpm_cifar10_config,
    load_diffusers_unet_state_dict,
)
from minidiff.nn.embedding import TimeEmbedding, sinusoidal_embedding
from minidiff.nn.flops import mlp_forward_flops, unet_forward_flops, unet_forward_macs
from minidiff.nn.mlp import ToyMLP, ToyMLPConfig
from minidiff.nn.unet import UNet, UNetConfig

__all__ = [
    "AttentionBlock",
    "Downsample",
    "ResBlock",
    "Upsample",
    "convert_diffusers_state_dict",
    "diffusers_ddpm_cifar10_config",
    "load_diffusers_unet_state_dict",
    "TimeEmbedding",
    "sinusoidal_embedding",
    "UNet",
    "UNetConfig",
    "ToyMLP",
    "ToyMLPConfig",
    "mlp_forward_flops",
    "unet_forward_flops",
    "unet_forward_macs",
]
