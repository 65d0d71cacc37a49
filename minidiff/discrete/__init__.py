"""Layer 3: discrete diffusion on tokens, built on the corruption chains of layer 0.

`D3PM` (Austin et al. 2021) gathers the uniform and absorbing kernels of
`minidiff.markov.corruption` into tables and gives the posterior by Bayes, the exact
variational bound and the hybrid loss; `masked` is the continuous-time absorbing
diffusion of Sahoo et al. (2024, MDLM) with sampling by unmasking and infilling;
`configs` holds the diffusion sections of text presets; `ngram` the add-k baselines;
`text` scores, samples and infills characters.
"""

from minidiff.discrete.configs import AbsorbingDiffusionConfig, UniformDiffusionConfig
from minidiff.discrete.d3pm import D3PM, D3PM_LOSSES, HYBRID_CE_WEIGHT, D3PMLoss, posterior_matrix
from minidiff.discrete.masked import (
    MaskedDiffusion,
    absorbing_linear_beta,
    mask_tokens,
    masked_loss_terms,
    masked_nelbo,
    sample_masked,
    stratified_times,
)
from minidiff.discrete.ngram import best_add_k, ngram_bits_per_char
from minidiff.discrete.text import parse_prompt, sample_text, text_bits_per_char

__all__ = [
    "AbsorbingDiffusionConfig",
    "UniformDiffusionConfig",
    "D3PM",
    "D3PM_LOSSES",
    "D3PMLoss",
    "HYBRID_CE_WEIGHT",
    "posterior_matrix",
    "MaskedDiffusion",
    "absorbing_linear_beta",
    "mask_tokens",
    "masked_loss_terms",
    "masked_nelbo",
    "sample_masked",
    "stratified_times",
    "best_add_k",
    "ngram_bits_per_char",
    "parse_prompt",
    "sample_text",
    "text_bits_per_char",
]
