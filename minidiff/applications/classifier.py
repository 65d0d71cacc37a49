"""Classifiers of noisy data for classifier guidance (Dhariwal & Nichol 2021, sec. 4), and
the exact answers on a Gaussian mixture whose components are the classes.

- `NoiseAwareClassifier`: p(y | x_t, t) for images, the down half of the U-Net (ResBlocks
  fed the time embedding, a Downsample, attention-free), then global average pooling and
  a linear layer, as the paper's classifier is the U-Net's downsampling trunk with a
  pooled head (sec. 4).
- `train_noise_aware_classifier`: cross-entropy on x_t = q_sample(x_0, t, eps) with t
  uniform in 0..T, so the classifier sees every noise level the sampler will ask about
  (t = 0 included: the ``"mean"`` form evaluates it at step t - 1).
- `MixtureClassPosterior`: log p(y | x_t) of a `minidiff.toy.GaussianMixture` exactly,
  in torch float64, differentiable: the noised mixture's responsibilities.
- `MixtureConditionalDenoiser`: the exact class-conditional denoiser (component y alone)
  and, for the null label K, the exact marginal one: a conditional "network" whose
  classifier-free guidance has a known answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.oracle import noised_mixture_log_joint
from minidiff.nn.blocks import Downsample, ResBlock, group_norm
from minidiff.nn.embedding import TimeEmbedding
from minidiff.process import Schedule
from minidiff.toy.mixture import GaussianMixture

__all__ = [
    "NoiseAwareClassifier",
    "train_noise_aware_classifier",
    "MixtureClassPosterior",
    "MixtureConditionalDenoiser",
]


class NoiseAwareClassifier(nn.Module):
    """logits(x_t, t) over ``num_classes`` classes for (B, C, H, W) images.

    input conv -> per level: ResBlock (time embedding added) -> Downsample (not after the
    last) -> GroupNorm, SiLU, mean over positions -> linear.

    Args:
        in_channels: image channels.
        num_classes: classes.
        base_channels: channels of level 0 (a multiple of 32).
        channel_mults: channel multiplier per level.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2),
    ) -> None:
        super().__init__()
        if not channel_mults:
            raise ValueError(f"channel_mults must be non-empty, got {channel_mults!r}")
        time_channels = 4 * base_channels
        self.num_classes = int(num_classes)
        self.time_embedding = TimeEmbedding(base_channels, time_channels)
        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        blocks, downs, channels = [], [], base_channels
        for level, mult in enumerate(channel_mults):
            blocks.append(ResBlock(channels, base_channels * mult, time_channels))
            channels = base_channels * mult
            last = level == len(channel_mults) - 1
            downs.append(nn.Identity() if last else Downsample(channels))
        self.blocks, self.downs = nn.ModuleList(blocks), nn.ModuleList(downs)
        self.out_norm = group_norm(channels)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B,) -> (B, num_classes) logits."""
        emb = self.time_embedding(t)  # (B, 4 base)
        h = self.input_conv(x)  # (B, base, H, W)
        for block, down in zip(self.blocks, self.downs, strict=True):
            h = down(block(h, emb))
        h = F.silu(self.out_norm(h)).mean(dim=(2, 3))  # (B, C_last)
        return self.head(h)

    def log_prob(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B,) log p(y | x_t, t): the `ClassLogProb` of `ClassifierGuidance`."""
        log_p = torch.log_softmax(self(x, t), dim=1)  # (B, K)
        return log_p.gather(1, y[:, None].to(torch.int64))[:, 0]


def train_noise_aware_classifier(
    classifier: nn.Module,
    diffusion: GaussianDiffusion,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train ``classifier(x_t, t) -> logits`` by cross-entropy on noised data, in place.

    Each step draws a batch of (x_0, y), t ~ U{0..T}, eps ~ N(0, I), and minimises
    -log p(y | x_t, t) with x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
    (Ho et al. 2020, eq. 4), with Adam.

    Args:
        classifier: the network (left in eval mode).
        diffusion: the forward process.
        images: (N, C, H, W) clean data; labels: (N,) int64.
        steps, batch_size, lr: the optimisation.
        generator: draws batches, steps and noise.

    Returns:
        the loss of every step.
    """
    if len(images) != len(labels) or len(images) < 1:
        raise ValueError(f"images and labels must be non-empty and of one length, got "
                         f"{len(images)} and {len(labels)}")  # fmt: skip
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    classifier.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        x0, y = images[index], labels[index]
        t = torch.randint(0, diffusion.T + 1, (batch_size,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        loss = F.cross_entropy(classifier(diffusion.q_sample(x0, t, eps), t), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    classifier.eval()
    return losses


class MixtureClassPosterior:
    """log p(y | x_t) for x_0 from a `GaussianMixture` and y its component, exactly.

    The law of x_t given y = k is N(sqrt(alpha_bar_t) mu_k, S_k), S_k = alpha_bar_t Sigma_k
    + (1 - alpha_bar_t) I (`GaussianMixture.noised`), so by Bayes' rule

        log p(k | x_t) = log w_k + log N(x_t; sqrt(alpha_bar_t) mu_k, S_k) - log q_t(x_t).

    Computed in torch (float64 inside), differentiable in x_t; ``t`` may differ per sample.
    """

    def __init__(self, mixture: GaussianMixture, schedule: Schedule) -> None:
        self.mixture, self.schedule = mixture, schedule
        self._alpha_bar = torch.from_numpy(np.array(schedule.alpha_bar, dtype=np.float64))

    def log_posterior(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, K) log p(k | x_t) for every class k."""
        x = xt.to(torch.float64)
        alpha_bar = self._alpha_bar[t.cpu().to(torch.int64)].to(x.device)  # (B,)
        log_joint = noised_mixture_log_joint(self.mixture, alpha_bar, x)  # (B, K)
        return torch.log_softmax(log_joint, dim=1).to(xt.dtype)

    def log_prob(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B,) log p(y | x_t): the `ClassLogProb` of `ClassifierGuidance`."""
        return self.log_posterior(xt, t).gather(1, y[:, None].to(torch.int64))[:, 0]


class MixtureConditionalDenoiser:
    """``model(xt, t, y) -> output``: the exact denoiser of component y (y in 0..K-1) or of
    the whole mixture (y = K, the null label), in the given parameterization.

    Args:
        mixture: the data law; component k is class k.
        schedule: the schedule.
        parameterization: "eps", "x0" or "v" (see `GaussianMixture.denoiser`).
    """

    def __init__(
        self, mixture: GaussianMixture, schedule: Schedule, parameterization: str = "eps"
    ) -> None:
        self.null_label = mixture.K
        components = [
            GaussianMixture(np.ones(1), mixture.means[k : k + 1], mixture.covs[k : k + 1])
            for k in range(mixture.K)
        ]
        self._denoisers: list[Callable] = [
            law.denoiser(schedule, parameterization) for law in (*components, mixture)
        ]

    def __call__(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = xt.detach().cpu().to(torch.float64).numpy()
        steps, labels = t.cpu().numpy(), y.cpu().numpy()
        if labels.min() < 0 or labels.max() > self.null_label:
            raise ValueError(f"y must lie in [0, {self.null_label}], got {labels.min()}.."
                             f"{labels.max()}")  # fmt: skip
        out = np.empty_like(x)
        for label in np.unique(labels):
            rows = labels == label
            out[rows] = self._denoisers[int(label)](x[rows], steps[rows])
        return torch.from_numpy(out).to(device=xt.device, dtype=xt.dtype)
