"""The tutorials, executed once per test run by ``make tutorials``, ran without an error.

``docs/hooks/execute_tutorials.py`` executes every notebook of ``tutorials/`` at its
committed settings into ``build/tutorials/``; the site renders those copies. These tests
read the copies instead of executing the notebooks a second time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docs.built import EXECUTED, TUTORIALS, require

NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def read(path: Path) -> dict:
    """The notebook at ``path`` as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook: dict) -> list[dict]:
    """The code cells of ``notebook``, in order."""
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell: dict) -> str:
    """A cell's source as one string (nbformat allows a list of lines or a string)."""
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def test_there_are_tutorials():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_tutorial_is_committed_without_outputs(notebook):
    """Outputs are made by running the notebook, never stored in git."""
    for index, cell in enumerate(code_cells(read(notebook))):
        assert cell.get("outputs") == [], f"{notebook.name}, code cell {index} has outputs"
        assert cell.get("execution_count") is None, f"{notebook.name}, code cell {index}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_tutorial_ran_to_the_end_without_an_error(notebook):
    """The executed copy is of the current notebook (every cell's source equal), every code
    cell ran, none raised, and the tutorial drew at least one figure."""
    executed_path = require(EXECUTED / notebook.name, "the executed tutorial",
                            "run `make tutorials` first")
    committed, executed_notebook = read(notebook), read(executed_path)
    assert [(c["cell_type"], source(c)) for c in executed_notebook["cells"]] == [
        (c["cell_type"], source(c)) for c in committed["cells"]
    ], f"{executed_path} is not an execution of the current {notebook.name}: run `make tutorials`"
    executed = code_cells(executed_notebook)
    for index, cell in enumerate(executed):
        errors = [out for out in cell["outputs"] if out["output_type"] == "error"]
        assert not errors, (
            f"{notebook.name}, code cell {index} raised {errors[0]['ename']}: {errors[0]['evalue']}"
        )
        assert cell["execution_count"] is not None, f"{notebook.name}, code cell {index} never ran"
    figures = [
        out for cell in executed for out in cell["outputs"]
        if "image/png" in out.get("data", {})
    ]
    assert figures, f"{notebook.name} drew no figure"
