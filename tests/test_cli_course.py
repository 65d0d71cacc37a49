"""``minidiff course``: student versions and grades from the command line; bad input exits
with status 2, one line on stderr and nothing written."""

import json
from pathlib import Path

import pytest

from minidiff.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_student_then_grade_writes_the_folder_and_gradescope_json(tmp_path, capsys):
    """Graded against the student's own copy, only the visible test counts."""
    out = tmp_path / "hw"
    assert main(["course", "student", "--out", str(out), "--exercises", "stationary_law",
                 "--source", str(ROOT)]) == 0
    assert "1 exercises, 3 points" in capsys.readouterr().out
    results = tmp_path / "results.json"
    assert main(["course", "grade", "--student", str(out), "--source", str(out),
                 "--exercises", "stationary_law", "--json", str(results)]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:3] == ["stationary_law", "0/3", "0/1"]
    graded = json.loads(results.read_text())
    assert graded["score"] == 0 and graded["tests"][0]["max_score"] == 3


@pytest.mark.parametrize("argv, message", [
    (["student", "--exercises", "nope"], "unknown exercise 'nope'"),
    (["student", "--layer", "4"], "layer must be one of"),
    (["grade", "--student", "{tmp}", "--exercises", "adam"], "student must be a folder"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "hw"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "student":
        argv += ["--out", str(out), "--source", str(ROOT)]
    with pytest.raises(SystemExit) as exit_info:
        main(["course", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_exercises_and_layer_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["course", "student", "--out", str(tmp_path / "hw"), "--exercises", "adam",
              "--layer", "2"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
