"""Proofs for `minidiff.data.cifar10`: archives generated in the publisher's format and
served from 127.0.0.1 download, verify, extract and parse back to the generated arrays;
the cache and torchvision-style folders are used; every hostile or broken input is
refused with a clear error and no partial file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from minidiff.data import (
    CIFAR10,
    CIFAR10_ARCHIVE,
    CIFAR10_FOLDER,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    UnsafePickleError,
    download_cifar10,
    load_cifar10,
    read_batch,
)
from tests.data.fake_cifar import (
    closed_port_url,
    expected_arrays,
    make_archive,
    make_batches,
    md5,
    write_folder,
)

BATCHES = make_batches(seed=0)
ARCHIVE = make_archive(BATCHES)


class _Payload:
    """Unpickling this would create the marker file through os.system."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _serve(server, name: str, archive: bytes) -> dict:
    """Keyword arguments of load_cifar10 that download `archive` from the local server."""
    url = server.serve(f"/{name}/{CIFAR10_ARCHIVE}", archive)
    return {"download": True, "url": url, "md5": md5(archive), "progress": False, "timeout": 5}


def test_download_extract_parse_round_trip_equals_the_generated_arrays(tmp_path, local_server):
    """Downloading the generated archive and parsing both splits gives back exactly the
    generated images, (N, 32, 32, 3) uint8 with channel c of pixel (i, j) at row entry
    c*1024 + 32*i + j, and int64 labels; the archive sits at root/cifar-10-python.tar.gz
    and the JSON record holds its MD5 and SHA-256."""
    kwargs = _serve(local_server, "round-trip", ARCHIVE)
    for split in ("train", "test"):
        images, labels = load_cifar10(tmp_path, split, **kwargs)
        want_images, want_labels = expected_arrays(BATCHES, split)
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)
    assert (tmp_path / CIFAR10_ARCHIVE).read_bytes() == ARCHIVE
    record = json.loads((tmp_path / "cifar-10-python.json").read_text())
    assert record["md5"] == md5(ARCHIVE)
    assert record["sha256"] == hashlib.sha256(ARCHIVE).hexdigest()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_second_load_uses_the_cache_without_reading_the_batches(tmp_path, local_server):
    """After one load, the .npy cache alone answers: with the archive deleted and every
    batch file overwritten by garbage, a second load returns the same arrays."""
    first = load_cifar10(tmp_path, "test", **_serve(local_server, "cache", ARCHIVE))
    (tmp_path / CIFAR10_ARCHIVE).unlink()
    for batch in (tmp_path / CIFAR10_FOLDER).iterdir():
        batch.write_bytes(b"not a pickle")
    second = load_cifar10(tmp_path, "test")
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("point_at_folder", [False, True])
def test_an_extracted_torchvision_folder_is_used_without_download(tmp_path, point_at_folder):
    """An existing cifar-10-batches-py folder (root pointing at it or at its parent) is
    parsed in place, with no archive and no download."""
    folder = write_folder(tmp_path, BATCHES)
    images, labels = load_cifar10(folder if point_at_folder else tmp_path, "train")
    want_images, want_labels = expected_arrays(BATCHES, "train")
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    assert not (tmp_path / CIFAR10_ARCHIVE).exists()


def test_a_hand_placed_archive_is_verified_and_used(tmp_path):
    """An archive copied by hand to root/cifar-10-python.tar.gz is verified and parsed
    with download=False; a hand-placed archive with the wrong MD5 raises ChecksumError
    and is left untouched (never delete a user's file)."""
    (tmp_path / CIFAR10_ARCHIVE).write_bytes(ARCHIVE)
    images, _ = load_cifar10(tmp_path, "test", md5=md5(ARCHIVE))
    np.testing.assert_array_equal(images, expected_arrays(BATCHES, "test")[0])
    other = tmp_path / "other"
    other.mkdir()
    (other / CIFAR10_ARCHIVE).write_bytes(ARCHIVE)
    with pytest.raises(ChecksumError, match="left untouched"):
        load_cifar10(other, "test", md5="0" * 32)
    assert (other / CIFAR10_ARCHIVE).read_bytes() == ARCHIVE


