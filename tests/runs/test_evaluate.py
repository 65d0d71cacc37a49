"""``minidiff evaluate`` and its pipeline on a tiny digits run: the JSON record, the
table, the reference cache, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from minidiff.cli import main
from minidiff.evaluation.inception_weights import InceptionWeightsError
from minidiff.runs.evaluate import EvaluateSettings, check_settings, parse_metrics
from tests.test_runs import TINY

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "run"
    train = ["train", "--config", "digits", *[arg for a in TINY for arg in ("--set", a)]]
    assert main([*train, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MINIDIFF_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def evaluate_args(run_dir, out, *extra):
    return ["evaluate", "--checkpoint", str(run_dir), "--out", str(out), "--device", "cpu",
            "--no-progress", *extra]  # fmt: skip


def fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minidiff evaluate: error:")
    return err


def test_evaluate_writes_every_metric_with_its_floor_and_n(run_dir, tmp_path, capsys):
    """All six metrics on 70 samples: a table on stdout, a JSON record with the settings,
    n on every metric and the train-vs-test floor beside the model's figure."""
    out = tmp_path / "metrics.json"
    args = evaluate_args(run_dir, out, "--metrics", "fid,is,kid,pr,bpd,nll", "--n", "70")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fid" in printed and "bits/dim (VLB)" in printed and "recall" in printed
    record = json.loads(out.read_text())
    assert record["n"] == 70 and record["settings"]["reference"] == "digits"
    assert record["settings"]["metrics"] == ["fid", "is", "kid", "pr", "bpd", "nll"]
    for name in ("fid", "is", "kid", "pr"):
        assert record["metrics"][name]["n"] == 70
    for name in ("fid", "is", "kid"):
        assert math.isfinite(record["metrics"][name]["value"])
        assert math.isfinite(record["metrics"][name]["floor"])
    assert record["metrics"]["fid"]["dim"] == 64
    assert 0 <= record["metrics"]["pr"]["precision"] <= 1
    for name in ("bpd", "nll"):
        assert record["metrics"][name]["value"] > 0 and record["metrics"][name]["n"] > 1
    assert "accuracy" in record["feature_space"]


def test_reference_statistics_are_cached(run_dir, tmp_path, capsys, tmp_path_factory):
    """The reference features are written once per setting (keyed by the space, n and the
    data's SHA-256) and reused: a second evaluation leaves the cache file untouched and
    gives the same figures; another n adds another file."""
    folder = tmp_path_factory.getbasetemp() / "cache" / "reference-statistics"
    assert main(evaluate_args(run_dir, tmp_path / "a.json", "--metrics", "kid", "--n", "20")) == 0
    before = {path: path.stat().st_mtime_ns for path in folder.glob("*.npz")}
    assert main(evaluate_args(run_dir, tmp_path / "b.json", "--metrics", "kid", "--n", "20")) == 0
    assert {path: path.stat().st_mtime_ns for path in folder.glob("*.npz")} == before
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["metrics"] == b["metrics"]
    assert main(evaluate_args(run_dir, tmp_path / "c.json", "--metrics", "kid", "--n", "21")) == 0
    assert len(list(folder.glob("*.npz"))) == len(before) + 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--metrics", "fid,sharpness"), "--metrics must be"),
        (("--metrics", "fid", "--n", "50"), "too small for FID in 64 features"),
        (("--reference", "fashion-mnist"), "does not match the model's data 'digits'"),
        (("--sampler", "euler-maruyama"), "sampler must be one of"),
        (("--reference", "imagenet"), "reference must be one of"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(run_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "metrics.json"
    assert message in fails(evaluate_args(run_dir, out, *extra), capsys)
    assert not out.exists()


def test_existing_out_is_never_overwritten(run_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    out.write_text("keep")
    assert "exists" in fails(evaluate_args(run_dir, out), capsys)
    assert out.read_text() == "keep"


def test_missing_inception_weights_are_refused_before_any_work(run_dir, monkeypatch):
    """A CIFAR-10 run with feature metrics and no weights file: InceptionWeightsError (a
    ValueError) naming the option."""
    from minidiff.runs import load_run

    monkeypatch.delenv("MINIDIFF_INCEPTION_WEIGHTS", raising=False)
    run = load_run(run_dir, device="cpu")
    cifar_run = dataclasses.replace(run, preset=dataclasses.replace(
        run.preset, data=dataclasses.replace(run.preset.data, dataset="cifar10")))
    settings = EvaluateSettings(checkpoint=str(run_dir), metrics=("fid",), n=5000)
    with pytest.raises(InceptionWeightsError, match="--inception-weights"):
        check_settings(settings, cifar_run)
    assert check_settings(dataclasses.replace(settings, metrics=("bpd",)), cifar_run) == "cifar10"


def test_parse_metrics():
    assert parse_metrics("fid, is") == ("fid", "is")
    with pytest.raises(ValueError, match="subset"):
        parse_metrics("")


def test_a_conditional_run_reports_the_accuracy_of_each_class(run_dir, tmp_path, capsys):
    """A digits-cond run is sampled 0..9 in turn at the preset's guidance; "accuracy" (added
    to the feature metrics) is the share the digits classifier assigns to the class asked
    for, per class and in all, recomputed here from the same samples; its floor is the
    classifier's accuracy on the real test digits. An unconditional run refuses it."""
    from minidiff.evaluation.judge import digits_classifier
    from minidiff.runs import load_run
    from minidiff.runs.evaluate import conditional_samples

    cond_dir = tmp_path / "cond"
    train = ["train", "--config", "digits-cond", *[arg for a in TINY for arg in ("--set", a)]]
    assert main([*train, "--out", str(cond_dir), "--device", "cpu", "--no-progress"]) == 0
    out = tmp_path / "metrics.json"
    assert main(evaluate_args(cond_dir, out, "--metrics", "kid", "--n", "20")) == 0
    assert "class accuracy (s = 2)" in capsys.readouterr().out
    accuracy = json.loads(out.read_text())["metrics"]["accuracy"]
    settings = EvaluateSettings(checkpoint=str(cond_dir), metrics=("kid",), n=20)
    samples, labels = conditional_samples(load_run(cond_dir, device="cpu"), settings)
    classifier = digits_classifier(0)
    predicted = classifier.predict_proba(samples).argmax(axis=1)
    assert labels.tolist() == [k % 10 for k in range(20)] and accuracy["guidance"] == 2.0
    assert accuracy["per_class"] == [float((predicted[labels == k] == k).mean())
                                     for k in range(10)]  # fmt: skip
    assert accuracy["value"] == float((predicted == labels).mean()) and accuracy["n"] == 20
    assert accuracy["floor"] == pytest.approx(classifier.test_accuracy, abs=1e-12)
    err = fails(evaluate_args(run_dir, tmp_path / "x.json", "--metrics", "accuracy"), capsys)
    assert "accuracy needs a conditional digits run" in err
