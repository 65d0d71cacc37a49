"""The digits classifier and the sample-quality metrics of `minidiff.evaluation.digits`.

The classifier is fitted once per test run (the `digits_classifier` fixture of
conftest.py); the real "test" split of `load_digits` plays the part of a perfect model's
samples.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidiff.data import load_digits
from minidiff.data.digits import digits_to_model_range, pad_images
from minidiff.evaluation import (
    DigitsClassifier,
    class_entropy,
    digit_quality,
    quantise_digits,
)
from tests.tolerances import ATOL, RTOL

HALF_LEVEL = 1.0 / 16  # pixel levels are 1/8 apart in [-1, 1]


@pytest.fixture(scope="module")
def test_digits():
    """The held-out test split, (359, 1, 8, 8) in [-1, 1], and its labels."""
    return load_digits("test", labels=True)


def test_classifier_reaches_95_percent_on_held_out_digits(digits_classifier, test_digits):
    """Trained on the train split only, the classifier labels >= 95% of the test split
    correctly (its recorded `test_accuracy` is that share)."""
    images, labels = test_digits
    accuracy = float(np.mean(digits_classifier.predict(images) == labels.numpy()))
    assert accuracy == digits_classifier.test_accuracy
    assert accuracy >= 0.95


def test_forward_pass_matches_scikit_learn():
    """The NumPy forward pass of `DigitsClassifier` equals scikit-learn's `predict_proba`
    for the same weights (an MLP fitted briefly here), so the features are the activations
    of the network that scikit-learn trained."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    images, labels = load_digits("train", labels=True)
    pixels = quantise_digits(images) / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        network = MLPClassifier((12, 7), max_iter=3, random_state=1).fit(pixels, labels.numpy())
    classifier = DigitsClassifier(
        weights=tuple(network.coefs_), biases=tuple(network.intercepts_),
        test_accuracy=math.nan, seed=1,
    )  # fmt: skip
    expected = network.predict_proba(pixels)
    np.testing.assert_allclose(classifier.predict_proba(images), expected, rtol=RTOL, atol=ATOL)
    assert classifier.features(images).shape == (len(images), 7)


def test_fit_is_deterministic(digits_classifier):
    """Fitting again with the same seed gives bit-identical weights."""
    again = DigitsClassifier.fit(seed=digits_classifier.seed)
    for a, b in zip(
        again.weights + again.biases,
        digits_classifier.weights + digits_classifier.biases,
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_probabilities_are_distributions_and_features_have_64_dimensions(
    digits_classifier, test_digits
):
    """p(k | x) >= 0 with sum_k p(k | x) = 1 for every image; features are (N, 64) ReLU
    activations (>= 0)."""
    images, _ = test_digits
    probabilities = digits_classifier.predict_proba(images)
    assert probabilities.shape == (len(images), 10)
    assert probabilities.min() >= 0.0
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=RTOL, atol=ATOL)
    features = digits_classifier.features(images)
    assert features.shape == (len(images), 64) and features.min() >= 0.0


def test_real_test_digits_are_confident_and_cover_all_classes(
    digits_classifier, digits_reference, test_digits
):
    """The held-out real digits, scored as if they were samples: >= 90% confident, all ten
    classes present, and Fréchet distance 0 to themselves (they are the reference)."""
    images, _ = test_digits
    quality = digit_quality(images, digits_classifier, reference=digits_reference)
    assert quality["confident_share"] >= 0.9
    assert quality["classes_present"] == 10
    assert sum(quality["class_counts"]) == quality["n_samples"] == len(images)
    assert quality["confident_share"] == quality["reference_confident_share"]
    assert quality["frechet"] <= RTOL * quality["frechet_floor"]


def test_train_digits_score_the_floor(digits_classifier, digits_reference):
    """The train split, scored as samples, is at the floor's Fréchet distance (the floor
    is defined as train vs test), and the floor is positive: finite samples differ."""
    quality = digit_quality(load_digits("train"), digits_classifier, reference=digits_reference)
    np.testing.assert_allclose(quality["frechet"], quality["frechet_floor"], rtol=RTOL, atol=ATOL)
    assert quality["frechet_floor"] > 0.0


def test_reference_is_computed_when_not_given(digits_classifier, digits_reference, test_digits):
    """`digit_quality` without a reference equals `digit_quality` with the reference of
    `digits_reference(classifier)`."""
    images = test_digits[0][:50]
    assert digit_quality(images, digits_classifier) == digit_quality(
        images, digits_classifier, reference=digits_reference
    )