def test_missing_data_without_download_says_where_to_put_it(tmp_path):
    """Nothing in root and download=False raises FileNotFoundError naming the exact path
    root/cifar-10-python.tar.gz."""
    with pytest.raises(FileNotFoundError, match=str(tmp_path / CIFAR10_ARCHIVE)):
        load_cifar10(tmp_path, "train")


def test_unreachable_server_says_put_a_copy_by_hand_at_the_path(tmp_path):
    """Connection refused (a closed local port) raises DownloadError, an OSError, whose
    message names the exact path root/cifar-10-python.tar.gz; root is left empty."""
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match=f"put it at {root / CIFAR10_ARCHIVE}") as info:
        download_cifar10(root, url=closed_port_url(), progress=False, timeout=5)
    assert isinstance(info.value, OSError)
    assert list(root.iterdir()) == []


def test_checksum_mismatch_on_download_leaves_no_file(tmp_path, local_server):
    """Downloaded bytes whose MD5 is not the expected one raise ChecksumError (a
    ValueError) naming where to put a copy by hand; root is left empty."""
    url = local_server.serve("/mismatch/" + CIFAR10_ARCHIVE, ARCHIVE)
    with pytest.raises(ChecksumError, match=f"put it at {tmp_path / CIFAR10_ARCHIVE}"):
        load_cifar10(tmp_path, "train", download=True, url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_no_file(tmp_path, local_server):
    """A server that announces the whole archive but sends half of it and closes raises
    DownloadError saying 'truncated'; root is left empty."""
    url = local_server.serve("/short/" + CIFAR10_ARCHIVE, ARCHIVE, send=len(ARCHIVE) // 2)
    with pytest.raises(DownloadError, match="truncated"):
        load_cifar10(tmp_path, "train", download=True, url=url, md5=md5(ARCHIVE), progress=False)
    assert list(tmp_path.iterdir()) == []


def _hostile(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_hostile("../evil"), "'..'"),
        (_hostile("/tmp/minidiff-evil"), "absolute"),
        (_hostile(f"{CIFAR10_FOLDER}/evil-link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_hostile(f"{CIFAR10_FOLDER}/extra.py"), "unexpected"),
    ],
)
def test_hostile_archive_members_are_refused_and_nothing_is_extracted(
    tmp_path, local_server, member, reason
):
    """A verified archive holding a '../evil', an absolute-path, a symlink or an
    unexpected extra member raises UnsafeArchiveError; no folder, staging folder or
    file outside root appears (only the verified archive and its record remain)."""
    root = tmp_path / "data"
    archive = make_archive(BATCHES, extra=[member])
    with pytest.raises(UnsafeArchiveError, match=reason):
        load_cifar10(root, "train", **_serve(local_server, f"hostile-{reason}", archive))
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [CIFAR10_ARCHIVE, "cifar-10-python.json"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert not os.path.lexists("/tmp/minidiff-evil")


def test_a_batch_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, local_server):
    """A test_batch whose pickle calls os.system is refused with UnsafePickleError when
    parsed, and the file the payload would create does not exist."""
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Payload(marker), b"labels": []}, protocol=2)
    archive = make_archive(BATCHES, replace={"test_batch": evil})
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        load_cifar10(tmp_path / "data", "test", **_serve(local_server, "evil-pickle", archive))
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        read_batch(tmp_path / "data" / CIFAR10_FOLDER / "test_batch")
    assert not marker.exists()


def test_dataset_scales_to_minus_one_one_channels_first(tmp_path):
    """CIFAR10 items are x = u / 127.5 - 1 of the uint8 image, as (3, 32, 32) with
    channel c of x at [c, i, j] = pixel (i, j, c); all values lie in [-1, 1]."""
    write_folder(tmp_path, BATCHES)
    dataset = CIFAR10(tmp_path, "test", dtype=torch.float64)
    images, labels = expected_arrays(BATCHES, "test")
    x, label = dataset[3]
    assert x.shape == (3, 32, 32) and len(dataset) == images.shape[0]
    want = torch.from_numpy(images[3].astype(np.float64) / 127.5 - 1.0).permute(2, 0, 1)
    torch.testing.assert_close(x, want, rtol=0, atol=1e-15)
    assert int(label) == labels[3]
    all_x, all_labels = dataset.tensors()
    assert all_x.shape == (images.shape[0], 3, 32, 32)
    assert float(all_x.min()) >= -1.0 and float(all_x.max()) <= 1.0
