"""Sample quality of a digits model, judged by a classifier trained on real digits.

A small multilayer perceptron (scikit-learn's `MLPClassifier`: 64 pixels -> 128 -> 64
ReLU units -> 10 softmax outputs, L-BFGS, a fixed seed) is trained on the "train" split
of `minidiff.data.load_digits`, so the "test" split stays held out. Generated digits are
then scored three ways (`digit_quality`):

- confidence: the share of samples whose top class probability is >= 0.9. A real test
  digit almost always is; a blurred or hybrid sample usually is not.
- coverage: the histogram of predicted classes, its entropy (log 10 nats when all ten
  digits are equally frequent, 0 for one digit) and the number of classes present.
- Fréchet distance in the classifier's 64 penultimate features between the samples and
  the held-out test digits (FID's recipe, Heusel et al. 2017, with a digits network in
  place of Inception), next to its floor: the same distance from the train split to the
  test split. Finite samples are never at distance 0, so a perfect model would score
  about the floor.

Images enter in the model range [-1, 1] as (N, 1, 8, 8) or padded (N, 1, S, S) (centre-
cropped to 8 x 8), and are quantised to the 17 pixel levels of the data (u = round(8 (x +
1)) in 0..16), as a saved image would be.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from minidiff.evaluation.frechet import frechet_distance, gaussian_statistics

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "NUM_CLASSES",
    "DigitsClassifier",
    "DigitsReference",
    "digits_reference",
    "digit_quality",
    "class_entropy",
    "quantise_digits",
]

NUM_CLASSES = 10
DIGIT_SIDE = 8
DIGIT_LEVELS = 16  # pixel counts 0..16: 17 levels
CONFIDENCE_THRESHOLD = 0.9  # a sample is "confident" when max_k p(k | x) >= this
HIDDEN_SIZES = (128, 64)  # the last width is the feature dimension
L2_PENALTY = 0.1  # MLPClassifier's alpha: keeps the probabilities from saturating
MAX_ITERATIONS = 200  # L-BFGS iterations: a fixed budget, so the fit is deterministic


def quantise_digits(images: Any) -> np.ndarray:
    """Model-range images as pixel counts 0..16, centre-cropped to 8 x 8.

    u = round(8 (x + 1)), clipped to 0..16: the inverse of the data's map x = u / 8 - 1.

    Args:
        images: (N, 1, S, S) in [-1, 1] with S >= 8 and S - 8 even (8, or padded, e.g.
            16); a NumPy array or a torch tensor.

    Returns:
        (N, 64) float64 pixel counts in 0..16, row-major.

    Raises:
        ValueError: another shape, an empty batch, or non-finite values.
    """
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=np.float64)
    if (
        images.ndim != 4
        or images.shape[0] < 1
        or images.shape[1] != 1
        or images.shape[2] != images.shape[3]
        or images.shape[2] < DIGIT_SIDE
        or (images.shape[2] - DIGIT_SIDE) % 2
    ):
        raise ValueError(
            "images must have shape (N, 1, S, S) with N >= 1 and S = 8 or a padded side "
            f"(8 + an even margin, e.g. 16), got {images.shape}"
        )
    if not np.all(np.isfinite(images)):
        raise ValueError("images must be finite, got non-finite values")
    margin = (images.shape[2] - DIGIT_SIDE) // 2
    crop = images[:, 0, margin : margin + DIGIT_SIDE, margin : margin + DIGIT_SIDE]  # (N, 8, 8)
    counts = np.clip(np.rint((crop + 1.0) * (DIGIT_LEVELS / 2)), 0, DIGIT_LEVELS)
    return counts.reshape(len(counts), DIGIT_SIDE * DIGIT_SIDE)


@dataclass(frozen=True, eq=False)
class DigitsClassifier:
    """An MLP digits classifier: pixels / 16 -> ReLU layers -> softmax over 10 classes.

    Build it with `DigitsClassifier.fit` (deterministic: the same seed gives the same
    weights, whatever the machine's thread count). The forward pass is written out here in NumPy
    float64 from the fitted weights (it equals scikit-learn's `predict_proba`).

    Attributes:
        weights: per layer, (fan_in, fan_out) matrices.
        biases: per layer, (fan_out,) vectors.
        test_accuracy: accuracy on the held-out "test" split of `load_digits`.
        seed: the seed of the initial weights.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    test_accuracy: float
    seed: int

    @classmethod
    def fit(cls, seed: int = 0) -> DigitsClassifier:
        """Train on the "train" split of `minidiff.data.load_digits` (deterministic for a
        given seed; a few seconds on one core) and measure the test accuracy."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits

        from minidiff.data import load_digits

        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        train_images, train_labels = load_digits("train", labels=True)
        test_images, test_labels = load_digits("test", labels=True)
        network = MLPClassifier(
            HIDDEN_SIZES, alpha=L2_PENALTY, solver="lbfgs", max_iter=MAX_ITERATIONS,
            random_state=seed,
        )  # fmt: skip
        # One BLAS thread: L-BFGS amplifies the round-off of a multi-threaded matrix
        # product over its iterations, so the weights would depend on the thread count.
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)  # the fixed budget is intended
            network.fit(_inputs(quantise_digits(train_images)), train_labels.numpy())
        classifier = cls(
            weights=tuple(np.asarray(w, dtype=np.float64) for w in network.coefs_),
            biases=tuple(np.asarray(b, dtype=np.float64) for b in network.intercepts_),
            test_accuracy=math.nan,
            seed=seed,
        )
        accuracy = float(np.mean(classifier.predict(test_images) == test_labels.numpy()))
        return replace(classifier, test_accuracy=accuracy)

    def _hidden(self, images: Any) -> np.ndarray:
        """The last hidden layer's ReLU activations, (N, HIDDEN_SIZES[-1])."""
        activation = _inputs(quantise_digits(images))  # (N, 64)
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            activation = np.maximum(activation @ weight + bias, 0.0)
        return activation

    def features(self, images: Any) -> np.ndarray:
        """The penultimate layer's activations, (N, 64) float64: the space of the Fréchet
        distance. ``images``: (N, 1, S, S) in [-1, 1] (see `quantise_digits`)."""
        return self._hidden(images)

    def predict_proba(self, images: Any) -> np.ndarray:
        """Class probabilities p(k | x), (N, 10) float64, rows summing to 1 (softmax of the
        output layer). ``images``: (N, 1, S, S) in [-1, 1] (see `quantise_digits`)."""
        logits = self._hidden(images) @ self.weights[-1] + self.biases[-1]  # (N, 10)
        logits = logits - logits.max(axis=1, keepdims=True)  # stable softmax
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, images: Any) -> np.ndarray:
        """The most probable class, (N,) int64."""
        return self.predict_proba(images).argmax(axis=1)


def _inputs(counts: np.ndarray) -> np.ndarray:
    """Pixel counts 0..16 scaled to [0, 1], the network's input."""
    return counts / DIGIT_LEVELS


@dataclass(frozen=True, eq=False)
class DigitsReference:
    """What the samples are compared with: statistics of the held-out test digits.

    Attributes:
        mean: (F,) mean of the test digits' features.
        covariance: (F, F) their covariance.
        frechet_floor: Fréchet distance from the train split's features to the test
            split's: what a model that reproduces the data scores at these sample sizes.
        confident_share: share of the test digits with top probability >= 0.9.
        n: number of test digits.
    """

    mean: np.ndarray
    covariance: np.ndarray
    frechet_floor: float
    confident_share: float
    n: int


def digits_reference(classifier: DigitsClassifier) -> DigitsReference:
    """The `DigitsReference` of ``classifier``: the held-out "test" split of `load_digits`
    and the train-vs-test Fréchet floor."""
    from minidiff.data import load_digits

    test_images = load_digits("test")
    mean, covariance = gaussian_statistics(classifier.features(test_images))
    train_mean, train_covariance = gaussian_statistics(classifier.features(load_digits("train")))
    probabilities = classifier.predict_proba(test_images)
    return DigitsReference(
        mean=mean,
        covariance=covariance,
        frechet_floor=frechet_distance(train_mean, train_covariance, mean, covariance),
        confident_share=float(np.mean(probabilities.max(axis=1) >= CONFIDENCE_THRESHOLD)),
        n=len(test_images),
    )


def class_entropy(counts: np.ndarray) -> float:
    """Entropy -sum_k p_k log p_k (nats, 0 log 0 = 0) of the class frequencies p = counts /
    sum(counts): log 10 when all ten classes are equally frequent, 0 for one class."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: -0.0 -> 0.0


def digit_quality(
    samples: Any, classifier: DigitsClassifier, *, reference: DigitsReference | None = None
) -> dict[str, Any]:
    """Score generated digits against a classifier trained on real ones.

    Args:
        samples: (N, 1, S, S) images in [-1, 1], N >= 2 (see `quantise_digits`).
        classifier: a fitted `DigitsClassifier`.
        reference: the test digits' statistics from `digits_reference(classifier)`;
            computed here when None (pass it in to score many sets cheaply).

    Returns:
        A dict of plain Python numbers: ``n_samples``; ``confident_share`` (share with
        max_k p(k | x) >= 0.9); ``class_counts`` (10 ints, predicted classes);
        ``class_entropy`` (nats) and ``max_class_entropy`` (log 10); ``classes_present``;
        ``frechet`` (samples vs test digits, in the classifier's features) and
        ``frechet_floor`` (train vs test digits); ``reference_confident_share`` (the
        confident share of the real test digits) and ``reference_n``.

    Raises:
        ValueError: bad image shapes (see `quantise_digits`) or fewer than 2 samples.
    """
    if not isinstance(classifier, DigitsClassifier):
        raise TypeError(f"classifier must be a DigitsClassifier, got {type(classifier).__name__}")
    if reference is None:
        reference = digits_reference(classifier)
    features = classifier.features(samples)  # validates the shape
    if len(features) < 2:
        raise ValueError(f"samples must hold at least 2 images, got {len(features)}")
    probabilities = classifier.predict_proba(samples)  # (N, 10)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=NUM_CLASSES)
    mean, covariance = gaussian_statistics(features)
    return {
        "n_samples": len(features),
        "confident_share": float(np.mean(probabilities.max(axis=1) >= CONFIDENCE_THRESHOLD)),
        "class_counts": [int(c) for c in counts],
        "class_entropy": class_entropy(counts),
        "max_class_entropy": math.log(NUM_CLASSES),
        "classes_present": int(np.count_nonzero(counts)),
        "frechet": frechet_distance(mean, covariance, reference.mean, reference.covariance),
        "frechet_floor": reference.frechet_floor,
        "reference_confident_share": reference.confident_share,
        "reference_n": reference.n,
    }
