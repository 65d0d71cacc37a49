"""Layer 3: data for training, as torch tensors.

The 2-D toy sets of `minidiff.toy`; the 8x8 scikit-learn digits (offline, small enough
for a CPU); and CIFAR-10 (Krizhevsky 2009), downloaded, MD5-verified, extracted against
an allow-list and parsed with a restricted unpickler. Random horizontal flips and scaling
to [-1, 1] follow Ho et al. (2020), Appendix B; `BatchLoader` iterates in memory, on the
device if asked.
"""

from minidiff.data.archive import (
    ChecksumError,
    DownloadError,
    RestrictedUnpickler,
    UnsafeArchiveError,
    UnsafePickleError,
    download_verified,
    extract_allowed,
    restricted_load,
)
from minidiff.data.cifar10 import (
    CIFAR10,
    CIFAR10_ARCHIVE,
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_MD5,
    CIFAR10_URL,
    download_cifar10,
    load_cifar10,
    read_batch,
)
from minidiff.data.digits import DIGITS_MAX, digits_to_model_range, load_digits, pad_images
from minidiff.data.loader import BatchLoader, image_loader
from minidiff.data.toy import toy_dataset
from minidiff.data.transforms import (
    flip_mask,
    image_transform,
    random_horizontal_flip,
    uint8_to_model_range,
)

__all__ = [
    "CIFAR10",
    "CIFAR10_ARCHIVE",
    "CIFAR10_CLASSES",
    "CIFAR10_FOLDER",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "DIGITS_MAX",
    "BatchLoader",
    "ChecksumError",
    "DownloadError",
    "RestrictedUnpickler",
    "UnsafeArchiveError",
    "UnsafePickleError",
    "digits_to_model_range",
    "download_cifar10",
    "download_verified",
    "extract_allowed",
    "flip_mask",
    "image_loader",
    "image_transform",
    "load_cifar10",
    "load_digits",
    "pad_images",
    "random_horizontal_flip",
    "read_batch",
    "restricted_load",
    "toy_dataset",
    "uint8_to_model_range",
]
