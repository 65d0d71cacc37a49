"""The published weights of the FID Inception: found, checked and loaded, never downloaded.

The file is ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release; torch-fidelity
publishes the same bytes as ``weights-inception-2015-12-05-6726825d.pth``), 95,628,359
bytes, SHA-256 ``INCEPTION_SHA256``. Name it with ``--inception-weights PATH`` or the
``MINIDIFF_INCEPTION_WEIGHTS`` variable; it is read with ``torch.load(weights_only=True)``
after its SHA-256 is checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from minidiff.evaluation.inception import FIDInception

__all__ = [
    "INCEPTION_SHA256",
    "INCEPTION_URL",
    "WEIGHTS_ENV",
    "InceptionWeightsError",
    "inception_weights_path",
    "load_inception",
]

# SHA-256 of the published file; its first 8 hex digits are the "6726825d" of the file name.
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
WEIGHTS_ENV = "MINIDIFF_INCEPTION_WEIGHTS"


class InceptionWeightsError(ValueError):
    """The Inception weights file is missing, or is not the published one."""


def inception_weights_path(path: str | os.PathLike | None = None) -> Path:
    """The weights file to use: ``path``, else the ``MINIDIFF_INCEPTION_WEIGHTS`` variable.

    Raises:
        InceptionWeightsError: neither names a file that exists (the message says where to
            get it).
    """
    chosen = path if path is not None else os.environ.get(WEIGHTS_ENV) or None
    if chosen is None:
        raise InceptionWeightsError(
            "no Inception weights: pass --inception-weights PATH or set "
            f"{WEIGHTS_ENV}; the file is {INCEPTION_URL} (SHA-256 {INCEPTION_SHA256})"
        )
    chosen = Path(chosen)
    if not chosen.is_file():
        raise InceptionWeightsError(
            f"inception weights file {str(chosen)!r} does not exist; download "
            f"{INCEPTION_URL} (SHA-256 {INCEPTION_SHA256}) and name it"
        )
    return chosen


def load_inception(
    path: str | os.PathLike | None = None, *, dtype: torch.dtype = torch.float32
) -> FIDInception:
    """The FID Inception with the published weights, in evaluation mode.

    Args:
        path: the weights file (None: ``MINIDIFF_INCEPTION_WEIGHTS``).
        dtype: the network's dtype (float64 for reference checks).

    Raises:
        InceptionWeightsError: no file, or one whose SHA-256 is not ``INCEPTION_SHA256``.
    """
    path = inception_weights_path(path)
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != INCEPTION_SHA256:
        raise InceptionWeightsError(
            f"inception weights file {str(path)!r} has SHA-256 {digest.hexdigest()}, not the "
            f"published {INCEPTION_SHA256} ({INCEPTION_URL})"
        )
    network = FIDInception()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.to(dtype).eval()
