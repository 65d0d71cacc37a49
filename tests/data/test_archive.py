"""Proofs for `minidiff.data.archive`: verified downloads, allow-listed extraction and
the restricted unpickler refuse every hostile input, and leave no partial file behind."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minidiff.data.archive import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    UnsafePickleError,
    check_members,
    download_verified,
    extract_allowed,
    restricted_load,
)
from tests.data.fake_cifar import closed_port_url, md5

FILES = frozenset({"top/a.bin", "top/b.bin"})
FOLDERS = frozenset({"top"})
HINT = "put a copy by hand at /some/where/file.tar.gz"


class _SystemPayload:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    """Unpickling this calls builtins.eval, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


def test_restricted_load_round_trips_a_dict_of_uint8_arrays_and_lists():
    """A batch-like dict (bytes keys, a uint8 array, a list of ints) pickled at protocols
    2 and 4 unpickles to equal values: the allow-list admits what the format needs."""
    rng = np.random.default_rng(0)
    batch = {b"data": rng.integers(0, 256, (5, 12), dtype=np.uint8), b"labels": [1, 2, 3, 4, 5]}
    for protocol in (2, 4):
        loaded = restricted_load(pickle.dumps(batch, protocol=protocol))
        np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
        assert loaded[b"data"].dtype == np.uint8 and loaded[b"labels"] == batch[b"labels"]


def test_restricted_unpickler_admits_the_python2_numpy_names():
    """Files written by Python 2 name numpy.core.multiarray._reconstruct; NumPy 2 writes
    numpy._core.multiarray._reconstruct: both resolve to the same function."""
    from minidiff.data.archive import RestrictedUnpickler

    unpickler = RestrictedUnpickler(io.BytesIO(b""))
    old = unpickler.find_class("numpy.core.multiarray", "_reconstruct")
    new = unpickler.find_class("numpy._core.multiarray", "_reconstruct")
    assert old is new and unpickler.find_class("numpy", "ndarray") is np.ndarray


@pytest.mark.parametrize("payload", [_SystemPayload, _EvalPayload])
def test_restricted_load_refuses_code_execution_and_the_payload_never_runs(tmp_path, payload):
    """A pickle whose reduce calls os.system or builtins.eval is refused with
    UnsafePickleError naming the global, and the file the payload would create does not
    exist afterwards; the same payload under plain pickle.loads does create it (so the
    test's payload is real)."""
    marker = tmp_path / "pwned"
    data = pickle.dumps({b"data": payload(marker)}, protocol=2)
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        restricted_load(data)
    assert not marker.exists()
    pickle.loads(data)  # the unrestricted loader runs it
    assert marker.exists()


def test_download_verified_refuses_a_checksum_mismatch_and_leaves_nothing(tmp_path, local_server):
    """Bytes whose MD5 differs from the expected one raise ChecksumError (a ValueError)
    carrying the manual hint; the folder is left empty."""
    url = local_server.serve("/mismatch.bin", b"payload bytes")
    with pytest.raises(ChecksumError, match="put a copy by hand"):
        download_verified(url, tmp_path / "f.bin", md5="0" * 32, manual_hint=HINT, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_verified_refuses_a_truncated_body_and_leaves_nothing(tmp_path, local_server):
    """A server that announces N bytes but sends N/2 and closes raises DownloadError
    (an OSError) saying 'truncated'; no partial file remains."""
    body = bytes(range(256)) * 64
    url = local_server.serve("/short.bin", body, send=len(body) // 2)
    with pytest.raises(DownloadError, match="truncated"):
        download_verified(url, tmp_path / "f.bin", md5=md5(body), manual_hint=HINT, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_verified_refuses_an_unreachable_server_with_the_manual_hint(tmp_path):
    """Connection refused on a closed local port raises DownloadError whose message ends
    with the manual hint; no file remains."""
    with pytest.raises(DownloadError, match="put a copy by hand at /some/where/file.tar.gz"):
        download_verified(
            closed_port_url(),
            tmp_path / "f.bin",
            md5="0" * 32,
            manual_hint=HINT,
            progress=False,
            timeout=5,
        )
    assert list(tmp_path.iterdir()) == []


def test_download_verified_removes_the_temporary_file_on_keyboard_interrupt(tmp_path, monkeypatch):
    """An interrupt while streaming (KeyboardInterrupt from the second read) propagates
    and the temporary file, already holding the first chunk, is removed."""

    class InterruptedResponse:
        headers = {"Content-Length": "2000"}
        reads = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, amt=None):
            self.reads += 1
            if self.reads > 1:
                raise KeyboardInterrupt
            return b"x" * 1000

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: InterruptedResponse())
    with pytest.raises(KeyboardInterrupt):
        download_verified(
            "http://127.0.0.1:1/f.bin",
            tmp_path / "f.bin",
            md5="0" * 32,
            manual_hint=HINT,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_download_verified_moves_verified_bytes_into_place(tmp_path, local_server):
    """A whole body with the right MD5 lands at the target, byte for byte, with its MD5
    and SHA-256 returned, and nothing else is left in the folder."""
    body = os.urandom(5000)
    url = local_server.serve("/good.bin", body)
    digests = download_verified(
        url, tmp_path / "f.bin", md5=md5(body), manual_hint=HINT, progress=False
    )
    assert (tmp_path / "f.bin").read_bytes() == body and digests["md5"] == md5(body)
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, 0
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("../evil"), "'..'"),
        (_member("top/../../evil"), "'..'"),
        (_member("/tmp/evil"), "absolute"),
        (_member("top/a.bin", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_member("top/a.bin", tarfile.LNKTYPE, "top/b.bin"), "link"),
        (_member("top/a.bin", tarfile.CHRTYPE), "unexpected"),
        (_member("top/c.bin"), "unexpected"),
        (_member("other", tarfile.DIRTYPE), "unexpected"),
    ],
)
def test_check_members_refuses_everything_off_the_allow_list(member, reason):
    """Absolute paths, '..' components, symbolic and hard links, devices, and files or
    folders not on the allow-list each raise UnsafeArchiveError with the reason."""
    with pytest.raises(UnsafeArchiveError, match=reason):
        check_members([_member("top", tarfile.DIRTYPE), member], FILES, FOLDERS)


def test_check_members_refuses_a_duplicated_member():
    """A file listed twice (the second copy would overwrite the first) is refused."""
    with pytest.raises(UnsafeArchiveError, match="duplicated"):
        check_members([_member("top/a.bin"), _member("top/a.bin")], FILES, FOLDERS)


def test_check_members_accepts_exactly_the_allowed_files_and_folders():
    """The allowed folder and files, in any order, pass and are returned in order."""
    members = [_member("top", tarfile.DIRTYPE), _member("top/b.bin"), _member("top/a.bin")]
    assert check_members(members, FILES, FOLDERS) == members


def test_extract_allowed_writes_nothing_when_any_member_is_refused(tmp_path):
    """An archive with allowed files followed by one '../evil' member is refused before
    any member is written: the destination and its parent are unchanged."""
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("top/a.bin", "../evil"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_allowed(archive, destination, files=FILES, folders=FOLDERS)
    assert list(destination.iterdir()) == [] and not (tmp_path / "evil").exists()
