"""Tests of the ``minidiff`` command line, called in-process through ``main([...])`` with
tiny settings (a few training steps, a few samples)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minidiff.cli import main
from minidiff.runs import DEMO_DATASETS, TOY_SAMPLERS
from minidiff.toy.datasets import DATASETS

TINY = ["--steps", "20", "--n-samples", "40", "--no-progress"]
DIGITS_TINY = ["--digits-steps", "4", "--digits-samples", "16", "--threads", "1"]
METRIC_KEYS = {"sliced_wasserstein", "mmd", "energy_distance"}


def read_metrics(path) -> dict:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


@pytest.mark.parametrize("sampler", TOY_SAMPLERS)
def test_toy_writes_a_figure_and_metrics(tmp_path, sampler):
    """`minidiff toy` exits 0 and writes samples.png (a PNG) and metrics.json with the run's
    settings, its timings and the three distances for the samples, the data-vs-data floor
    and the Gaussian baseline; no temporary file is left behind."""
    out = tmp_path / "run"
    argv = [
        "toy",
        "--dataset",
        "moons",
        "--out",
        str(out),
        "--T",
        "30",
        "--sampler",
        sampler,
        *TINY,
    ]
    assert main(argv + ["--ddim-steps", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "samples.png"]
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = read_metrics(out / "metrics.json")
    assert (
        metrics["dataset"] == "moons" and metrics["steps"] == 20 and metrics["sampler"] == sampler
    )
    assert metrics["train_seconds"] > 0 and metrics["n_samples"] == 40
    assert metrics["metric_repeats"] >= 1 and metrics["T"] == 30
    for key in ("samples_vs_held_out", "floor_data_vs_held_out", "baseline_gaussian_vs_held_out"):
        assert set(metrics[key]) == METRIC_KEYS
    floor = metrics["floor_data_vs_held_out"]["sliced_wasserstein"]
    assert metrics["sliced_wasserstein_over_floor"] == pytest.approx(
        metrics["samples_vs_held_out"]["sliced_wasserstein"] / floor, rel=1e-12
    )


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """One tiny `minidiff demo --quick` run shared by the demo tests."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", "--out", str(out), "--quick", *TINY, *DIGITS_TINY]) == 0
    return out


def test_demo_trains_samples_and_scores_the_digits_model(demo_out):
    """The digits part of the demo writes its run (checkpoint, metrics.jsonl, the grids
    drawn during training), the sample grid, the loss plot and metrics.json holding the
    classifier's scores of the samples, and the report shows them; a second demo into
    the same folder is refused (exit 2) and leaves it as it was."""
    digits = demo_out / "digits"
    metrics = read_metrics(digits / "metrics.json")
    assert metrics["steps"] == 4 and metrics["quality"]["n_samples"] == 16
    assert 0.0 <= metrics["quality"]["confident_share"] <= 1.0
    assert sum(metrics["quality"]["class_counts"]) == 16
    assert metrics["grid_steps"] == [1, 2, 3, 4]
    for name in ("samples.png", "loss.png", "run/metrics.jsonl", "run/run.json"):
        assert (digits / name).is_file()
    assert (digits / "run" / "checkpoints" / "latest.json").is_file()
    report = (demo_out / "report.md").read_text(encoding="utf-8")
    assert "## digits" in report and "confidence >= 0.9" in report
    before = sorted(str(p) for p in demo_out.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(demo_out), *TINY, *DIGITS_TINY])
    assert exit_info.value.code == 2
    assert sorted(str(p) for p in demo_out.rglob("*")) == before


def test_demo_runs_two_datasets_and_writes_a_report(demo_out):
    """`minidiff demo --quick` (with tiny overrides) writes <dataset>/samples.png and
    metrics.json for each demo dataset and a report.md with a table row for each."""
    report = (demo_out / "report.md").read_text(encoding="utf-8")
    for name in DEMO_DATASETS:
        assert (demo_out / name / "samples.png").is_file()
        assert read_metrics(demo_out / name / "metrics.json")["steps"] == 20
        assert f"| {name} |" in report and f"({name}/samples.png)" in report


def test_toy_is_reproducible_given_the_seed(tmp_path, demo_out):
    """A toy run with the demo's settings and seed gives the same loss and distances as
    the demo's run of that dataset (only the timings differ)."""
    name = DEMO_DATASETS[0]
    main(["toy", "--dataset", name, "--out", str(tmp_path / "again"), *TINY])
    again = read_metrics(tmp_path / "again" / "metrics.json")
    first = read_metrics(demo_out / name / "metrics.json")
    for key in ("samples_vs_held_out", "floor_data_vs_held_out", "final_loss"):
        assert again[key] == first[key]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["toy", "--dataset", "nope"], "invalid choice"),
        (["toy", "--dataset", "moons", "--sampler", "euler"], "invalid choice"),
        (["toy", "--dataset", "moons", "--steps", "0"], "expected an integer >= 1"),
        (["toy", "--dataset", "moons", "--T", "10"], "expected an integer >= 21"),
        (
            ["toy", "--dataset", "moons", "--sampler", "ddim", "--T", "30", "--ddim-steps", "31"],
            "--ddim-steps",
        ),
        (["toy", "--dataset", "moons", "--bogus"], "unrecognized arguments"),
        (["fit"], "invalid choice"),
        (["demo", "--steps", "-3"], "expected an integer >= 1"),
        (["demo", "--n-samples", "many"], "expected an integer >= 2"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    """Unknown datasets, samplers, subcommands and options, and out-of-range numbers exit
    with status 2, explain the error on stderr, and create no output directory."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--out", str(out)])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_dataset_message_lists_every_choice(tmp_path, capsys):
    """The error for an unknown dataset names all the datasets one can choose from."""
    with pytest.raises(SystemExit):
        main(["toy", "--dataset", "spiral", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert all(name in err for name in DATASETS)


def test_out_that_is_a_file_is_rejected(tmp_path):
    """--out pointing at an existing file exits 2 and leaves the file as it was."""
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as raised:
        main(["toy", "--dataset", "moons", "--out", str(target)])
    assert raised.value.code == 2
    assert target.read_text() == "keep me"


def test_version_flag_and_module_entry_point(capsys):
    """`--version` prints the version and exits 0; `python -m minidiff --version` runs the
    same command."""
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("minidiff ")
    completed = subprocess.run(
        [sys.executable, "-m", "minidiff", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout == printed


def test_missing_subcommand_exits_2(capsys):
    """Calling `minidiff` with no subcommand exits 2 and names the choices."""
    with pytest.raises(SystemExit) as raised:
        main([])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "toy" in err and "demo" in err
