"""The student version: chosen solutions replaced, hidden tests left out, notebooks cleared
as nbgrader clears them, and the package still imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minidiff.course.manifest import EXERCISES, exercise
from minidiff.course.markers import BEGIN, function_span
from minidiff.course.student import strip_tests, student_notebook, write_student_version

ROOT = Path(__file__).resolve().parents[2]
CHOSEN = (exercise("q_sample"), exercise("guided_output"))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return write_student_version(tmp_path_factory.mktemp("course") / "hw", CHOSEN, ROOT)


def test_chosen_regions_raise_and_the_others_keep_their_solution(student):
    for ex in EXERCISES:
        source = (student / ex.file).read_text()
        assert BEGIN not in source
        raising = f"raise NotImplementedError({json.dumps(ex.message)})" in source
        assert raising == (ex in CHOSEN), ex.name


def test_the_student_package_imports_and_raises_the_exercise_message(student):
    code = ("import numpy as np, minidiff.applications, minidiff.nn, minidiff.training\n"
            "from minidiff.process import linear_schedule, q_sample\n"
            "try:\n    q_sample(linear_schedule(10), np.zeros((1, 2)), 3, np.zeros((1, 2)))\n"
            "except NotImplementedError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=student, capture_output=True,
                         text=True, env={"PYTHONPATH": str(student), "OMP_NUM_THREADS": "1"},
                         check=True).stdout
    assert out.strip() == exercise("q_sample").message


def test_hidden_tests_of_the_chosen_exercises_are_left_out(student):
    for ex in EXERCISES:
        for test in ex.tests:
            file, name = test.split("::")
            present = function_span((student / file).read_text(), name) is not None
            assert present == (test in ex.visible or ex not in CHOSEN), test


def test_the_student_version_names_no_removed_hidden_test(student):
    """The hidden tests of the chosen exercises are in no file of the student version (the
    manifest's tables included); the course's own tests, which read the markers, are left
    out too."""
    hidden = [test for ex in CHOSEN for test in ex.hidden]
    for path in student.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".ipynb", ".toml", ".txt"):
            text, where = path.read_text(), path.relative_to(student).as_posix()
            for test in hidden:
                file, name = test.split("::")
                # by node id anywhere; by name in its own module (others may reuse it)
                assert test not in text and not (where == file and name in text), (where, test)
    assert not (student / "tests" / "course").exists()
    code = ("from minidiff.course.manifest import exercise\n"
            "print(exercise('q_sample').hidden, exercise('adam').hidden == ())")
    out = subprocess.run([sys.executable, "-c", code], cwd=student, capture_output=True,
                         text=True, env={"PYTHONPATH": str(student)}, check=True).stdout
    assert out.split() == ["()", "False"]


def test_notebooks_are_cleared_and_instructions_list_the_exercises(student):
    for path in (student / "tutorials").glob("*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            assert BEGIN not in cell["source"]
            assert not cell.get("outputs")
    text = (student / "INSTRUCTIONS.md").read_text()
    for ex in CHOSEN:
        assert ex.name in text and ex.equation in text and ex.visible[0] in text
    assert "adam" not in text


def test_strip_tests_removes_a_decorated_function_only():
    source = ("import x\n\n\n@given(x)\n@settings()\ndef test_a(v):\n    pass\n\n\n"
              "def test_b():\n    pass\n")
    assert strip_tests(source, ["test_a"]) == "import x\n\n\n\n\ndef test_b():\n    pass\n"


def test_student_notebook_keeps_metadata_and_drops_outputs():
    cell = {"cell_type": "code", "source": "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION",
            "metadata": {"nbgrader": {"solution": True}}, "outputs": [{"a": 1}],
            "execution_count": 3}
    out = student_notebook({"cells": [cell], "metadata": {}})["cells"][0]
    assert out["source"] == "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()"
    assert out["metadata"] == cell["metadata"] and out["outputs"] == []
    assert cell["outputs"] == [{"a": 1}]  # the input is not modified


def test_refuses_a_non_empty_out_or_a_source_that_is_not_a_checkout(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ValueError, match="out must be a new or empty folder"):
        write_student_version(tmp_path / "full", CHOSEN, ROOT)
    with pytest.raises(ValueError, match="source_root must be a checkout"):
        write_student_version(tmp_path / "new", CHOSEN, tmp_path)
    assert not (tmp_path / "new").exists()
