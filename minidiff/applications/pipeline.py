"""Conditional digits, end to end: `train_conditional` trains a label- or caption-
conditioned U-Net with condition dropout (Ho & Salimans 2022, Algorithm 1) from one frozen
`ConditionalConfig`; `sample_guided` draws with classifier-free guidance,
`train_digits_classifier` and `sample_classifier_guided` do the same with classifier
guidance (Dhariwal & Nichol 2021) on the same model's unconditional prediction.

The network and the training settings default to the ``digits`` preset's (the 8x8 digits
as they are, a `UNet.tiny`-sized net, linear schedule T = 1000, eps, DDIM with eta = 1 and
50 steps); a caption model adds a `CaptionEncoder` and cross-attention.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from minidiff.applications.captions import (
    TRAIN_TEMPLATES,
    AttributeThresholds,
    WordTokenizer,
    caption,
)
from minidiff.applications.classifier import NoiseAwareClassifier, train_noise_aware_classifier
from minidiff.applications.guidance import ClassifierFreeGuidance, ClassifierGuidance
from minidiff.applications.text import CaptionEncoder, TextConditionedUNet
from minidiff.diffusion import GaussianDiffusion, sample_ddim
from minidiff.nn.conditioning import P_UNCOND, drop_mask
from minidiff.nn.unet import UNet
from minidiff.process import linear_schedule
from minidiff.toy.train import learning_rate
from minidiff.training.ema import EMA

__all__ = [
    "CONDITIONS",
    "ConditionalConfig",
    "ConditionalModel",
    "build_model",
    "build_diffusion",
    "train_conditional",
    "sample_guided",
    "train_digits_classifier",
    "sample_classifier_guided",
]

CONDITIONS = ("class", "caption")
Condition = Literal["class", "caption"]
NUM_CLASSES = 10


@dataclass(frozen=True)
class ConditionalConfig:
    """The settings of a conditional digits model (defaults: the ``digits`` preset's)."""

    condition: Condition = "class"  # a label (0..9) or a caption
    p_uncond: float = P_UNCOND  # condition-drop probability (see minidiff.nn.conditioning)
    base_channels: int = 32  # U-Net: `UNet.tiny`'s base, mults, blocks, attention at 4x4
    channel_mults: tuple[int, ...] = (1, 2)
    attention_resolutions: tuple[int, ...] = (4,)  # also where captions are cross-attended
    text_dim: int = 64  # caption encoder width
    text_layers: int = 2  # caption encoder Transformer layers
    caption_length: int = 12  # tokens per caption, start token included
    T: int = 1000  # linear schedule (Ho et al. 2020)
    lr: float = 2e-3  # peak Adam learning rate (warmup, then cosine decay)
    batch_size: int = 128
    steps: int = 2800
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # for 2800 steps; shorter runs need less (0.99 for ~400)
    seed: int = 0
    sampling_steps: int = 50  # DDIM steps
    sampling_eta: float = 1.0  # DDIM eta (1: stochastic, best for this small a net)

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if not 0.0 <= self.p_uncond <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {self.p_uncond!r}")
        for name in ("base_channels", "T", "batch_size", "sampling_steps", "caption_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("steps", "warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.sampling_steps > self.T:
            raise ValueError(f"sampling_steps must be <= T = {self.T}, got {self.sampling_steps}")


@dataclass
class ConditionalModel:
    """A trained conditional model: the network with its EMA weights, in eval mode."""

    config: ConditionalConfig
    model: nn.Module
    diffusion: GaussianDiffusion
    tokenizer: WordTokenizer | None = None
    thresholds: AttributeThresholds | None = None
    losses: list[float] = field(default_factory=list)
    train_seconds: float = 0.0


def build_model(config: ConditionalConfig, vocabulary_size: int | None = None) -> nn.Module:
    """The network of ``config``: a class-conditional U-Net, or a caption encoder and a
    U-Net that cross-attends to it."""
    text = config.condition == "caption"
    unet = UNet.tiny(
        in_channels=1, base_channels=config.base_channels, channel_mults=config.channel_mults,
        attention_resolutions=config.attention_resolutions,
        num_classes=None if text else NUM_CLASSES, context_dim=config.text_dim if text else None,
    )  # fmt: skip
    if not text:
        return unet
    encoder = CaptionEncoder(vocabulary_size, config.text_dim, config.text_layers,
                             max_length=config.caption_length)  # fmt: skip
    return TextConditionedUNet(encoder, unet)


def build_diffusion(config: ConditionalConfig) -> GaussianDiffusion:
    """The linear schedule of T steps, eps prediction, fixed_large variance (the digits
    preset's diffusion)."""
    return GaussianDiffusion(linear_schedule(config.T), "eps", variance="fixed_large")


def _training_captions(tokenizer, thresholds, images, labels, length) -> tuple[torch.Tensor, ...]:
    """Every training template that fits each image, tokenized: (N, M, L) ids and (N,)
    counts (the first counts[i] of row i are valid)."""
    words = thresholds.words(images, labels)
    per_image = [
        [c for tpl in TRAIN_TEMPLATES if (c := caption(tpl, int(k), *w)) is not None]
        for k, w in zip(labels, words, strict=True)
    ]
    tokens = torch.zeros(len(per_image), len(TRAIN_TEMPLATES), length, dtype=torch.int64)
    for i, texts in enumerate(per_image):
        tokens[i, : len(texts)] = tokenizer.encode(texts, length)
    return tokens, torch.tensor([len(texts) for texts in per_image])


def train_conditional(config: ConditionalConfig, *, progress: bool = False) -> ConditionalModel:
    """Train a conditional digits model on the "train" split of `minidiff.data.load_digits`.

    Each step: a batch (x_0, condition); each condition replaced by the null one with
    probability p_uncond (null label 10, or the empty caption); L_simple (Ho et al. 2020,
    eq. 14) through `GaussianDiffusion.training_losses`; Adam with warmup and cosine
    decay, gradient-norm clipping, an EMA of the weights (kept as the result's model).
    A caption is one of the training templates that fit the image, drawn afresh each time.
    """
    from minidiff.data import load_digits

    if not isinstance(config, ConditionalConfig):
        raise TypeError(f"config must be a ConditionalConfig, got {type(config).__name__}")
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # the network's initial weights
    images, labels = load_digits("train", labels=True)
    tokenizer = thresholds = captions = None
    if config.condition == "caption":
        tokenizer = WordTokenizer.for_digits()
        thresholds = AttributeThresholds.fit(images, labels)
        captions = _training_captions(tokenizer, thresholds, images, labels,
                                      config.caption_length)  # fmt: skip
    model = build_model(config, len(tokenizer) if tokenizer else None)
    diffusion = build_diffusion(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = EMA(model, config.ema_decay)
    losses, start = [], time.perf_counter()
    steps = range(config.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"train ({config.condition})")
    for step in steps:
        index = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        drop = drop_mask(config.batch_size, config.p_uncond, generator)  # (B,)
        if captions is None:
            condition = torch.where(drop, NUM_CLASSES, labels[index])  # (B,)
        else:
            tokens, counts = captions[0][index], captions[1][index]  # (B, M, L), (B,)
            pick = (torch.rand(config.batch_size, generator=generator) * counts).long()
            condition = tokens[torch.arange(config.batch_size), pick]  # (B, L)
            condition[drop] = tokenizer.encode([""], config.caption_length)[0]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config.steps, config.lr, config.warmup_steps)
        loss = diffusion.training_losses(model, images[index], y=condition,
                                         generator=generator)["loss"].mean()  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        ema.update(model)
        losses.append(loss.item())
    ema.copy_to(model)
    model.eval()
    return ConditionalModel(config, model, diffusion, tokenizer, thresholds, losses,
                            time.perf_counter() - start)  # fmt: skip


def _null_condition(trained: ConditionalModel, n: int) -> torch.Tensor:
    if trained.tokenizer is None:
        return torch.full((n,), NUM_CLASSES, dtype=torch.int64)
    return trained.tokenizer.encode([""] * n, trained.config.caption_length)


def _condition(trained: ConditionalModel, condition) -> torch.Tensor:
    """Labels (N,) for a class model; captions (a list of str) tokenized for a caption model."""
    if trained.tokenizer is None:
        labels = torch.as_tensor(condition, dtype=torch.int64)
        if labels.ndim != 1 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise ValueError(f"condition must be (N,) labels in 0..9, got {labels.tolist()}")
        return labels
    if isinstance(condition, str) or not all(isinstance(c, str) for c in condition):
        raise ValueError("condition must be a list of captions for a caption model")
    return trained.tokenizer.encode(list(condition), trained.config.caption_length)


def _sample(trained, make_denoiser, n, generator, batch_size, steps, eta) -> torch.Tensor:
    """DDIM samples (n, 1, 8, 8) in chunks; ``make_denoiser(rows)`` guides a chunk."""
    c = trained.config
    chunks = []
    for first in range(0, n, batch_size):
        rows = slice(first, min(n, first + batch_size))
        x_T = torch.randn(rows.stop - rows.start, 1, 8, 8, generator=generator)
        chunks.append(sample_ddim(make_denoiser(rows), trained.diffusion, x_T,
                                  steps=steps or c.sampling_steps,
                                  eta=c.sampling_eta if eta is None else eta,
                                  generator=generator, clip_x0=1.0))  # fmt: skip
    return torch.cat(chunks)


def sample_guided(
    trained: ConditionalModel,
    condition,
    scale: float,
    *,
    rescale: float = 0.0,
    steps: int | None = None,
    eta: float | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> torch.Tensor:
    """Samples with classifier-free guidance of scale s (DDIM, x0 clipped to [-1, 1]).

    Args:
        trained: a `ConditionalModel`.
        condition: (N,) labels in 0..9 for a class model, a list of N captions for a
            caption model.
        scale: s (0 unconditional, 1 conditional, > 1 guided).
        rescale: Lin et al. (2024)'s phi.
        steps, eta: DDIM steps and eta (None: the config's).
        generator: draws x_T and the DDIM noise.
        batch_size: samples per sampler call (the model sees twice as many).

    Returns:
        (N, 1, 8, 8) images in [-1, 1].
    """
    cond = _condition(trained, condition)
    null = _null_condition(trained, len(cond))

    def make_denoiser(rows):
        return ClassifierFreeGuidance(trained.model, cond[rows], null[rows], scale,
                                      rescale=rescale, diffusion=trained.diffusion)  # fmt: skip

    with torch.no_grad():
        return _sample(trained, make_denoiser, len(cond), generator, batch_size, steps, eta)


def train_digits_classifier(
    trained: ConditionalModel, *, steps: int = 1500, batch_size: int = 128, seed: int = 0
) -> NoiseAwareClassifier:
    """A `NoiseAwareClassifier` p(y | x_t, t) trained on noised digits of the train split
    with ``trained``'s forward process."""
    from minidiff.data import load_digits

    torch.manual_seed(seed)
    images, labels = load_digits("train", labels=True)
    classifier = NoiseAwareClassifier(1, NUM_CLASSES, trained.config.base_channels)
    train_noise_aware_classifier(classifier, trained.diffusion, images, labels, steps=steps,
                                 batch_size=batch_size,
                                 generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return classifier


def sample_classifier_guided(
    trained: ConditionalModel,
    classifier: NoiseAwareClassifier,
    labels,
    scale: float,
    *,
    steps: int | None = None,
    eta: float | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> torch.Tensor:
    """Samples guided by ``classifier`` (the eps form, Dhariwal & Nichol 2021, Algorithm 2)
    from the unconditional prediction (the null label) of a class model: (N, 1, 8, 8)."""
    if trained.tokenizer is not None:
        raise ValueError("classifier guidance here needs a class model (condition='class')")
    y = _condition(trained, labels)

    def unconditional(xt, t):
        return trained.model(xt, t, torch.full((xt.shape[0],), NUM_CLASSES))

    def make_denoiser(rows):
        return ClassifierGuidance(unconditional, trained.diffusion, classifier.log_prob,
                                  y[rows], scale, form="eps")  # fmt: skip

    with torch.no_grad():
        return _sample(trained, make_denoiser, len(y), generator, batch_size, steps, eta)
