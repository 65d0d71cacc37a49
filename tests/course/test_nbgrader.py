"""nbgrader itself generates a tutorial's assignment and autogrades two submissions: the
solution earns every point, the untouched student version none."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbgrader  # noqa: F401  (the dev extra: this test is about nbgrader itself)
import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "tutorials" / "01_markov_chains_and_the_forward_process.ipynb"


def _nbgrader(course: Path, *args: str) -> None:
    """Run one nbgrader command in the course folder; it must succeed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",  # nbgrader runs alembic from the same bin/
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.slow  # executes tutorial 1 twice (about a minute)
def test_nbgrader_generates_and_autogrades_a_tutorial(tmp_path):
    course = tmp_path / "course"
    source = course / "source" / "t01"
    source.mkdir(parents=True)
    shutil.copy2(TUTORIAL, source / TUTORIAL.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'minidiff'\n"
        "c.Execute.timeout = 600\n")
    _nbgrader(course, "generate_assignment", "t01", "--force")
    released = course / "release" / "t01" / TUTORIAL.name
    cells = json.loads(released.read_text())["cells"]
    text = "".join("".join(cell["source"]) for cell in cells)
    assert "### BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    submissions = {"solver": source / TUTORIAL.name, "blank": released}
    for student, notebook in submissions.items():
        target = course / "submitted" / student / "t01"
        target.mkdir(parents=True)
        shutil.copy2(notebook, target / TUTORIAL.name)
    _nbgrader(course, "autograde", "t01", "--create", "--force")
    _nbgrader(course, "export", "--to", str(tmp_path / "grades.csv"))
    with open(tmp_path / "grades.csv") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    points = sum(1 for cell in cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    assert float(rows["solver"]["max_score"]) == points
    assert float(rows["solver"]["score"]) == points
    assert float(rows["blank"]["score"]) == 0
