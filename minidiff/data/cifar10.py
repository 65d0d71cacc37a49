"""CIFAR-10 (Krizhevsky, 2009): download, verify, extract safely, parse, cache.

The publisher's python-version archive holds a folder ``cifar-10-batches-py`` with five
training batches ``data_batch_1`` .. ``data_batch_5``, one ``test_batch`` (10 000
images each), ``batches.meta`` and ``readme.html``. Each batch is a pickle (written by
Python 2) of a dict whose ``b"data"`` is a uint8 array of shape (10000, 3072), one row
per image in channel-major order (1024 red, 1024 green, 1024 blue values, each a 32x32
image in row-major order), and whose ``b"labels"`` is a list of ints in 0..9.

`load_cifar10` looks, in order, for the ``.npy`` cache, an extracted
``cifar-10-batches-py`` folder (as torchvision leaves it), the archive, and finally
downloads the archive if asked to. The archive's MD5 is checked before it is read, its
members against an allow-list, and the pickles are read with a restricted unpickler
(see `minidiff.data.archive`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from minidiff import atomic
from minidiff.data.archive import (
    ChecksumError,
    download_verified,
    extract_allowed,
    file_digests,
    restricted_load,
)
from minidiff.data.transforms import uint8_to_model_range

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # the only checksum the publisher gives
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_RECORD = "cifar-10-python.json"  # md5 and sha256 of the archive, written beside it
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
SPLITS = ("train", "test")
Split = Literal["train", "test"]
BATCH_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
ARCHIVE_FILES = frozenset(
    f"{CIFAR10_FOLDER}/{name}"
    for name in (*BATCH_FILES["train"], *BATCH_FILES["test"], "batches.meta", "readme.html")
)
IMAGE_SHAPE = (32, 32, 3)  # H, W, C
PIXELS = 32 * 32 * 3


def manual_hint(root: Path) -> str:
    """The sentence every download error ends with: where to put a copy by hand."""
    return (
        f"Download {CIFAR10_URL} by other means and put it at {root / CIFAR10_ARCHIVE} "
        f"(MD5 {CIFAR10_MD5}), or put an extracted {CIFAR10_FOLDER} folder at "
        f"{root / CIFAR10_FOLDER}."
    )


def download_cifar10(
    root: str | os.PathLike[str],
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the CIFAR-10 archive into `root` unless a verified copy is there.

    The bytes are streamed to a temporary file in `root` and renamed to
    ``root / "cifar-10-python.tar.gz"`` only after their MD5 matches `md5`; the MD5 and
    a SHA-256 are then recorded in ``root / "cifar-10-python.json"``.

    Args:
        root: the data folder (created if missing).
        url: where to download from.
        md5: the expected MD5, hex.
        progress: print progress to stderr.
        timeout: seconds to wait on the connection and on each read.

    Returns:
        The path of the verified archive.

    Raises:
        DownloadError: offline, refused, or truncated; the message says where to put a
            copy by hand. No partial file is left behind.
        ChecksumError: the downloaded bytes, or an archive already at the target, do not
            match `md5` (an existing file is never deleted).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / CIFAR10_ARCHIVE
    if target.exists():
        digests = verify_archive(target, md5=md5)
    else:
        digests = download_verified(
            url, target, md5=md5, manual_hint=manual_hint(root), progress=progress, timeout=timeout
        )
    record = {"file": CIFAR10_ARCHIVE, "url": url, **digests}
    atomic.write_json(root / CIFAR10_RECORD, record, indent=2, sort_keys=True)
    return target


def verify_archive(path: Path, *, md5: str = CIFAR10_MD5) -> dict[str, str]:
    """Check an archive's MD5 before anything reads it; return its MD5 and SHA-256.

    Raises:
        ChecksumError: the MD5 differs from `md5`.
    """
    digests = file_digests(path)
    if digests["md5"] != md5.lower():
        raise ChecksumError(
            f"{path} has MD5 {digests['md5']}, expected {md5.lower()}; it is left untouched. "
            f"Remove or replace it. {manual_hint(path.parent)}"
        )
    return digests


def find_batches_folder(root: str | os.PathLike[str]) -> Path | None:
    """The extracted ``cifar-10-batches-py`` folder: `root` itself or ``root/cifar-10-batches-py``.

    Returns:
        The folder, or None if neither holds ``batches.meta`` or a batch file.
    """
    root = Path(root)
    for folder in (root, root / CIFAR10_FOLDER):
        if folder.is_dir() and any((folder / name).is_file() for name in BATCH_FILES["test"]):
            return folder
    return None


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse one batch file with the restricted unpickler.

    Returns:
        images: (N, 32, 32, 3) uint8, height, width, channel.
        labels: (N,) int64 in 0..9.

    Raises:
        UnsafePickleError: the pickle asks for a global outside the allow-list.
        ValueError: the content is not a CIFAR-10 batch.
    """
    with open(path, "rb") as f:
        batch = restricted_load(f, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 batch: expected a dict with b'data', b'labels'")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{path}: b'data' must be a 2-D uint8 array")
    if data.shape[1] != PIXELS or labels.shape != (data.shape[0],):
        raise ValueError(
            f"{path}: expected data (N, {PIXELS}) and N labels, got {data.shape}, {labels.shape}"
        )
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be integers in 0..9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _cache_paths(folder: Path, split: Split) -> tuple[Path, Path]:
    return folder / f"cifar10_{split}_images.npy", folder / f"cifar10_{split}_labels.npy"


