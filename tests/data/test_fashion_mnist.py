"""The Fashion-MNIST loader: the idx format, the checksum of the decoded bytes, the cache,
and the published split sizes and class balance."""

import gzip

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.data.archive import ChecksumError
from minidiff.data.fashion_mnist import (
    FASHION_MNIST_DIR,
    FASHION_MNIST_PACKAGE,
    fashion_mnist_uint8,
    load_fashion_mnist,
    read_idx,
)
from tests.requirements import needs

needs_package = needs(
    (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    f"Debian package {FASHION_MNIST_PACKAGE} is not installed (make system-deps)",
)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(0, 2**31 - 1))
def test_read_idx_inverts_the_idx_encoding(shape, seed):
    """Encoding an array as idx (header + C-order bytes) and decoding gives it back."""
    array = np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_array_equal(read_idx(_idx(array)), array)


def test_read_idx_refuses_bad_headers():
    with pytest.raises(ValueError, match="not an idx"):
        read_idx(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="does not match"):
        read_idx(_idx(np.zeros(4))[:-1])


def test_missing_package_names_it(tmp_path, monkeypatch):
    """No files: the error names the Debian package."""
    monkeypatch.setenv("MINIDIFF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=FASHION_MNIST_PACKAGE):
        fashion_mnist_uint8("test", folder=str(tmp_path))


def test_altered_data_fail_the_checksum(tmp_path, monkeypatch):
    """Valid idx files whose bytes are not the published ones are refused."""
    monkeypatch.setenv("MINIDIFF_CACHE", str(tmp_path / "cache"))
    for stem, array in (("t10k-images-idx3-ubyte", np.zeros((2, 28, 28))),
                        ("t10k-labels-idx1-ubyte", np.zeros(2))):  # fmt: skip
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(_idx(array)))
    with pytest.raises(ChecksumError, match="SHA-256"):
        fashion_mnist_uint8("test", folder=str(tmp_path))


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        fashion_mnist_uint8("validation")


@needs_package
def test_test_split_sizes_range_and_balance(tmp_path, monkeypatch):
    """10 000 test images of 28 x 28 in [-1, 1], 1000 per class; the cached arrays (second
    load) equal the decoded ones."""
    monkeypatch.setenv("MINIDIFF_CACHE", str(tmp_path))
    fashion_mnist_uint8.cache_clear()
    images, labels = load_fashion_mnist("test", labels=True)
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert torch.bincount(labels).tolist() == [1000] * 10
    assert any((tmp_path / "fashion-mnist").iterdir())
    fashion_mnist_uint8.cache_clear()
    again = load_fashion_mnist("test")
    assert torch.equal(again, images)
    fashion_mnist_uint8.cache_clear()
