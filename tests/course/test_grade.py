"""Grading by the tests: a removed exercise fails exactly its graded and dependent tests
(slow), the solution put back passes, and the JSON is Gradescope's."""

import shutil
from pathlib import Path

import pytest

from minidiff.course.grade import (
    ExerciseResult,
    expected_failures,
    format_table,
    grade,
    gradescope_results,
    run_tests,
)
from minidiff.course.manifest import EXERCISES, exercise
from minidiff.course.student import write_student_version

ROOT = Path(__file__).resolve().parents[2]


def test_a_removed_exercise_scores_zero_and_its_solution_put_back_full_marks(tmp_path):
    removed, kept = exercise("n_step_kernel"), exercise("adam")
    student = write_student_version(tmp_path / "hw", [removed], ROOT)
    results = {r.name: r for r in grade(student, ROOT, [removed, kept])}
    assert results["n_step_kernel"].score == 0 and results["n_step_kernel"].passed == 0
    assert results["n_step_kernel"].total == len(removed.tests)  # the hidden tests ran too
    assert "NotImplementedError: n_step_kernel:" in results["n_step_kernel"].failure
    assert results["adam"].score == kept.points and results["adam"].failure == ""
    shutil.copy2(ROOT / removed.file, student / removed.file)
    assert [r.score for r in grade(student, ROOT, [removed, kept])] == [2, 3]


def test_expected_failures_are_the_graded_and_dependent_tests():
    for ex in EXERCISES:
        assert expected_failures([ex]) == set(ex.tests) | set(ex.dependent)
    both = [exercise("q_sample"), exercise("adam")]
    assert expected_failures(both) == expected_failures(both[:1]) | expected_failures(both[1:])
    # the training step calls q_sample, so its graded tests depend on it
    assert set(exercise("training_step").tests) <= set(exercise("q_sample").dependent)


def test_table_and_gradescope_json():
    results = [ExerciseResult("a", 2, 2.0, 2, 2, ""), ExerciseResult("b", 3, 1.5, 1, 2, "t: E")]
    table = format_table(results).splitlines()
    assert table[0].split()[:3] == ["exercise", "points", "passed"]
    assert table[2].split() == ["b", "1.5/3", "1/2", "t:", "E"]
    assert table[-1].split() == ["total", "3.5/5"]
    json = gradescope_results(results)
    assert json["score"] == 3.5
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in json["tests"]] == [
        ("a", 2.0, 2, "passed"), ("b", 1.5, 3, "failed")]


def test_grade_refuses_a_folder_without_the_package(tmp_path):
    with pytest.raises(ValueError, match="student must be a folder holding minidiff/"):
        grade(tmp_path, ROOT)
    with pytest.raises(ValueError, match="source_root must hold tests/"):
        grade(ROOT, tmp_path)


@pytest.mark.slow
def test_the_solution_passes_every_graded_test():
    results = grade(ROOT, ROOT)
    assert [r.failure for r in results if r.failure] == []
    assert sum(r.score for r in results) == sum(e.points for e in EXERCISES)


@pytest.mark.slow
@pytest.mark.parametrize("removed", EXERCISES, ids=lambda e: e.name)
def test_removing_one_exercise_fails_exactly_its_graded_and_dependent_tests(removed, tmp_path):
    student = write_student_version(tmp_path / "hw", [removed], ROOT, hidden_tests=True)
    tests = list(dict.fromkeys(t for e in EXERCISES for t in (*e.tests, *e.dependent)))
    failing = {test for test, failure in run_tests(student, tests).items() if failure}
    assert failing == expected_failures([removed])
