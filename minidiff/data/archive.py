"""Safe handling of downloaded archives: verified download, allow-listed extraction,
and a restricted unpickler.

Three rules, each enforced before any other code touches the bytes:

1. A download is streamed into memory, its MD5 is checked against the publisher's value,
   and only then is it written to disk, under a temporary name renamed into place
   (`minidiff.atomic.write_file`). A failure, ``KeyboardInterrupt`` included, writes
   nothing.
2. An archive is extracted only if every member is on an allow-list of regular files
   (plus the folders that hold them): no absolute paths, no ``..``, no links or
   devices. ``tarfile``'s ``filter="data"`` is applied as well where Python has it.
3. A pickle is read with an unpickler whose ``find_class`` admits only the few
   globals that a dict of NumPy arrays needs; anything else (``os.system``,
   ``builtins.eval``, ...) is refused before it can be called.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import io
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from minidiff import atomic

try:  # NumPy >= 2 keeps the implementation in numpy._core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A download failed (offline, refused, truncated); the message says where to put a
    copy by hand."""


class ChecksumError(ValueError):
    """A file's checksum differs from the publisher's value."""


class UnsafeArchiveError(ValueError):
    """An archive holds a member outside the allow-list (a link, an absolute path, a
    ``..`` component, a device, or a file the format does not have)."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global outside the allow-list."""


# The globals a pickled dict of NumPy arrays needs: Python 2 era files name NumPy's
# `numpy.core` module, files written by NumPy 2 name `numpy._core`.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes at pickle protocol 2 as _codecs.encode(str, "latin1"): a
    # pure function from str to bytes, harmless to admit.
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED_GLOBALS``.

    Plain containers, numbers, strings and bytes need no globals at all; a NumPy array
    needs ``_reconstruct``, ``ndarray`` and ``dtype``. Any other global raises
    `UnsafePickleError` before it is looked up, so a payload such as
    ``os.system(...)`` never runs.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a pickle: only "
                f"{sorted('.'.join(k) for k in _ALLOWED_GLOBALS)} are allowed"
            ) from None


def restricted_load(file: BinaryIO | bytes, *, encoding: str = "bytes") -> Any:
    """Unpickle `file` with `RestrictedUnpickler`.

    Args:
        file: an open binary file, or the pickle's bytes.
        encoding: how Python 2 ``str`` objects are decoded; ``"bytes"`` keeps them as
            bytes, which is what NumPy arrays pickled by Python 2 need.

    Returns:
        The unpickled object.
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    return RestrictedUnpickler(file, encoding=encoding).load()


def file_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """The MD5 and SHA-256 hex digests of a file, read in chunks."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def download_verified(
    url: str,
    target: Path,
    *,
    md5: str,
    manual_hint: str,
    progress: bool = True,
    timeout: float = 60.0,
) -> dict[str, str]:
    """Stream `url` to `target`, renaming it into place only once its MD5 matches.

    Args:
        url: an ``http://`` or ``https://`` address.
        target: the final path; its folder must exist.
        md5: the expected MD5, hex.
        manual_hint: appended to every error (where to put a copy by hand).
        progress: print progress to stderr.
        timeout: seconds to wait on the connection and on each read.

    Returns:
        ``{"md5": ..., "sha256": ...}`` of the file now at `target`.

    Raises:
        DownloadError: the server is unreachable, answers with an error, or sends fewer
            bytes than its ``Content-Length``.
        ChecksumError: the bytes arrived but their MD5 differs from `md5`.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    hashes = {"md5": hashlib.md5(usedforsecurity=False), "sha256": hashlib.sha256()}

    def stream(file: BinaryIO) -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length is not None else None
                received = 0
                # Without amt the reader waits for all Content-Length bytes; with it, a
                # short body ends in b"" and the length check below catches it.
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    for digest in hashes.values():
                        digest.update(chunk)
                    received += len(chunk)
                    if progress:
                        total = f"/{expected}" if expected else ""
                        print(f"\r{target.name}: {received}{total} bytes", end="", file=sys.stderr)
                if progress:
                    print(file=sys.stderr)
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(f"could not download {url}: {error}. {manual_hint}") from error
        if expected is not None and received != expected:
            raise DownloadError(
                f"download of {url} was truncated: got {received} of {expected} bytes. "
                f"{manual_hint}"
            )
        if hashes["md5"].hexdigest() != md5.lower():
            raise ChecksumError(
                f"MD5 of the file downloaded from {url} is {hashes['md5'].hexdigest()}, "
                f"expected {md5.lower()}; the file was discarded. {manual_hint}"
            )

    atomic.write_file(target, stream)  # nothing reaches the disk unless every check passed
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def check_members(
    members: Iterable[tarfile.TarInfo], files: frozenset[str], folders: frozenset[str]
) -> list[tarfile.TarInfo]:
    """Check every tar member against the allow-lists; return them, or raise.

    Args:
        members: the archive's members.
        files: the names allowed as regular files (``"folder/name"``).
        folders: the names allowed as directories.

    Raises:
        UnsafeArchiveError: a member is absolute, has a ``..`` component, is a link,
            device or FIFO, is not on the allow-list, or appears twice.
    """
    checked, seen = [], set()
    for member in members:
        name = member.name
        if name.rstrip("/") in seen:  # a later copy would silently replace the first
            raise UnsafeArchiveError(f"refusing archive with a duplicated member {name!r}")
        seen.add(name.rstrip("/"))
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or os.path.isabs(name) or (parts and ":" in parts[0]):
            raise UnsafeArchiveError(f"refusing archive member with an absolute path: {name!r}")
        if ".." in parts:
            raise UnsafeArchiveError(f"refusing archive member with '..' in its path: {name!r}")
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(f"refusing link member {name!r} -> {member.linkname!r}")
        if member.isfile() and name in files:
            checked.append(member)
        elif member.isdir() and name.rstrip("/") in folders:
            checked.append(member)
        else:
            raise UnsafeArchiveError(
                f"refusing unexpected archive member {name!r} (type {member.type!r}); "
                f"expected only the files {sorted(files)}"
            )
    return checked


def extract_allowed(
    archive: Path, destination: Path, *, files: frozenset[str], folders: frozenset[str]
) -> None:
    """Extract a ``.tar.gz`` whose members all pass `check_members` into `destination`.

    The members are extracted into a temporary folder inside `destination` and each
    top-level folder is then renamed into place, so a failure leaves nothing behind.

    Raises:
        UnsafeArchiveError: see `check_members`; nothing is written in that case.
        FileExistsError: a top-level folder already exists in `destination`.
    """
    with tarfile.open(archive, "r:gz") as tar:
        members = check_members(tar.getmembers(), files, folders)
        tops = sorted({m.name.split("/")[0] for m in members})
        for top in tops:
            if (destination / top).exists():
                raise FileExistsError(f"{destination / top} already exists; not overwriting it")
        staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=destination))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(staging, members=members)
            for top in tops:
                os.replace(staging / top, destination / top)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
