"""Grading: the tests of each exercise, visible and hidden, run against a student's package.

`grade` copies the student's ``minidiff/`` beside the instructor's ``tests/`` (every test,
the hidden ones included; against a student's own copy, only the visible ones) into a
temporary folder, runs the graded tests there in one pytest process, and reads pytest's
JUnit XML report. An exercise earns its points times the share of its tests that pass (a
parametrized test passes when all its cases pass).

`gradescope_results` writes the result in Gradescope's autograder format (the
``results.json`` of "Autograder Specifications": a top-level ``score``, and one entry per
exercise in ``tests`` with ``name``, ``score``, ``max_score``, ``status`` and ``output``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minidiff.course.manifest import EXERCISES, Exercise
from minidiff.course.markers import function_span

__all__ = [
    "ExerciseResult",
    "available_tests",
    "expected_failures",
    "failing_tests",
    "format_table",
    "grade",
    "gradescope_results",
    "run_pytest",
    "run_tests",
]


@dataclass(frozen=True)
class ExerciseResult:
    """The grade of one exercise.

    Attributes:
        name: the exercise.
        points: its maximum.
        score: points times the share of its tests that passed.
        passed: the number of its tests that passed.
        total: the number of its tests.
        failure: the first failing test and the last line of its error ("" if none).
    """

    name: str
    points: int
    score: float
    passed: int
    total: int
    failure: str


def expected_failures(removed: Sequence[Exercise]) -> set[str]:
    """The tests that fail when the solutions of ``removed`` are taken out: their graded
    tests and their dependent tests (`Exercise.dependent`)."""
    return {test for e in removed for test in (*e.tests, *e.dependent)}


def _node_of(case: ET.Element) -> str:
    path = case.get("classname", "").replace(".", "/") + ".py"
    return f"{path}::{case.get('name', '').split('[')[0]}"


def _one_line(case: ET.Element) -> str:
    for tag in ("failure", "error"):
        problem = case.find(tag)
        if problem is not None:
            message = problem.get("message") or (problem.text or tag)
            lines = [line.strip() for line in message.splitlines() if line.strip()]
            return lines[0][:200] if lines else tag
    return ""


def run_pytest(root: Path, args: Sequence[str], timeout: float | None = None) -> dict[str, str]:
    """Run pytest with ``args`` in ``root``, ``root`` first on the path, on one thread and in
    file order; returns every test that ran (node id without parameters) with its first
    failure line: "" when all its cases passed, "skipped" when skipped."""
    report = root / ".grade-report.xml"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
           "HYPOTHESIS_PROFILE": "grade"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-p", "no:xdist", f"--junitxml={report}", "-o", "junit_family=xunit1", *args]
    report.unlink(missing_ok=True)
    subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    seen: dict[str, str] = {}
    if report.is_file():
        for case in ET.parse(report).getroot().iter("testcase"):
            node, failure = _node_of(case), _one_line(case)
            if case.find("skipped") is not None:
                failure = failure or "skipped"
            seen[node] = seen.get(node) or failure
    return seen


def failing_tests(root: Path, args: Sequence[str], timeout: float | None = None) -> set[str]:
    """The tests (node ids without parameters) that fail or error when pytest runs ``args``
    in ``root`` (`run_pytest`); skipped tests do not count."""
    return {test for test, failure in run_pytest(root, args, timeout).items()
            if failure and failure != "skipped"}


def run_tests(root: Path, tests: Sequence[str], timeout: float | None = None) -> dict[str, str]:
    """Run ``tests`` (node ids) in ``root`` (`run_pytest`); returns each node id's first
    failure line, "" when all its cases passed. A test that did not run counts as failed."""
    seen = run_pytest(root, tests, timeout)
    return {test: seen.get(test, "did not run") for test in tests}


def available_tests(source_root: Path, tests: Sequence[str]) -> list[str]:
    """The node ids of ``tests`` whose test function is in ``source_root`` (a student's copy
    lacks the hidden ones)."""
    found = []
    for test in tests:
        file, name = test.split("::")
        path = source_root / file
        if path.is_file() and function_span(path.read_text(), name) is not None:
            found.append(test)
    return found


def _score(exercise: Exercise, outcome: dict[str, str]) -> ExerciseResult:
    tests = [test for test in exercise.tests if test in outcome]
    failed = [(test, outcome[test]) for test in tests if outcome[test]]
    passed = len(tests) - len(failed)
    failure = f"{failed[0][0].split('::')[-1]}: {failed[0][1]}" if failed else ""
    score = round(exercise.points * passed / len(tests), 2) if tests else 0.0
    return ExerciseResult(exercise.name, exercise.points, score, passed, len(tests), failure)


def grade(
    student: str | Path, source_root: str | Path, exercises: Sequence[Exercise] = EXERCISES,
    timeout: float | None = None,
) -> list[ExerciseResult]:
    """Grade the package in ``student`` with the tests of ``source_root``.

    Args:
        student: a folder holding the student's ``minidiff/`` package.
        source_root: the instructor's checkout, whose ``tests/`` hold every graded test.
        exercises: the exercises to grade.
        timeout: seconds for the whole test run, or None.

    Raises:
        ValueError: ``student`` has no ``minidiff/`` package, or ``source_root`` no
            ``tests/`` folder.
    """
    student, source_root = Path(student), Path(source_root)
    if not (student / "minidiff" / "__init__.py").is_file():
        raise ValueError(f"student must be a folder holding minidiff/, got {str(student)!r}")
    if not (source_root / "tests").is_dir():
        raise ValueError(f"source_root must hold tests/, got {str(source_root)!r}")
    with tempfile.TemporaryDirectory(prefix="minidiff-grade-") as work:
        root = Path(work)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
        shutil.copytree(student / "minidiff", root / "minidiff", ignore=ignore)
        shutil.copytree(source_root / "tests", root / "tests", ignore=ignore)
        shutil.copy2(source_root / "pyproject.toml", root / "pyproject.toml")
        tests = available_tests(root, list(dict.fromkeys(t for e in exercises for t in e.tests)))
        outcome = run_tests(root, tests, timeout)
    return [_score(e, outcome) for e in exercises]


def format_table(results: Sequence[ExerciseResult]) -> str:
    """The grade as a plain-text table: exercise, points, tests passed, the first failure."""
    rows = [("exercise", "points", "passed", "first failure")]
    rows += [(r.name, f"{r.score:g}/{r.points}", f"{r.passed}/{r.total}", r.failure)
             for r in results]
    total = sum(r.score for r in results)
    rows.append(("total", f"{total:g}/{sum(r.points for r in results)}", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  " + row[3] for row in rows
    ).rstrip()


def gradescope_results(results: Sequence[ExerciseResult]) -> dict:
    """The grade in Gradescope's ``results.json`` format."""
    return {
        "score": round(sum(r.score for r in results), 2),
        "visibility": "visible",
        "tests": [
            {
                "name": r.name,
                "score": r.score,
                "max_score": r.points,
                "status": "passed" if r.passed == r.total else "failed",
                "output": f"{r.passed} of {r.total} tests passed" + (
                    f"; {r.failure}" if r.failure else ""),
            }
            for r in results
        ],
    }
