"""A student version fails exactly the graded and dependent tests of the exercises it
removes, every other test passing, and it builds and installs as a package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minidiff.course.grade import available_tests, expected_failures, failing_tests
from minidiff.course.manifest import EXERCISES, exercises_of_layer
from minidiff.course.student import write_student_version

ROOT = Path(__file__).resolve().parents[2]


def present(student: Path, tests: set[str]) -> set[str]:
    """The tests of ``tests`` that the student version holds (it lacks the hidden ones)."""
    return set(available_tests(student, sorted(tests)))


def test_removing_layer_0_fails_exactly_its_graded_and_dependent_tests(tmp_path):
    removed = exercises_of_layer(0)
    student = write_student_version(tmp_path / "hw", removed, ROOT)
    expected = expected_failures(removed)
    modules = sorted({"tests/markov"} | {test.split("::")[0] for test in expected})
    failing = failing_tests(student, modules)
    assert failing == present(student, expected)
    assert present(student, {t for e in removed for t in e.hidden}) == set()


def test_the_student_version_builds_a_wheel_that_installs_and_imports(tmp_path):
    removed = exercises_of_layer(0)
    student = write_student_version(tmp_path / "hw", removed, ROOT)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(student)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("minidiff-*.whl")
    assert "minidiff/course/hidden_tests.py" in zipfile.ZipFile(wheel).namelist()
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    code = ("import numpy as np, minidiff.markov as m\n"
            "print(m.__file__)\n"
            "try:\n    m.n_step_kernel(np.eye(2), 2)\nexcept NotImplementedError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"})
    where, message = out.stdout.splitlines()
    assert Path(where).is_relative_to(tmp_path / "site")
    assert message == removed[0].message


@pytest.mark.slow
def test_a_student_version_without_any_solution_fails_exactly_the_expected_tests(tmp_path):
    """The whole default suite of the student version, on one thread and in file order:
    the failing tests are the graded and dependent tests of every exercise (those it
    holds: the hidden ones are left out), nothing more and nothing less."""
    student = write_student_version(tmp_path / "hw", EXERCISES, ROOT)
    expected = expected_failures(EXERCISES)
    assert failing_tests(student, ["tests"]) == present(student, expected)
