"""Proofs for `minidiff.data.digits`: the scikit-learn digits as images in [-1, 1]."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits as sklearn_load_digits

from minidiff.data.digits import digits_to_model_range, load_digits, pad_images

N_DIGITS = 1797


def test_digits_are_1797_images_8x8_with_pixels_u_over_8_minus_1():
    """All digits: (1797, 1, 8, 8), each pixel x = u / 8 - 1 of scikit-learn's count u in
    0..16 (so the range [-1, 1] is attained at both ends); labels match sklearn's."""
    images, labels = load_digits(labels=True, dtype=torch.float64)
    bunch = sklearn_load_digits()
    assert images.shape == (N_DIGITS, 1, 8, 8) and labels.dtype == torch.int64
    want = torch.as_tensor(bunch.images, dtype=torch.float64).unsqueeze(1) / 8.0 - 1.0
    torch.testing.assert_close(images, want, rtol=0, atol=0)
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert torch.equal(labels, torch.as_tensor(bunch.target)) and set(labels.tolist()) == set(
        range(10)
    )
    assert load_digits().dtype == torch.float32


def test_map_sends_0_to_minus_one_8_to_zero_16_to_one():
    """The pixel map is affine with 0 -> -1, 8 -> 0, 16 -> 1."""
    x = digits_to_model_range(torch.tensor([0.0, 8.0, 16.0]))
    assert x.tolist() == [-1.0, 0.0, 1.0]


def test_padding_to_16_centres_the_image_on_background():
    """pad_to=16 gives (N, 1, 16, 16) whose central 8x8 block is the unpadded image and
    whose 4-pixel border is -1 (background)."""
    plain = load_digits(dtype=torch.float64)
    padded = load_digits(pad_to=16, dtype=torch.float64)
    assert padded.shape == (N_DIGITS, 1, 16, 16)
    assert torch.equal(padded[..., 4:12, 4:12], plain)
    border = padded.clone()
    border[..., 4:12, 4:12] = -1.0
    assert bool((border == -1.0).all())


def test_pad_images_rejects_an_odd_margin_or_a_smaller_size():
    """Sizes smaller than the image, or leaving an odd margin, raise ValueError."""
    x = torch.zeros(1, 1, 8, 8)
    for size in (7, 9):
        with pytest.raises(ValueError, match="size"):
            pad_images(x, size)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_test_split_is_a_disjoint_cover_fixed_by_the_seed(seed):
    """train and test for one seed are disjoint, together hold every image once (as
    multisets of (image, label) rows, compared through their sorted row order), have
    round(0.2 * 1797) test images, and are reproducible; another seed gives another
    split."""
    train, train_labels = load_digits("train", seed=seed, labels=True, dtype=torch.float64)
    test, test_labels = load_digits("test", seed=seed, labels=True, dtype=torch.float64)
    assert test.shape[0] == round(0.2 * N_DIGITS) and train.shape[0] + test.shape[0] == N_DIGITS
    all_images, all_labels = load_digits(labels=True, dtype=torch.float64)

    def rows(images, labels):
        table = torch.cat([images.flatten(1), labels[:, None].double()], dim=1)
        return sorted(map(tuple, table.tolist()))

    assert rows(torch.cat([train, test]), torch.cat([train_labels, test_labels])) == rows(
        all_images, all_labels
    )
    assert torch.equal(load_digits("test", seed=seed), test.float())
    assert not torch.equal(load_digits("test", seed=seed + 10), test.float())


def test_load_digits_rejects_bad_options():
    """An unknown split or a test fraction outside (0, 1) raises ValueError naming it."""
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits("train", test_fraction=1.0)