def test_uniform_noise_scores_far_above_the_floor(digits_classifier, digits_reference):
    """1000 images of uniform noise in [-1, 1] are more than 10 x the floor away from the
    real digits in Fréchet distance, and fewer of them are confident than real digits."""
    noise = torch.rand(1000, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    quality = digit_quality(noise, digits_classifier, reference=digits_reference)
    assert quality["frechet"] > 10 * quality["frechet_floor"]
    assert quality["confident_share"] < quality["reference_confident_share"]


def test_one_repeated_digit_has_zero_entropy(digits_classifier, digits_reference, test_digits):
    """Fifty copies of one digit: one class present, class entropy 0."""
    images = test_digits[0][:1].repeat(50, 1, 1, 1)
    quality = digit_quality(images, digits_classifier, reference=digits_reference)
    assert quality["classes_present"] == 1
    assert quality["class_entropy"] == 0.0
    assert max(quality["class_counts"]) == 50


@given(st.integers(1, 10), st.integers(1, 1000))
def test_class_entropy_of_k_equal_classes_is_log_k(k, count):
    """k classes with equal counts: H = log k (log 10 at uniform over the ten digits)."""
    counts = np.zeros(10, dtype=np.int64)
    counts[:k] = count
    np.testing.assert_allclose(class_entropy(counts), math.log(k), rtol=RTOL, atol=ATOL)


@given(hnp.arrays(np.int64, 10, elements=st.integers(0, 1000)).filter(lambda c: c.sum() > 0))
def test_class_entropy_lies_between_zero_and_log_10(counts):
    """0 <= H(p) <= log 10 for any class histogram (Gibbs' inequality)."""
    assert -ATOL <= class_entropy(counts) <= math.log(10) + ATOL


@given(hnp.arrays(np.int64, (3, 1, 8, 8), elements=st.integers(0, 16)))
def test_quantise_inverts_the_data_map(counts):
    """quantise_digits(u / 8 - 1) = u for pixel counts u in 0..16."""
    images = digits_to_model_range(counts)
    np.testing.assert_array_equal(quantise_digits(images), counts.reshape(3, 64))


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.99))
def test_perturbations_below_half_a_level_change_nothing(digits_classifier, seed, size):
    """Moving every pixel by less than half a level (1/16 in [-1, 1]) leaves the
    quantised image, hence the probabilities and features, unchanged; values beyond
    [-1, 1] clip to the end levels."""
    images = load_digits("test", dtype=torch.float64)[:8]
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1, 1, size=images.shape) * size * HALF_LEVEL
    moved = images.numpy() + noise
    np.testing.assert_array_equal(quantise_digits(moved), quantise_digits(images))
    assert np.all(quantise_digits(np.full((1, 1, 8, 8), 1.0 + size)) == 16)
    assert np.all(quantise_digits(np.full((1, 1, 8, 8), -1.0 - size)) == 0)
    np.testing.assert_array_equal(
        digits_classifier.predict_proba(moved), digits_classifier.predict_proba(images)
    )


@pytest.mark.parametrize("size", [10, 16, 20])
def test_padded_images_score_like_the_8x8_images(digits_classifier, test_digits, size):
    """Images padded with background to size x size are centre-cropped back: the same
    probabilities and features as the 8 x 8 originals."""
    images, _ = test_digits
    padded = pad_images(images, size)
    np.testing.assert_array_equal(
        digits_classifier.predict_proba(padded), digits_classifier.predict_proba(images)
    )
    np.testing.assert_array_equal(
        digits_classifier.features(padded), digits_classifier.features(images)
    )


@pytest.mark.parametrize(
    "shape",
    [(4, 8, 8), (4, 3, 8, 8), (4, 1, 7, 7), (4, 1, 8, 10), (4, 1, 15, 15), (0, 1, 8, 8), (64,)],
)
def test_bad_image_shapes_raise(digits_classifier, shape):
    """Images that are not (N >= 1, 1, S, S) with S = 8 + an even margin raise ValueError
    naming `images`, from every entry point."""
    images = np.zeros(shape)
    for function in (quantise_digits, digits_classifier.predict_proba, digits_classifier.features):
        with pytest.raises(ValueError, match="images"):
            function(images)
    with pytest.raises(ValueError, match="images"):
        digit_quality(images, digits_classifier)


def test_non_finite_images_and_single_samples_raise(digits_classifier, digits_reference):
    """NaN pixels raise ValueError naming `images`; one sample (no covariance) raises
    ValueError naming `samples`; a wrong classifier raises TypeError; a bad seed raises
    ValueError naming `seed`."""
    with pytest.raises(ValueError, match="images"):
        quantise_digits(np.full((2, 1, 8, 8), np.nan))
    with pytest.raises(ValueError, match="samples"):
        digit_quality(np.zeros((1, 1, 8, 8)), digits_classifier, reference=digits_reference)
    with pytest.raises(TypeError, match="classifier"):
        digit_quality(np.zeros((2, 1, 8, 8)), object())
    with pytest.raises(ValueError, match="seed"):
        DigitsClassifier.fit(seed=-1)
