"""Layer 3: discrete diffusion on tokens, built on the corruption chains of layer 0.

`D3PM` (Austin et al. 2021) gathers the uniform and absorbing kernels of
`minidiff.markov.corruption` into tables and gives the posterior by Bayes, the exact
variational bound and the hybrid loss; `masked` is the continuous-time absorbing
diffusion of Sahoo et al. (2024, MDLM) with sampling by unmasking and infilling;
`ngram` holds the add-k baselines; `text` is the character-level pipeline.
"""

from minidiff.discrete.d3pm import D3PM, D3PM_LOSSES, HYBRID_CE_WEIGHT, D3PMLoss, posterior_matrix
from minidiff.discrete.masked import (
    absorbing_linear_beta,
    mask_tokens,
    masked_loss_terms,
    masked_nelbo,
    sample_masked,
    stratified_times,
)
from minidiff.discrete.ngram import best_add_k, ngram_bits_per_char
from minidiff.discrete.text import (
    TEXT_NETWORKS,
    TEXT_PROCESSES,
    TextDiffusionConfig,
    TextModel,
    TextNetwork,
    TextProcess,
    build_text_model,
    parse_prompt,
    sample_text,
    text_bits_per_char,
    train_text,
)

__all__ = [
    "D3PM",
    "D3PM_LOSSES",
    "D3PMLoss",
    "HYBRID_CE_WEIGHT",
    "posterior_matrix",
    "absorbing_linear_beta",
    "mask_tokens",
    "masked_loss_terms",
    "masked_nelbo",
    "sample_masked",
    "stratified_times",
    "best_add_k",
    "ngram_bits_per_char",
    "TEXT_NETWORKS",
    "TEXT_PROCESSES",
    "TextDiffusionConfig",
    "TextModel",
    "TextNetwork",
    "TextProcess",
    "build_text_model",
    "parse_prompt",
    "sample_text",
    "text_bits_per_char",
    "train_text",
]
