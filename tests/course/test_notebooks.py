"""Every tutorial ends with exercises in nbgrader's form and a summary; the exercises pass
with their solutions and fail without them; a student notebook runs up to its first
exercise."""

import json
import os
from pathlib import Path

import pytest

from minidiff.course.markers import BEGIN, END
from minidiff.course.student import student_notebook

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def _cells(path):
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        cell["source"] = "".join(cell["source"])
    return cells


def _exercise_cells(cells):
    start = next(i for i, c in enumerate(cells) if c["source"].startswith("## Exercises"))
    return cells[start:]


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name[:2])
def test_tutorial_ends_with_graded_exercises_and_a_summary(path):
    cells = _exercise_cells(_cells(path))
    assert cells[-1]["cell_type"] == "markdown" and cells[-1]["source"].startswith("## Summary")
    solutions = [i for i, c in enumerate(cells) if _nbgrader(c).get("solution")]
    assert solutions
    for i in solutions:
        assert BEGIN in cells[i]["source"] and END in cells[i]["source"]
        graded = cells[i + 1]
        assert _nbgrader(graded).get("grade") and _nbgrader(graded)["points"] > 0
        assert "assert " in graded["source"]
    ids = [_nbgrader(c)["grade_id"] for c in cells if _nbgrader(c)]
    assert len(ids) == len(set(ids))


def _run(cells):
    namespace = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile(cell["source"], "cell", "exec"), namespace)


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name[:2])
def test_exercises_pass_with_the_solution_and_fail_without_it(path):
    cells = _exercise_cells(_cells(path))
    _run(cells)
    cleared = _exercise_cells(student_notebook({"cells": cells, "metadata": {}})["cells"])
    with pytest.raises(NotImplementedError):
        _run(cleared)


@pytest.mark.slow
def test_a_student_notebook_executes_up_to_its_first_exercise(monkeypatch):
    import nbclient  # the dev extra (nbgrader) brings both
    import nbformat

    path = ROOT / "tutorials" / "01_markov_chains_and_the_forward_process.ipynb"
    notebook = nbformat.from_dict(student_notebook(json.loads(path.read_text())))
    first_graded = next(i for i, c in enumerate(notebook.cells) if _nbgrader(c).get("grade"))
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="NotImplementedError"):
        client.execute()
    ran = [i for i, c in enumerate(notebook.cells)
           if c.cell_type == "code" and c.get("execution_count") is not None]
    assert ran[-1] == first_graded
