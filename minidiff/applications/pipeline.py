"""Classifier guidance on a trained class-conditional digits run (Dhariwal & Nichol 2021).

A ``digits-cond`` run (`minidiff.configs`, trained by `minidiff.runs.train`, loaded by
`minidiff.runs.load_run`) samples with classifier-free guidance through
`minidiff.runs.sample`. Classifier guidance needs one more network:
`train_digits_classifier` trains a noise-aware classifier p(y | x_t, t) on noised digits
with the run's forward process, and `sample_classifier_guided` draws with it (the eps
form, Algorithm 2 of Dhariwal & Nichol) from the same run's *unconditional* prediction
(the null label), so that the two guidances compare on one model.

A run here is anything with ``model`` (``model(xt, t, y)``, a class-conditional network
whose null label is ``preset.model.num_classes``), ``diffusion`` and ``preset``: a
`minidiff.runs.Run`.
"""

from __future__ import annotations

import torch

from minidiff.applications.classifier import NoiseAwareClassifier, train_noise_aware_classifier
from minidiff.applications.guidance import ClassifierGuidance
from minidiff.diffusion import sample_ddim

__all__ = ["train_digits_classifier", "sample_classifier_guided"]


def _classes(run) -> int:
    classes = getattr(run.preset.model, "num_classes", None)
    if classes is None:
        raise ValueError(f"classifier guidance here needs a class-conditional run (a -cond "
                         f"preset), got preset {run.preset.name!r}")  # fmt: skip
    return classes


def train_digits_classifier(
    run, *, steps: int = 1500, batch_size: int = 128, seed: int = 0
) -> NoiseAwareClassifier:
    """A `NoiseAwareClassifier` p(y | x_t, t) trained on noised digits of the train split
    with ``run``'s forward process (width: the run's ``base_channels``)."""
    from minidiff.data import load_digits

    classes = _classes(run)
    torch.manual_seed(seed)
    images, labels = load_digits("train", pad_to=run.preset.data.pad_to, labels=True)
    classifier = NoiseAwareClassifier(1, classes, run.preset.model.base_channels)
    train_noise_aware_classifier(classifier, run.diffusion, images, labels, steps=steps,
                                 batch_size=batch_size,
                                 generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return classifier.eval()


def sample_classifier_guided(
    run,
    classifier: NoiseAwareClassifier,
    labels: torch.Tensor,
    scale: float,
    *,
    steps: int | None = None,
    eta: float | None = None,
    seed: int = 0,
    batch_size: int = 500,
) -> torch.Tensor:
    """Samples guided by ``classifier`` towards ``labels`` from the unconditional
    prediction (the null label) of a class-conditional run: DDIM with the eps form of
    classifier guidance, x0 clipped to [-1, 1].

    Args:
        run: a class-conditional `minidiff.runs.Run`.
        classifier: p(y | x_t, t), e.g. from `train_digits_classifier`.
        labels: (N,) classes in 0..C-1.
        scale: s (0: the unconditional model).
        steps, eta: DDIM steps and eta (None: the preset's).
        seed: seeds x_T and the DDIM noise.
        batch_size: samples per sampler call.

    Returns:
        (N, C, H, W) images in [-1, 1].
    """
    classes = _classes(run)
    y = torch.as_tensor(labels, dtype=torch.int64)
    if y.ndim != 1 or y.numel() == 0 or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must be (N,) classes in 0..{classes - 1}, got {y.tolist()}")
    s = run.preset.sampling
    steps, eta = steps or s.sampling_steps, s.sampling_eta if eta is None else eta
    generator = torch.Generator().manual_seed(seed)

    def unconditional(xt, t):
        return run.model(xt, t, torch.full((xt.shape[0],), classes))

    chunks = []
    with torch.no_grad():
        for first in range(0, len(y), batch_size):
            rows = y[first : first + batch_size]
            guided = ClassifierGuidance(unconditional, run.diffusion, classifier.log_prob, rows,
                                        scale, form="eps")  # fmt: skip
            x_T = torch.randn(len(rows), *run.preset.sample_shape, generator=generator)
            chunks.append(sample_ddim(guided, run.diffusion, x_T, steps=steps, eta=eta,
                                      generator=generator, clip_x0=1.0))  # fmt: skip
    return torch.cat(chunks)
