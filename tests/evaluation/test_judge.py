"""The Fashion-MNIST judge and the feature spaces: the judge learns (its stated accuracy),
its cache returns the same network, and in its features real held-out images sit near the
train-vs-test floor while noise and mode-dropped sets do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minidiff.data.fashion_mnist import FASHION_MNIST_DIR, FASHION_MNIST_PACKAGE
from minidiff.evaluation import metrics as m
from minidiff.evaluation.judge import FashionJudge, digits_space, fashion_judge, fashion_space
from tests.requirements import needs

torch.set_num_threads(1)
MIN_JUDGE_ACCURACY = 0.80  # the judge reaches about 0.86 on the test split

needs_package = needs(
    (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    f"Debian package {FASHION_MNIST_PACKAGE} is not installed (make system-deps)",
)


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory):
    """A private cache in which the judge is trained once for this module."""
    folder = tmp_path_factory.mktemp("judge-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIDIFF_CACHE", str(folder))
        judge, accuracy = fashion_judge(seed=0)
    return folder, judge, accuracy


def test_judge_shapes():
    judge = FashionJudge()
    x = torch.zeros(3, 1, 28, 28)
    assert judge.features(x).shape == (3, 128) and judge(x).shape == (3, 10)


@needs_package
def test_judge_accuracy_and_cache(judge_cache, monkeypatch):
    """The trained judge classifies >= 80% of the test split; loading it from the cache
    gives the same network and the same stated accuracy."""
    folder, judge, accuracy = judge_cache
    assert accuracy >= MIN_JUDGE_ACCURACY
    monkeypatch.setenv("MINIDIFF_CACHE", str(folder))
    cached, cached_accuracy = fashion_judge(seed=0)
    assert cached_accuracy == accuracy
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(cached(x), judge(x))


@needs_package
def test_fashion_space_separates_real_from_noise_and_dropped_modes(judge_cache, monkeypatch):
    """In the judge's features: FID(train[:n], test) (the floor) is far below FID(noise,
    test); precision of noise is near 0; a set of one class has recall far below the
    floor's; IS of real test images is far above IS of one class."""
    from minidiff.data.fashion_mnist import load_fashion_mnist

    monkeypatch.setenv("MINIDIFF_CACHE", str(judge_cache[0]))
    space = fashion_space()
    train, train_labels = load_fashion_mnist("train", labels=True)
    test = load_fashion_mnist("test")[:2000]
    n = 500
    test_features = space.features(test)
    floor = m.frechet_inception_distance(space.features(train[:n]), test_features)
    noise = torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise_features = space.features(noise)
    assert m.frechet_inception_distance(noise_features, test_features).value > 10 * floor.value
    assert m.precision_recall(test_features, noise_features).precision < 0.05
    one_class = train[train_labels == 7][:n]  # sneakers only
    floor_pr = m.precision_recall(test_features, space.features(train[:n]))
    dropped_pr = m.precision_recall(test_features, space.features(one_class))
    assert dropped_pr.recall < floor_pr.recall / 3
    real_is = m.inception_score(space.logits(test[:n])).mean
    assert real_is > 3 * m.inception_score(space.logits(one_class)).mean
    assert "accuracy" in space.note and space.dim == 128


def test_digits_space_features_and_logits():
    """The digits space: 64 features; softmax of its logits is the classifier's p(y | x)."""
    from minidiff.data import load_digits

    space = digits_space()
    images = load_digits("test")[:20]
    logits = space.logits(images)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert space.features(images).shape == (20, 64)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12, atol=1e-12)
    assert (p.argmax(1) == p.argmax(1)).all() and space.dim == 64
