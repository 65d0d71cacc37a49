"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from Debian's ``dataset-fashion-mnist``.

70 000 grey-scale 28 x 28 images of clothing in 10 classes (60 000 train, 10 000 test),
stored as gzipped idx files under ``/usr/share/datasets/fashion-mnist`` by the Debian
package (the project's set-up installs it: ``make system-deps``). The loader decodes the idx
format (a big-endian header: magic number, then one 32-bit size per dimension, then the
uint8 values), checks the SHA-256 of the decoded bytes against the published data, and
caches the arrays as ``.npy`` files (`cache_dir`), so later loads skip the decompression.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from minidiff.atomic import write_file
from minidiff.data.archive import ChecksumError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_PACKAGE",
    "FASHION_MNIST_SHA256",
    "cache_dir",
    "fashion_mnist_uint8",
    "load_fashion_mnist",
    "read_idx",
]

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# SHA-256 of each decompressed idx file (header and values), as the data set publishes them.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
SPLITS = ("train", "test")
Split = Literal["train", "test"]
_PREFIX = {"train": "train", "test": "t10k"}
_IDX_TYPES = {0x08: np.uint8}  # the only element type Fashion-MNIST uses


def cache_dir() -> Path:
    """Where minidiff caches derived files: ``$MINIDIFF_CACHE``, else ``~/.cache/minidiff``."""
    return Path(os.environ.get("MINIDIFF_CACHE") or Path.home() / ".cache" / "minidiff")


def read_idx(raw: bytes, name: str = "idx") -> np.ndarray:
    """Decode idx bytes: 2 zero bytes, a type byte (0x08: uint8), the number of dimensions,
    one big-endian uint32 size per dimension, then the values in C order.

    Raises:
        ValueError: a header that is not idx, or a size that does not match the values.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{name} is not an idx file of uint8 values")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    values = np.frombuffer(raw, _IDX_TYPES[raw[2]], offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{name}: header shape {shape} does not match {values.size} values")
    return values.reshape(shape)


def _decoded(folder: Path, stem: str) -> np.ndarray:
    path = folder / f"{stem}.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"Fashion-MNIST file {path} is missing: install the Debian package "
            f"{FASHION_MNIST_PACKAGE} (apt-get install {FASHION_MNIST_PACKAGE}; "
            "make system-deps does it)"
        )
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != FASHION_MNIST_SHA256[stem]:
        raise ChecksumError(
            f"{path}: decoded SHA-256 {digest} differs from the published "
            f"{FASHION_MNIST_SHA256[stem]}; reinstall {FASHION_MNIST_PACKAGE}"
        )
    return read_idx(raw, str(path))


@functools.lru_cache(maxsize=4)
def fashion_mnist_uint8(
    split: Split = "train", *, folder: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A split as read-only uint8 images (N, 28, 28) and int64 labels (N,) in 0..9.

    Args:
        split: ``"train"`` (60 000) or ``"test"`` (10 000).
        folder: where the ``.gz`` idx files are (default: the Debian package's folder).

    Raises:
        FileNotFoundError: the package is not installed (the message names it).
        ChecksumError: the decoded data are not the published data.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = FASHION_MNIST_DIR if folder is None else Path(folder)
    stems = (f"{_PREFIX[split]}-images-idx3-ubyte", f"{_PREFIX[split]}-labels-idx1-ubyte")
    cached = [cache_dir() / "fashion-mnist" / f"{FASHION_MNIST_SHA256[s][:16]}.npy" for s in stems]
    if all(path.is_file() for path in cached):
        images, labels = (np.load(path, allow_pickle=False) for path in cached)
    else:
        images, labels = (_decoded(folder, stem) for stem in stems)
        for path, array in zip(cached, (images, labels), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, lambda file, a=array: np.save(file, a, allow_pickle=False))
    if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise ValueError(f"the Fashion-MNIST cache in {cached[0].parent} is corrupt; delete it")
    images, labels = np.array(images, dtype=np.uint8), labels.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_fashion_mnist(
    split: Split = "train",
    *,
    labels: bool = False,
    dtype: torch.dtype = torch.float32,
    folder: str | os.PathLike | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (N, 1, 28, 28) images in [-1, 1] (x = u / 127.5 - 1).

    Args:
        split: ``"train"`` or ``"test"``.
        labels: also return the (N,) int64 class labels (`FASHION_MNIST_CLASSES`).
        dtype: the images' dtype.
        folder: see `fashion_mnist_uint8`.
    """
    images, targets = fashion_mnist_uint8(split, folder=folder)
    x = torch.from_numpy(images.copy()).to(dtype).unsqueeze(1) / 127.5 - 1.0
    return (x, torch.from_numpy(targets.copy())) if labels else x
