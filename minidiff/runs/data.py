"""The data, the device and the network of a preset's run."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from minidiff.configs import Preset, build_model

__all__ = ["TOY_POINTS", "check_training_data", "new_model", "resolve_device", "training_data"]

TOY_POINTS = 20_000  # size of the training set drawn for a 2-D preset


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA if available, else the CPU; otherwise ``device``,
    checked to exist.

    Raises:
        ValueError: a malformed name, or a CUDA device this machine does not have.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}") from err
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ValueError(f"device {str(device)!r} is not available: {count} CUDA devices")
    elif device.type not in ("cpu", "mps", "xpu"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {str(device)!r}")
    return device


def training_data(
    p: Preset,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    device: torch.device | str | None = None,
):
    """The training data of preset ``p``, for `Trainer`.

    - ``digits``: the "train" split of `minidiff.data.load_digits`, padded to
      ``p.data.pad_to``;
    - ``fashion-mnist``: the "train" split of `minidiff.data.fashion_mnist.load_fashion_mnist` (the
      Debian package ``dataset-fashion-mnist``), padded to ``p.data.pad_to``;
    - ``cifar10``: `minidiff.data.load_cifar10` from ``root`` (default ``./data``;
      ``download`` fetches it) through `minidiff.data.image_loader`, with
      ``p.data.random_flip``;
    - a 2-D set of `minidiff.toy.DATASETS`: `TOY_POINTS` points of
      `minidiff.data.toy_dataset`, drawn with ``p.training.seed``.

    Args:
        p: the preset.
        root, download: where CIFAR-10 is (or goes).
        device: keep the data there (CIFAR-10: flips and scaling run there too).

    Returns:
        A tensor x_0 (N, C, H, W) or (N, D), or a `BatchLoader` yielding (B, C, H, W);
        for a class-conditional preset (``p.model.num_classes`` set) the labels come too:
        a pair (x_0, y) with y (N,) int64, or a loader yielding (x_0, y) batches.

    Raises:
        ValueError: an unknown dataset, or images whose shape is not the preset's.
        FileNotFoundError: CIFAR-10 is missing and ``download`` is False.
    """
    from minidiff import data
    from minidiff.toy import DATASETS

    dataset, batch_size = p.data.dataset, p.training.batch_size
    labelled = p.model.num_classes is not None  # a class-conditional preset
    y = None
    if dataset == "digits":
        x0 = data.load_digits("train", pad_to=p.data.pad_to, labels=labelled)  # (N, 1, S, S)
        x0, y = x0 if labelled else (x0, None)  # y: (N,) in 0..9
    elif dataset == "fashion-mnist":
        from minidiff.data.fashion_mnist import load_fashion_mnist

        x0 = load_fashion_mnist("train", labels=labelled)  # (N, 1, 28, 28) in [-1, 1]
        x0, y = x0 if labelled else (x0, None)
        if p.data.pad_to is not None:
            x0 = data.pad_images(x0, p.data.pad_to)
    elif dataset == "cifar10":
        images, labels = data.load_cifar10(
            Path("data") if root is None else Path(root), download=download
        )
        images = torch.from_numpy(images)  # (N, 32, 32, 3) uint8
        _check_image_shape(p, (images.shape[3], images.shape[1], images.shape[2]))
        y = torch.as_tensor(labels, dtype=torch.int64) if labelled else None  # (N,) in 0..9
        return data.image_loader(images, y, batch_size, device=device,
                                 flip=p.data.random_flip)  # fmt: skip
    elif dataset in DATASETS:
        x0 = data.toy_dataset(dataset, TOY_POINTS, p.training.seed)  # (N, 2)
        if p.sample_shape != tuple(x0.shape[1:]):
            raise ValueError(f"dataset {dataset!r} has 2-D points: it needs model 'mlp' with "
                             f"dim=2, got {p.model_kind!r} for shape {p.sample_shape}")  # fmt: skip
        return x0 if device is None else x0.to(device)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'digits', 'fashion-mnist', "
                         f"'cifar10' or one of {DATASETS}")  # fmt: skip
    _check_image_shape(p, tuple(x0.shape[1:]))
    tensors = (x0,) if y is None else (x0, y)
    if p.data.random_flip:
        return data.BatchLoader(
            tensors, batch_size, drop_last=True, device=device,
            transform=lambda x, g: data.random_horizontal_flip(x, generator=g),
        )  # fmt: skip
    tensors = tuple(v if device is None else v.to(device) for v in tensors)
    return tensors[0] if y is None else tensors


def check_training_data(p: Preset, data) -> None:
    """Check that ``data`` (from `training_data`) holds at least one batch of ``p``.

    Raises:
        ValueError: ``p.training.batch_size`` exceeds the number of examples.
    """
    tensor = data.tensors[0] if hasattr(data, "tensors") else data
    tensor = tensor[0] if isinstance(tensor, (tuple, list)) else tensor  # (x_0, y)
    n, batch_size = tensor.shape[0], p.training.batch_size
    if n < batch_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the data set "
            f"({p.data.dataset!r} has {n} examples): choose batch_size <= {n}"
        )


def _check_image_shape(p: Preset, shape: tuple[int, ...]) -> None:
    if p.model_kind != "unet":
        raise ValueError(f"dataset {p.data.dataset!r} holds images of shape {tuple(shape)} "
                         f"(C, H, W), but the preset's model {p.model_kind!r} takes points "
                         f"of shape {p.sample_shape}: use a U-Net model section")  # fmt: skip
    if tuple(shape) != p.sample_shape:
        raise ValueError(f"dataset {p.data.dataset!r} has images of shape {tuple(shape)} "
                         f"(C, H, W); the preset's model {p.model_kind!r} expects "
                         f"{p.sample_shape}")  # fmt: skip


def new_model(p: Preset) -> nn.Module:
    """The preset's network, initialised from ``p.training.seed`` (the caller's RNG left
    alone)."""
    seed = p.training.seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(p, generator=torch.Generator().manual_seed(seed))