def _load_cache(folder: Path, split: Split) -> tuple[np.ndarray, np.ndarray] | None:
    images_path, labels_path = _cache_paths(folder, split)
    if not (images_path.is_file() and labels_path.is_file()):
        return None
    images = np.load(images_path, allow_pickle=False)
    labels = np.load(labels_path, allow_pickle=False)
    if (
        images.dtype != np.uint8
        or images.shape[1:] != IMAGE_SHAPE
        or labels.shape != images.shape[:1]
    ):
        raise ValueError(f"the cache {images_path} is corrupt; delete it to rebuild it")
    return images, labels


def _save_cache(folder: Path, split: Split, images: np.ndarray, labels: np.ndarray) -> None:
    images_path, labels_path = _cache_paths(folder, split)
    atomic.write_file(labels_path, lambda f: np.save(f, labels, allow_pickle=False))
    atomic.write_file(images_path, lambda f: np.save(f, images, allow_pickle=False))


def load_cifar10(
    root: str | os.PathLike[str],
    split: Split = "train",
    *,
    download: bool = False,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    progress: bool = True,
    timeout: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a CIFAR-10 split as uint8 images and int64 labels.

    Looks in `root` for, in order: the ``.npy`` cache; an extracted
    ``cifar-10-batches-py`` folder (`root` may be that folder or its parent); the
    archive (its MD5 checked first); and, if `download`, downloads the archive. The
    parsed arrays are cached as ``.npy`` beside the batches folder (written atomically).

    Args:
        root: the data folder.
        split: ``"train"`` (50 000 images) or ``"test"`` (10 000).
        download: download the archive if nothing else is found.
        url, md5, progress, timeout: see `download_cifar10`.

    Returns:
        images: (N, 32, 32, 3) uint8, height, width, channel (RGB).
        labels: (N,) int64 in 0..9, indices into `CIFAR10_CLASSES`.

    Raises:
        FileNotFoundError: nothing found and `download` is False; says where to put it.
        DownloadError, ChecksumError, UnsafeArchiveError, UnsafePickleError: see
            `download_cifar10` and `minidiff.data.archive`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    folder = find_batches_folder(root)
    cache_folder = folder.parent if folder is not None else root
    cached = _load_cache(cache_folder, split)
    if cached is not None:
        return cached
    if folder is None:
        archive = root / CIFAR10_ARCHIVE
        if archive.is_file() or download:  # an archive already there is verified, not fetched
            archive = download_cifar10(root, url=url, md5=md5, progress=progress, timeout=timeout)
        else:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {root}; pass download=True, or: {manual_hint(root)}"
            )
        extract_allowed(archive, root, files=ARCHIVE_FILES, folders=frozenset({CIFAR10_FOLDER}))
        folder = root / CIFAR10_FOLDER
    parts = [read_batch(folder / name) for name in BATCH_FILES[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    _save_cache(folder.parent, split, images, labels)
    return images, labels


class CIFAR10(torch.utils.data.Dataset):
    """CIFAR-10 as a torch Dataset of (x, label) with x in [-1, 1], shape (3, 32, 32).

    The uint8 images stay in memory; each item is scaled on access by
    `uint8_to_model_range` (x = u / 127.5 - 1). For training, `BatchLoader` over
    ``dataset.images`` with ``image_transform`` is much faster than a DataLoader.

    Args:
        root, split, download, **kwargs: see `load_cifar10`.
        dtype: the floating dtype of the items.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split = "train",
        *,
        download: bool = False,
        dtype: torch.dtype = torch.float32,
        **kwargs,
    ) -> None:
        images, labels = load_cifar10(root, split, download=download, **kwargs)
        self.images = torch.from_numpy(images)  # (N, H, W, C) uint8
        self.labels = torch.from_numpy(labels)  # (N,) int64
        self.dtype = dtype

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = uint8_to_model_range(self.images[index : index + 1], dtype=self.dtype)[0]
        return x, self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images scaled to [-1, 1] as (N, 3, 32, 32), and the (N,) labels."""
        return uint8_to_model_range(self.images, dtype=self.dtype), self.labels
