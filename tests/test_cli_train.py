"""Tests of ``minidiff train`` and ``minidiff sample``, called in-process through
``main([...])`` with tiny presets (a one-level U-Net on 8x8 digits, a few steps)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from minidiff.cli import main
from minidiff.configs import preset
from minidiff.training import TrainConfig, Trainer
from tests.data.fake_cifar import make_batches, write_folder
from tests.test_runs import PNG_MAGIC, TINY

torch.set_num_threads(1)

TRAIN = ["train", "--config", "digits", *[arg for a in TINY for arg in ("--set", a)]]


def files(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def fails(argv, capsys) -> str:
    """Run ``main(argv)``, check it exits with status 2, return the stderr text."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A folder trained by `minidiff train` with the tiny settings."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main([*TRAIN, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    return out


def test_train_then_sample_writes_checkpoints_grids_and_a_png(run_dir, tmp_path, capsys):
    """`minidiff train` writes run.json, metrics.jsonl, checkpoints and a sample grid
    every sample_every steps; `minidiff sample` draws a PNG grid from the run folder with
    either sampler and prints where it went."""
    assert {"run.json", "metrics.jsonl", "checkpoints", "samples"} <= {
        f.name for f in run_dir.iterdir()
    }
    assert sorted(f.name for f in (run_dir / "samples").iterdir()) == [
        "step_000002.png", "step_000004.png",
    ]  # fmt: skip
    for sampler in ("ddim", "ancestral"):
        out = tmp_path / sampler / "grid.png"
        argv = ["sample", "--checkpoint", str(run_dir), "--out", str(out), "--n", "4",
                "--sampler", sampler, "--device", "cpu", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        assert out.read_bytes()[:8] == PNG_MAGIC
        assert str(out) in capsys.readouterr().out


def test_train_prints_a_summary_naming_the_checkpoint_and_the_final_loss(tmp_path, capsys):
    """At the end of a run the command prints the final loss and where the checkpoint and
    the sample grids are."""
    out = tmp_path / "run"
    argv = [*TRAIN, "--set", "steps=2", "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "final loss" in printed and str(out / "checkpoints" / "step_000002") in printed
    assert str(out / "samples") in printed


def test_dry_run_prints_size_cost_and_time_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """`--dry-run` prints the settings, the parameter count, the FLOPs per step and in
    total, the epochs and a time estimate saying how it was measured; no file or folder
    is created (not even --out)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main([*TRAIN, "--dry-run", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for text in ("parameters", "FLOPs per step", "FLOPs in total", "epochs", "time estimate",
                 "timed training steps at batch 8", "base_channels"):  # fmt: skip
        assert text in printed
    assert list(tmp_path.iterdir()) == []


def test_a_learned_variance_trains_and_samples(tmp_path, capsys):
    """`--set diffusion.variance=learned_range --set diffusion.loss=hybrid` trains (the
    network's output channels doubled) and the run samples."""
    out = tmp_path / "run"
    argv = [
        *TRAIN,
        "--set",
        "diffusion.variance=learned_range",
        "--set",
        "diffusion.loss=hybrid",
        "--set",
        "training.steps=2",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0
    grid = tmp_path / "grid.png"
    argv = ["sample", "--checkpoint", str(out), "--out", str(grid), "--n", "2", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0 and grid.read_bytes()[:8] == PNG_MAGIC


def test_resume_continues_from_the_saved_step(run_dir, tmp_path, capsys):
    """`--resume` with more steps continues the run from its latest checkpoint (and a
    resumed run to the same step as the first leaves it there)."""
    argv = [*TRAIN, "--set", "steps=6", "--out", str(run_dir), "--resume", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "for 6 steps" in capsys.readouterr().out
    assert (run_dir / "checkpoints" / "step_000006").is_dir()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--config", "imagenet"], "unknown preset 'imagenet'"),
     (["--set", "learning_rate=1"], "unknown field 'learning_rate'"),
     (["--set", "lr=fast"], "bad value 'fast' for field 'lr'"),
     (["--set", "T=0"], "T must be an integer >= 1"),
     (["--set", "base_channels=8"], "GroupNorm"),
     (["--set", "variance=learned_range"], "'learned_range' needs loss 'vlb' or 'hybrid'"),
     (["--set", "model.hidden=8"], "unknown field 'model.hidden'"),
     (["--device", "tpu"], "device must be")],
)  # fmt: skip
def test_bad_train_settings_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, extra,
                                                                   message):  # fmt: skip
    """An unknown preset or field, a value that does not parse or that the preset or the
    network refuses, or an unknown device: exit status 2, one line on stderr with the
    error, and no output folder."""
    out = tmp_path / "run"
    err = fails([*TRAIN, *extra, "--out", str(out)], capsys)
    assert message in err and err.count("\n") == 1 and err.startswith("minidiff train: error:")
    assert not out.exists()


def test_a_folder_holding_another_run_is_refused_and_left_alone(run_dir, capsys):
    """Training into a run folder without --resume, or resuming it with another preset,
    exits 2 with a message that says what is there and how to resume; no file changes."""
    before = files(run_dir)
    err = fails([*TRAIN, "--out", str(run_dir), "--device", "cpu"], capsys)
    assert "already holds a run" in err and "--resume" in err
    err = fails([*TRAIN, "--set", "lr=0.5", "--out", str(run_dir), "--resume"], capsys)
    assert "another preset" in err
    assert f"training.lr: saved {preset('digits').training.lr!r}, given 0.5" in err
    assert files(run_dir) == before


def test_missing_or_foreign_checkpoints_are_refused(tmp_path, capsys):
    """`minidiff sample` from a path that does not exist, from a folder without a
    checkpoint, or from a checkpoint that stores no preset (a bare Trainer's) exits 2
    naming the path; no grid is written."""
    out = tmp_path / "grid.png"
    err = fails(["sample", "--checkpoint", str(tmp_path / "none"), "--out", str(out)], capsys)
    assert "does not exist" in err and str(tmp_path / "none") in err
    (tmp_path / "empty").mkdir()
    err = fails(["sample", "--checkpoint", str(tmp_path / "empty"), "--out", str(out)], capsys)
    assert "holds no minidiff checkpoint" in err
    bare = Trainer(torch.nn.Conv2d(1, 1, 1), None, torch.zeros(8, 1, 2, 2),
                   TrainConfig(batch_size=8, steps=0), out_dir=tmp_path / "bare")  # fmt: skip
    bare.save()
    err = fails(["sample", "--checkpoint", str(tmp_path / "bare"), "--out", str(out)], capsys)
    assert "stores no preset" in err and err.count("\n") == 1
    assert not out.exists()
    err = fails([*TRAIN, "--out", str(tmp_path / "bare"), "--resume"], capsys)
    assert "stores no preset" in err


def test_sample_never_overwrites_an_existing_file(run_dir, tmp_path, capsys):
    """`minidiff sample --out FILE` with FILE present exits 2 and leaves it as it was; bad
    sampler settings exit 2 before anything is written."""
    out = tmp_path / "grid.png"
    out.write_bytes(b"keep me")
    err = fails(["sample", "--checkpoint", str(run_dir), "--out", str(out)], capsys)
    assert "exists" in err and out.read_bytes() == b"keep me"
    other = tmp_path / "other.png"
    err = fails(["sample", "--checkpoint", str(run_dir), "--out", str(other), "--steps", "99",
                 "--device", "cpu"], capsys)  # fmt: skip
    assert "steps must be an integer in 1..T = 20" in err and not other.exists()


def test_train_help_runs_as_a_module():
    """`python -m minidiff train --help` prints the usage with every option and exits 0."""
    completed = subprocess.run([sys.executable, "-m", "minidiff", "train", "--help"],
                               capture_output=True, text=True, check=True)  # fmt: skip
    for option in ("--config", "--set", "--out", "--resume", "--dry-run", "--device",
                   "--data-root", "--download"):  # fmt: skip
        assert option in completed.stdout


def test_cuda_device_without_cuda_exits_2(tmp_path, capsys, monkeypatch):
    """--device cuda on a machine without CUDA (CUDA hidden here if the machine has it):
    exit 2, a message, nothing written."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = fails([*TRAIN, "--device", "cuda", "--out", str(tmp_path / "run")], capsys)
    assert "not available" in err and not (tmp_path / "run").exists()


def test_cifar10_trains_from_a_data_root_and_missing_data_exits_2(tmp_path, capsys):
    """`--config cifar10 --data-root DIR` trains from the CIFAR-10 folder in DIR (here a
    generated one in the real format, with a tiny U-Net); without the data the command
    exits 2 saying where to put it, and writes nothing."""
    small = ["base_channels=32", "channel_mults=1", "num_res_blocks=1", "attention_resolutions=",
             "T=20", "batch_size=4", "steps=2", "dropout=0", "checkpoint_every=0"]  # fmt: skip
    argv = ["train", "--config", "cifar10", *[arg for a in small for arg in ("--set", a)]]
    err = fails([*argv, "--out", str(tmp_path / "run"), "--data-root", str(tmp_path / "no")],
                capsys)  # fmt: skip
    assert "CIFAR-10 not found" in err and "download" in err
    assert sorted(tmp_path.iterdir()) == []
    write_folder(tmp_path / "data", make_batches())
    out = tmp_path / "run"
    argv += ["--out", str(out), "--data-root", str(tmp_path / "data"), "--device", "cpu"]
    assert main([*argv, "--no-progress"]) == 0
    assert (out / "checkpoints" / "step_000002").is_dir()


def test_train_builds_the_network_and_the_schedule_once(tmp_path, monkeypatch):
    """One `minidiff train` builds its U-Net and its noise schedule once each: the checks
    before anything is written, the run and its sample grids share them."""
    import minidiff.kinds

    counts = {"network": 0, "schedule": 0}

    def counting(name, build):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return build(*args, **kwargs)

        return wrapper

    unet = minidiff.kinds.UNet
    monkeypatch.setattr(unet, "__init__", counting("network", unet.__init__))
    schedule = minidiff.kinds.make_schedule
    monkeypatch.setattr(minidiff.kinds, "make_schedule", counting("schedule", schedule))
    argv = [*TRAIN, "--set", "steps=2", "--out", str(tmp_path / "run"), "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert counts == {"network": 1, "schedule": 1}


@pytest.fixture(scope="module")
def cond_run_dir(tmp_path_factory):
    """A folder trained by `minidiff train --config digits-cond` with the tiny settings."""
    out = tmp_path_factory.mktemp("cli-cond") / "run"
    argv = ["train", "--config", "digits-cond", *[a for s in TINY for a in ("--set", s)],
            "--out", str(out), "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_sample_class_all_writes_a_grid_with_one_row_per_class(cond_run_dir, tmp_path, capsys):
    """`--class all --n 20`: two samples of each of the 10 classes, one class per row (a
    grid 10 images high, 2 wide, of 8x8 images with 2 pixels of padding); `--class 7
    --guidance 3` writes a grid too and says which class and scale."""
    from PIL import Image

    out = tmp_path / "all.png"
    argv = ["sample", "--checkpoint", str(cond_run_dir), "--out", str(out), "--class", "all",
            "--n", "20", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert Image.open(out).size == (2 * 10 + 2, 10 * 10 + 2)  # (width, height)
    assert "20 samples" in capsys.readouterr().out
    seven = tmp_path / "seven.png"
    argv = ["sample", "--checkpoint", str(cond_run_dir), "--out", str(seven), "--class", "7",
            "--guidance", "3", "--n", "4", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert seven.read_bytes()[:8] == PNG_MAGIC
    assert "class 7, guidance 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("run", "extra", "message"),
    [("plain", ["--class", "7"], "is unconditional"),
     ("plain", ["--guidance", "2"], "guidance applies to class-conditional sampling only"),
     ("cond", ["--class", "10"], "class must be 'all' or an integer in 0..9"),
     ("cond", ["--class", "seven"], "--class must be 'all' or an integer class"),
     ("cond", ["--class", "7", "--guidance", "-1"], "expected a finite number >= 0.0"),
     ("cond", ["--class", "7", "--guidance", "nan"], "expected a finite number >= 0.0")],
)  # fmt: skip
def test_sample_class_errors_exit_2(run_dir, cond_run_dir, tmp_path, capsys, run, extra, message):  # noqa: F811, E501
    """--class on an unconditional run, a class out of range or not a number, and a
    negative or NaN --guidance: exit 2, the reason on stderr (one line), no file."""
    out = tmp_path / "grid.png"
    folder = run_dir if run == "plain" else cond_run_dir
    err = fails(["sample", "--checkpoint", str(folder), "--out", str(out), *extra, "--n", "2",
                 "--device", "cpu", "--no-progress"], capsys)  # fmt: skip
    assert message in err and not out.exists() and not list(tmp_path.iterdir())
    if "--guidance" not in extra or "2" in extra:  # ours, not argparse's usage + error
        assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def caption_run_dir(tmp_path_factory):
    """A folder trained by `minidiff train --config digits-caption` with the tiny settings."""
    out = tmp_path_factory.mktemp("cli-caption") / "run"
    argv = ["train", "--config", "digits-caption", "--set", "text_layers=1",
            *[a for s in TINY for a in ("--set", s)], "--out", str(out), "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_sample_prompt_round_trips_through_the_checkpoint(caption_run_dir, tmp_path, capsys):
    """The checkpoint alone reads the prompt (its preset holds the vocabulary): `--prompt
    --guidance 3 --n 4` writes a PNG and says which prompt and scale, with nothing on
    stderr; a word outside the vocabulary is read as the unknown token, and one warning
    line names it."""
    from PIL import Image

    out = tmp_path / "seven.png"
    argv = ["sample", "--checkpoint", str(caption_run_dir), "--out", str(out), "--prompt",
            "a thick seven", "--guidance", "3", "--n", "4", "--nrow", "4", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "prompt 'a thick seven', guidance 3" in captured.out and captured.err == ""
    assert Image.open(out).size == (4 * 10 + 2, 10 + 2)
    argv[4], argv[6] = str(tmp_path / "purple.png"), "a purple seven"
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "purple" in err and "unknown token" in err


@pytest.mark.parametrize(
    ("run", "extra", "message"),
    [("caption", ["--class", "7"], "is conditioned on captions: give a prompt"),
     ("cond", ["--prompt", "a seven"], "is conditioned on classes: give a class"),
     ("plain", ["--prompt", "a seven"], "is unconditional: train a caption preset"),
     ("caption", ["--class", "7", "--prompt", "a seven"], "give --class or --prompt, not both"),
     ("caption", ["--prompt", "seven " * 12], "reads at most 11")],
)  # fmt: skip
def test_sample_prompt_errors_exit_2(run_dir, cond_run_dir, caption_run_dir, tmp_path, capsys,
                                     run, extra, message):  # noqa: F811  # fmt: skip
    """A class for a caption run, a prompt for a class or unconditional run, both at
    once, a prompt longer than the model reads: exit 2, one line on stderr, no file."""
    folder = {"plain": run_dir, "cond": cond_run_dir, "caption": caption_run_dir}[run]
    out = tmp_path / "grid.png"
    err = fails(["sample", "--checkpoint", str(folder), "--out", str(out), *extra, "--n", "2",
                 "--device", "cpu", "--no-progress"], capsys)  # fmt: skip
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()
