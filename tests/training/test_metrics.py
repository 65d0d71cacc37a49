"""Tests of `minidiff.training.metrics`: interval means, and the file cut back to a step."""

from __future__ import annotations

import json

import pytest

from minidiff.training.metrics import METRIC_KEYS, MetricsInterval, append_record, truncate_metrics


def test_a_record_holds_the_means_of_the_good_steps_and_starts_a_new_interval():
    """loss and grad_norm are means over the good steps (None if none), images count every
    step; after a record the sums start again."""
    interval = MetricsInterval()
    interval.add(4, 1.0, 3.0)
    interval.add(4)  # a skipped step
    interval.add(4, 2.0, 5.0)
    record = interval.record(step=3, lr=0.1, skipped=1)
    assert tuple(record) == METRIC_KEYS
    assert (record["loss"], record["grad_norm"], record["skipped"]) == (1.5, 4.0, 1)
    assert record["images_per_s"] > 0
    assert interval.record(step=4, lr=0.1, skipped=1)["loss"] is None


def test_truncate_keeps_the_lines_up_to_the_step(tmp_path):
    """Lines after the checkpoint's step go; a missing file stays missing."""
    path = tmp_path / "run" / "metrics.jsonl"
    for step in (2, 4, 6):
        append_record(path, {"step": step, "loss": float(step)})
    truncate_metrics(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]
    truncate_metrics(tmp_path / "none.jsonl", 4)
    assert not (tmp_path / "none.jsonl").exists()


@pytest.mark.parametrize("step", [0, 1])
def test_truncate_to_before_the_first_line_empties_the_file(tmp_path, step):
    """A checkpoint before every logged step leaves no line."""
    path = tmp_path / "metrics.jsonl"
    append_record(path, {"step": 2})
    truncate_metrics(path, step)
    assert path.read_text() == ""
