"""Tests of the atomic file-system layer: JSON files and folders that are replaced whole,
crash points that never expose a partial file, set-aside copies that come back, pruning
and the cleanup of leftovers."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from minidiff import atomic

PRIMITIVES = ("write_bytes", "fsync_dir", "replace", "make_temp_dir", "remove_tree")


class _Crash(Exception):
    """The simulated power cut."""


def _crash_at(monkeypatch, crash_at: int | None, log: list) -> None:
    """Wrap the primitives; call number ``crash_at`` fails (a failing write leaves half
    its bytes on disk) with no cleanup, as a crash would."""
    for name in PRIMITIVES:
        real = getattr(atomic, name)

        def wrapper(*args, _real=real, _name=name):
            log.append(_name)
            if len(log) == crash_at:
                if _name == "write_bytes":
                    with open(args[0], "xb") as file:
                        file.write(args[1][: len(args[1]) // 2])
                raise _Crash(_name)
            return _real(*args)

        monkeypatch.setattr(atomic, name, wrapper)


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    """write_json creates the file, replaces its content on a second call and reads back
    exactly what was written; afterwards no temporary file remains."""
    path = tmp_path / "latest.json"
    atomic.write_json(path, {"step": 1, "name": "a"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"step": 1, "name": "a"}
    atomic.write_json(path, {"step": 2, "name": "b", "values": [1.5, None, True]}, indent=2)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "step": 2,
        "name": "b",
        "values": [1.5, None, True],
    }
    assert _hidden(tmp_path) == []


def test_write_file_takes_bytes_or_a_writer_and_a_failing_writer_changes_nothing(tmp_path):
    """write_file writes given bytes, or what a ``write(file)`` callback writes to a file
    object (as numpy.save and savefig do); a callback that raises leaves the old file
    as it was and no temporary behind."""
    path = tmp_path / "data.bin"
    atomic.write_file(path, b"first")
    atomic.write_file(path, lambda file: file.write(b"second"))
    assert path.read_bytes() == b"second"

    def failing(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_file(path, failing)
    assert path.read_bytes() == b"second" and _hidden(tmp_path) == []


def test_output_locations_below_a_file_or_in_an_unwritable_folder_are_refused(
    tmp_path, unwritable_folder
):
    """check_output_location accepts a new path below writable folders and an existing
    folder; it refuses a path whose ancestor is a file, an existing file where a folder
    is wanted, and a path in a folder it cannot write, naming the argument and the
    culprit; it creates nothing."""
    atomic.check_output_location(tmp_path / "a" / "b", "--out")
    atomic.check_output_location(tmp_path, "--out")
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=f"--out .*{blocker}' is a file"):
        atomic.check_output_location(blocker / "a" / "b", "--out")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        atomic.check_output_location(blocker, "--out")
    atomic.check_output_location(blocker, "--out", folder=False)
    with pytest.raises(ValueError, match="not writable"):
        atomic.check_output_location(unwritable_folder / "run", "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "locked"]


def test_a_crash_in_write_json_leaves_the_old_or_the_new_content(tmp_path, monkeypatch):
    """Interrupt write_json at each of its file-system calls k = 1..K in turn (write,
    replace, fsync of the folder): the file always parses and holds the old value before
    the replace, the new value from the replace on; never a partial file."""
    count: list = []
    with monkeypatch.context() as patch:
        _crash_at(patch, None, count)
        atomic.write_json(tmp_path / "count.json", 0)
    assert count == ["write_bytes", "replace", "fsync_dir"]
    for crash_at in range(1, len(count) + 1):
        path = tmp_path / f"crash_{crash_at}.json"
        atomic.write_json(path, {"old": True})
        with monkeypatch.context() as patch:
            _crash_at(patch, crash_at, [])
            with pytest.raises(_Crash):
                atomic.write_json(path, {"old": False, "payload": list(range(100))})
        replaced = crash_at > count.index("replace") + 1  # call numbers start at 1
        assert json.loads(path.read_text(encoding="utf-8"))["old"] is not replaced, crash_at


def test_write_folder_sets_the_old_copy_aside_and_recovery_puts_it_back(tmp_path):
    """write_folder creates the folder with its files; writing the same name again
    returns the set-aside ``.old-NAME-XXXX`` holding the previous copy, which
    set_aside_folders lists. If the new folder never took the name, recover_set_aside
    moves the copy back, but only when ``accept`` approves it."""
    assert atomic.write_folder(tmp_path, "step_1", {"a": b"old", "b": b"x"}) is None
    aside = atomic.write_folder(tmp_path, "step_1", {"a": b"new"})
    assert aside is not None and aside.name.startswith(".old-step_1-")
    assert sorted(p.name for p in (tmp_path / "step_1").iterdir()) == ["a"]
    assert (tmp_path / "step_1" / "a").read_bytes() == b"new"
    assert atomic.set_aside_folders(tmp_path) == [aside / "step_1"]
    assert (aside / "step_1" / "a").read_bytes() == b"old"

    atomic.remove_tree(tmp_path / "step_1")  # as if the new folder had not been renamed
    atomic.recover_set_aside(tmp_path, accept=lambda copy: False)
    assert not (tmp_path / "step_1").exists()
    atomic.recover_set_aside(tmp_path, accept=lambda copy: True)
    assert (tmp_path / "step_1" / "a").read_bytes() == b"old"
    assert atomic.set_aside_folders(tmp_path) == []


@settings(max_examples=30)
@given(
    n=st.integers(0, 6),
    keep_last=st.integers(1, 7),
    keep_index=st.integers(0, 5),
)
def test_prune_keeps_the_newest_and_the_given_folder(n, keep_last, keep_index):
    """Of n folders ordered oldest first, prune leaves exactly the last keep_last and the
    folder ``keep`` (any one of them), deletes the rest through ``.trash-`` folders and
    leaves no trash behind."""
    with tempfile.TemporaryDirectory() as name:
        parent = Path(name)
        folders = [parent / f"f{i}" for i in range(n)]
        for folder in folders:
            folder.mkdir()
            (folder / "data").write_bytes(b"1234")
        keep = folders[keep_index] if keep_index < n else parent / "elsewhere"
        atomic.prune(folders, keep_last, keep=keep)
        expected = {f.name for f in folders[max(n - keep_last, 0) :]} | (
            {keep.name} if keep_index < n else set()
        )
        assert {p.name for p in parent.iterdir()} == expected


def test_remove_temporaries_deletes_only_the_leftovers_it_is_told_about(tmp_path):
    """remove_temporaries deletes the ``.tmp-``, ``.trash-`` and ``.old-`` folders of the
    given prefix and the ``.NAME.tmp-*`` files of the given names, and nothing else."""
    for folder in (".tmp-step_1-ab", ".trash-step_2-cd", ".old-step_3-ef", "step_4", ".tmp-x-1"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "file").write_bytes(b"data")
    for file in (".latest.json.tmp-12", ".other.json.tmp-3", "latest.json"):
        (tmp_path / file).write_bytes(b"{}")
    atomic.remove_temporaries(tmp_path, "step_", ["latest.json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.json.tmp-3",
        ".tmp-x-1",
        "latest.json",
        "step_4",
    ]
