"""Bad input and faults at the command line: each gives one line on stderr and exit
status 2, with nothing written (``minidiff train``, ``toy``, ``sample`` and ``evaluate``)."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch

import minidiff.training.checkpoint as checkpoint_module
from minidiff.cli import main
from minidiff.training import find_latest_checkpoint
from tests.test_cli_train import TRAIN, fails, files, run_dir  # noqa: F401 - a fixture
from tests.training.test_checkpoint import tamper_state

torch.set_num_threads(1)

TOY = ["toy", "--dataset", "moons", "--steps", "2", "--n-samples", "20", "--n-train", "50",
       "--T", "21", "--no-progress"]  # fmt: skip


def train_argv(out, *extra: str) -> list[str]:
    return [*TRAIN, *extra, "--out", str(out), "--device", "cpu", "--no-progress"]


def sample_argv(checkpoint, out) -> list[str]:
    return ["sample", "--checkpoint", str(checkpoint), "--out", str(out), "--n", "2",
            "--device", "cpu", "--no-progress"]  # fmt: skip


def one_line(err: str) -> str:
    """``err`` is one line ``minidiff COMMAND: error: ...`` with no traceback."""
    assert err.startswith("minidiff ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_a_batch_larger_than_the_data_set_is_refused_before_anything_is_written(
    tmp_path, capsys
):
    """`--set batch_size=5000` on the 1797 digits: one line naming batch_size, no folder."""
    out = tmp_path / "run"
    err = one_line(fails(train_argv(out, "--set", "batch_size=5000"), capsys))
    assert "5000" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "toy", "sample"])
def test_an_out_below_a_file_is_refused_before_any_work(run_dir, tmp_path, capsys, command):  # noqa: F811
    """--out inside a path whose parent is a file: one line naming that file, before
    training or sampling, and the file is left as it was."""
    blocker = tmp_path / "f"
    blocker.write_text("keep me")
    argv = {
        "train": train_argv(blocker / "run"),
        "toy": [*TOY, "--out", str(blocker / "t")],
        "sample": sample_argv(run_dir, blocker / "sub" / "grid.png"),
    }[command]
    err = one_line(fails(argv, capsys))
    assert str(blocker) in err
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("command", ["train", "toy", "sample", "evaluate"])
def test_an_unwritable_out_is_refused_before_any_work(
    run_dir, unwritable_folder, capsys, command  # noqa: F811
):
    """--out inside a folder that cannot be written: one line saying so, nothing drawn."""
    argv = {
        "train": train_argv(unwritable_folder / "run"),
        "toy": [*TOY, "--out", str(unwritable_folder / "t")],
        "sample": sample_argv(run_dir, unwritable_folder / "grid.png"),
        "evaluate": ["evaluate", "--checkpoint", str(run_dir), "--out",
                     str(unwritable_folder / "m.json"), "--device", "cpu", "--no-progress"],
    }[command]  # fmt: skip
    err = one_line(fails(argv, capsys))
    assert "not writable" in err
    assert list(unwritable_folder.iterdir()) == []


def corrupt_header(path) -> None:
    """Overwrite bytes of a safetensors header, keeping the file's size."""
    data = bytearray(path.read_bytes())
    data[9:21] = b"#" * 12
    path.write_bytes(bytes(data))


def test_resume_passes_over_a_corrupted_latest_checkpoint(tmp_path, capsys):
    """The latest checkpoint's model.safetensors corrupted in place (size kept): --resume
    says in one line that it passes over it and continues from the previous one."""
    out = tmp_path / "run"
    assert main(train_argv(out)) == 0
    corrupt_header(out / "checkpoints" / "step_000004" / "model.safetensors")
    capsys.readouterr()
    assert main(train_argv(out, "--set", "steps=6", "--resume")) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step_000004" in err, err
    assert find_latest_checkpoint(out / "checkpoints").name == "step_000006"


def test_resume_without_a_good_checkpoint_stops_in_one_line_and_keeps_run_json(
    tmp_path, capsys
):
    """With its only checkpoint corrupted in place, --resume exits 2 in one line and
    run.json, the metrics and the checkpoints are left byte for byte as they were."""
    out = tmp_path / "run"
    assert main(train_argv(out, "--set", "steps=2")) == 0
    corrupt_header(out / "checkpoints" / "step_000002" / "model.safetensors")
    before = files(out)
    one_line(fails(train_argv(out, "--set", "steps=4", "--resume"), capsys))
    assert files(out) == before


def test_a_tampered_state_gives_one_line_without_torch_advice(run_dir, tmp_path, capsys):  # noqa: F811
    """A state.pt that weights_only refuses: one line, never torch's advice to load it
    with weights_only=False."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    tamper_state(find_latest_checkpoint(copy / "checkpoints"), tmp_path / "ran")
    err = one_line(fails(sample_argv(copy, tmp_path / "grid.png"), capsys))
    assert "not a valid minidiff checkpoint" in err and "weights_only=False" not in err
    assert not (tmp_path / "ran").exists()


def test_a_full_disk_during_training_gives_one_line_naming_the_last_checkpoint(
    tmp_path, capsys, monkeypatch
):
    """A write of the step-4 checkpoint fails with ENOSPC: one line saying the disk is
    full and naming the step-2 checkpoint, which still loads."""
    real = checkpoint_module.atomic.write_bytes

    def full(path, data):
        if "step_000004" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint_module.atomic, "write_bytes", full)
    out = tmp_path / "run"
    err = one_line(fails(train_argv(out), capsys))
    assert "No space left" in err and "step_000002" in err
    monkeypatch.undo()
    assert main(sample_argv(out, tmp_path / "grid.png")) == 0


def test_sample_refuses_a_tensor_with_a_flipped_bit(run_dir, tmp_path, capsys):  # noqa: F811
    """A bit flipped inside the tensor data of ema.safetensors (size and header intact):
    `minidiff sample` exits 2 in one line naming the file, instead of sampling."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    ema = find_latest_checkpoint(copy / "checkpoints") / "ema.safetensors"
    data = bytearray(ema.read_bytes())
    data[-3] ^= 0x10
    ema.write_bytes(bytes(data))
    err = one_line(fails(sample_argv(copy, tmp_path / "grid.png"), capsys))
    assert "ema.safetensors" in err
    assert not (tmp_path / "grid.png").exists()


def test_resume_trims_a_torn_log_and_says_so_in_one_line(tmp_path, capsys):
    """A torn last line in metrics.jsonl (a power cut while appending): --resume keeps
    every complete record, drops the torn tail and says so in one line on stderr."""
    out = tmp_path / "run"
    assert main(train_argv(out)) == 0
    log = out / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    with open(log, "a", encoding="utf-8") as file:
        file.write('{"step": 6, "loss": 0.1')
    capsys.readouterr()
    assert main(train_argv(out, "--set", "steps=6", "--resume")) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.jsonl" in err, err
    kept = [json.loads(line) for line in log.read_text().splitlines()]
    assert kept[: len(records)] == records and [r["step"] for r in kept] == [2, 4, 6]
