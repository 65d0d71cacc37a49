"""A small convolutional judge for Fashion-MNIST, trained here, and the feature spaces the
metrics are computed in.

FID-style metrics need a network that maps images to features. The FID Inception
(`minidiff.evaluation.inception`) is the published one, but its weights are a separate
download; a judge trained here on the data set itself lets every metric run anywhere, and
is the natural space for 28 x 28 grey-scale images. The judge:

    (1, 28, 28) -> conv 3x3 stride 2, 32 -> conv 3x3 stride 2, 64 -> conv 3x3 stride 2, 128
    -> global average pool (128 features) -> linear, 10 logits

with ReLUs between, trained with Adam on the "train" split (a fixed seed, a fixed budget,
one thread), its accuracy measured on the "test" split. The weights are cached under
`minidiff.data.fashion_mnist.cache_dir` keyed by the settings and the data's hash.

A `FeatureSpace` bundles a network's features (for FID, KID, precision/recall) and logits
(for IS) with its name; `digits_space`, `fashion_space` and `inception_space` build the
three this package knows.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "FeatureSpace",
    "FashionJudge",
    "digits_classifier",
    "digits_space",
    "fashion_judge",
    "fashion_space",
    "inception_space",
    "train_fashion_judge",
]

JUDGE_SETTINGS = {"widths": (32, 64, 128), "steps": 1500, "batch_size": 128, "lr": 2e-3}


class FashionJudge(nn.Module):
    """The judge network (module docstring); input (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), classes: int = 10) -> None:
        super().__init__()
        layers, c_in = [], 1
        for width in widths:
            layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.ReLU()]
            c_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, widths[-1]) average-pooled activations."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_fashion_judge(seed: int = 0, *, progress: bool = False) -> tuple[FashionJudge, float]:
    """Train a `FashionJudge` (``JUDGE_SETTINGS``) on the train split; return it (eval
    mode) and its test accuracy. About a minute on one CPU thread."""
    from minidiff.data.fashion_mnist import load_fashion_mnist

    torch.manual_seed(seed)  # the initial weights; the data order uses its own generator
    images, labels = load_fashion_mnist("train", labels=True)
    judge = FashionJudge(JUDGE_SETTINGS["widths"])
    optimizer = torch.optim.Adam(judge.parameters(), lr=JUDGE_SETTINGS["lr"])
    generator = torch.Generator().manual_seed(seed)
    steps = range(JUDGE_SETTINGS["steps"])
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="training the Fashion-MNIST judge")
    for _ in steps:
        batch = torch.randint(0, len(images), (JUDGE_SETTINGS["batch_size"],), generator=generator)
        loss = nn.functional.cross_entropy(judge(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    judge.eval().requires_grad_(False)
    test_images, test_labels = load_fashion_mnist("test", labels=True)
    with torch.no_grad():
        predicted = torch.cat([judge(chunk).argmax(1) for chunk in test_images.split(1000)])
    return judge, float((predicted == test_labels).double().mean())


def fashion_judge(seed: int = 0, *, progress: bool = False) -> tuple[FashionJudge, float]:
    """The cached judge of ``seed`` (trained on first use) and its test accuracy."""
    from minidiff.atomic import write_file
    from minidiff.data.fashion_mnist import FASHION_MNIST_SHA256, cache_dir

    key = hashlib.sha256(
        json.dumps([JUDGE_SETTINGS, seed, sorted(FASHION_MNIST_SHA256.values())]).encode()
    ).hexdigest()[:16]
    path = cache_dir() / "judges" / f"fashion-{key}.pt"
    if path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        judge = FashionJudge(JUDGE_SETTINGS["widths"])
        judge.load_state_dict(stored["state"])
        return judge.eval().requires_grad_(False), float(stored["accuracy"])
    judge, accuracy = train_fashion_judge(seed, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"state": judge.state_dict(), "accuracy": torch.tensor(accuracy, dtype=torch.float64)}
    write_file(path, lambda file: torch.save(record, file))
    return judge, accuracy


@dataclass(frozen=True)
class FeatureSpace:
    """A network in which samples are compared.

    Attributes:
        name: ``"digits"``, ``"fashion-mnist"`` or ``"inception"``.
        features: images (N, C, H, W) in [-1, 1] -> (N, F) float64 features.
        logits: images -> (N, K) float64 logits (softmax gives p(y | x)).
        dim: F.
        note: what the network is (its accuracy, where known).
    """

    name: str
    features: Callable[[torch.Tensor], np.ndarray]
    logits: Callable[[torch.Tensor], np.ndarray]
    dim: int
    note: str


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], size: int = 500):
    def apply(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            parts = [fn(chunk).double().numpy() for chunk in torch.as_tensor(images).split(size)]
        return np.concatenate(parts)

    return apply


@functools.lru_cache(maxsize=2)
def digits_classifier(seed: int = 0):
    """`DigitsClassifier.fit(seed)`, fitted once per process and seed."""
    from minidiff.evaluation.digits import DigitsClassifier

    return DigitsClassifier.fit(seed=seed)


def digits_space(seed: int = 0) -> FeatureSpace:
    """The digits classifier (`DigitsClassifier`): 64 features, 10 classes."""
    classifier = digits_classifier(seed)

    def logits(images: torch.Tensor) -> np.ndarray:
        return np.log(np.clip(classifier.predict_proba(images), 1e-300, None))

    note = f"digits MLP classifier, test accuracy {classifier.test_accuracy:.4f}"
    return FeatureSpace("digits", classifier.features, logits, 64, note)


def fashion_space(seed: int = 0, *, progress: bool = False) -> FeatureSpace:
    """The Fashion-MNIST judge: 128 features, 10 classes (images (N, 1, 28, 28))."""
    judge, accuracy = fashion_judge(seed, progress=progress)
    note = f"Fashion-MNIST CNN judge, test accuracy {accuracy:.4f}"
    return FeatureSpace(
        "fashion-mnist", _batched(lambda x: judge.features(x.float())),
        _batched(lambda x: judge(x.float())), JUDGE_SETTINGS["widths"][-1], note,
    )  # fmt: skip


def inception_space(weights=None) -> FeatureSpace:
    """The FID Inception with the published weights: 2048 features, the bias-free logits."""
    from minidiff.evaluation.inception import images_to_uint8
    from minidiff.evaluation.inception_weights import load_inception

    network = load_inception(weights)
    return FeatureSpace(
        "inception", _batched(lambda x: network(images_to_uint8(x))["2048"], 50),
        _batched(lambda x: network(images_to_uint8(x))["logits_unbiased"], 50), 2048,
        "FID InceptionV3 (2015-12-05 weights)",
    )  # fmt: skip
