"""Tests of `minidiff.training.metrics`: interval means, and the log trimmed to a step."""

from __future__ import annotations

import json

import pytest

from minidiff.atomic import RepairWarning
from minidiff.training.metrics import (
    METRIC_KEYS,
    MetricsInterval,
    append_record,
    read_records,
    trim_log,
)


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


def test_trim_keeps_the_lines_up_to_the_step(tmp_path):
    """Lines after the checkpoint's step go; a missing file stays missing."""
    path = tmp_path / "run" / "metrics.jsonl"
    for step in (2, 4, 6):
        append_record(path, {"step": step, "loss": float(step)})
    trim_log(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]
    trim_log(tmp_path / "none.jsonl", 4)
    assert not (tmp_path / "none.jsonl").exists()


@pytest.mark.parametrize("step", [0, 1])
def test_trim_to_before_the_first_line_empties_the_file(tmp_path, step):
    """A checkpoint before every logged step leaves no line."""
    path = tmp_path / "metrics.jsonl"
    append_record(path, {"step": 2})
    trim_log(path, step)
    assert path.read_text() == ""


@pytest.mark.parametrize("tail", [b'{"step": 6, "lo', b"\x00" * 9, b'{"step": "6"}'])
def test_trim_drops_a_torn_tail_keeps_the_complete_records_and_warns(tmp_path, tail):
    """A last line cut short, NUL bytes, or a record without an integer step is torn:
    `read_records` counts its bytes, `trim_log` keeps the complete records up to the step
    and reports the repair with a RepairWarning."""
    path = tmp_path / "metrics.jsonl"
    for step in (2, 4):
        append_record(path, {"step": step})
    with open(path, "ab") as file:
        file.write(tail)
    assert read_records(path) == ([{"step": 2}, {"step": 4}], len(tail))
    with pytest.warns(RepairWarning, match="torn"):
        trim_log(path, 4)
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert kept == [{"step": 2}, {"step": 4}]
