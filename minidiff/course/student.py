"""The student version of the package: solutions removed, hidden tests left out.

`write_student_version` copies a source checkout (the package, the tests, the tutorials,
``pyproject.toml``, ``README.md``, ``LICENSE``) to a new folder:

- in the package, each region of a chosen exercise becomes
  ``raise NotImplementedError("<exercise>: <what to implement>, <equation>")``; the
  markers of the other exercises are dropped and their solutions kept;
- in the tests, the hidden tests of the chosen exercises are removed (the test function
  with its decorators), so they run only when the instructor grades;
- in the tutorials, every solution cell is cleared as nbgrader clears it and the outputs are
  dropped (`minidiff.course.markers.clear_notebook_source`);
- ``INSTRUCTIONS.md`` lists the exercises, their points, equations, visible tests and
  tutorials, and how to check and grade the work.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from minidiff.course.manifest import EXERCISES, Exercise, write_table
from minidiff.course.markers import (
    clear_notebook_source,
    find_regions,
    function_span,
    replace_regions,
)

__all__ = ["COPIED", "instructions", "strip_tests", "student_notebook", "write_student_version"]

COPIED = ("minidiff", "tests", "tutorials", "pyproject.toml", "README.md", "LICENSE")
COURSE_TESTS = "tests/course"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".hypothesis")


def _region_owner(source: str, exercises: Sequence[Exercise], where: str) -> dict[int, Exercise]:
    """Which exercise each region of one file belongs to (by the function around it)."""
    owners = {}
    for region in find_regions(source, where):
        for candidate in exercises:
            span = function_span(source, candidate.function)
            # the END marker may follow the function's last statement, so only BEGIN counts
            if span is not None and span[0] < region.begin <= span[1]:
                owners[region.begin] = candidate
    return owners


def student_module(source: str, path: str, chosen: Sequence[Exercise]) -> str:
    """One module of the package as the student gets it."""
    in_file = [e for e in EXERCISES if e.file == path]
    owners = _region_owner(source, in_file, path)
    names = {e.name for e in chosen}
    messages = {begin: e.message for begin, e in owners.items() if e.name in names}
    return replace_regions(source, messages)


def strip_tests(source: str, names: Sequence[str]) -> str:
    """A test module without the top-level test functions ``names`` (decorators included)."""
    spans = sorted(span for name in names if (span := function_span(source, name)) is not None)
    lines = source.splitlines(keepends=True)
    for first, last in reversed(spans):
        del lines[first - 1 : last]
    return "".join(lines)


def student_notebook(notebook: dict) -> dict:
    """A tutorial as nbgrader's student version has it: solutions cleared, hidden tests
    removed, outputs and execution counts dropped."""
    notebook = json.loads(json.dumps(notebook))
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = clear_notebook_source(source, cell["cell_type"])
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def instructions(chosen: Sequence[Exercise]) -> str:
    """The text of ``INSTRUCTIONS.md``."""
    rows = "\n".join(
        f"| `{e.name}` | {e.points} | `{e.file}`, `{e.function}` | {e.task} | {e.equation} "
        f"| `{e.tutorial}` |" for e in chosen
    )
    tests = "\n".join(f"    {test}" for e in chosen for test in e.visible)
    total = sum(e.points for e in chosen)
    return f"""# Assignment

Each function below raises `NotImplementedError` where its body should be. Write the body;
the message names what to compute and the equation. The tutorial in the last column
teaches it; the docstring of the function states its contract.

| exercise | points | where | what to implement | equation | tutorial |
|---|---|---|---|---|---|
{rows}

Total: {total} points. Your grade is the share of each exercise's tests that pass,
weighted by its points: the visible tests below, and hidden tests of the same functions
that your instructor runs.

## Check your work

    pip install -e ".[dev]"
    python -m pytest -q -p no:randomly \\
{tests}

Other tests that call these functions fail too until they are written: the dependent
tests of each exercise (`exercise("<name>").dependent` in `minidiff.course.manifest`).
They carry no points; every other test passes from the start.

Then `python -m minidiff course grade --student .` shows a table of your points (it needs
the instructor's copy to run the hidden tests as well; here it runs the visible ones).
"""


def _write_student_manifest(out: Path, chosen: Sequence[Exercise]) -> None:
    """The tables of hidden and dependent tests without the removed hidden tests, so that
    the student version names none of them."""
    removed = {test for e in chosen for test in e.hidden}
    hidden = {e.name: () if e in chosen else e.hidden for e in EXERCISES}
    dependent = {e.name: tuple(t for t in e.dependent if t not in removed) for e in EXERCISES}
    write_table(out / "minidiff/course/hidden_tests.py", "HIDDEN_TESTS", hidden,
                "The hidden tests of each exercise (none for the exercises of this assignment).")
    write_table(out / "minidiff/course/dependent_tests.py", "DEPENDENT_TESTS", dependent,
                "The dependent tests of each exercise (see `minidiff.course.dependents`).")


def _write_tree(source_root: Path, out: Path, chosen: Sequence[Exercise], hidden_tests: bool
                ) -> None:
    for name in COPIED:
        path = source_root / name
        if path.is_dir():
            shutil.copytree(path, out / name, ignore=_IGNORED)
            if name == "tests":  # the course's own tests check the instructor's markers
                shutil.rmtree(out / COURSE_TESTS, ignore_errors=True)
        elif path.is_file():
            shutil.copy2(path, out / name)
    for module in {e.file for e in EXERCISES}:
        target = out / module
        target.write_text(student_module(target.read_text(), module, chosen))
    hidden: dict[str, list[str]] = {}
    for test in (t for e in chosen if not hidden_tests for t in e.hidden):
        file, name = test.split("::")
        hidden.setdefault(file, []).append(name)
    for file, names in hidden.items():
        target = out / file
        target.write_text(strip_tests(target.read_text(), names))
    if not hidden_tests:
        _write_student_manifest(out, chosen)
    for path in sorted((out / "tutorials").glob("*.ipynb")):
        notebook = student_notebook(json.loads(path.read_text()))
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    (out / "INSTRUCTIONS.md").write_text(instructions(chosen))


def write_student_version(
    out: str | Path, exercises: Sequence[Exercise] = EXERCISES, source_root: str | Path = ".",
    hidden_tests: bool = False,
) -> Path:
    """Write the student version of ``source_root`` to the new folder ``out``.

    The folder is built under a temporary name beside ``out`` and renamed into place.

    Args:
        out: the folder to create; it must not exist, or be empty.
        exercises: the exercises to remove (default: all of them).
        source_root: a checkout holding ``minidiff/``, ``tests/`` and ``tutorials/``.
        hidden_tests: keep the hidden tests (for the instructor's checks of the course).

    Returns:
        the folder written.

    Raises:
        ValueError: ``out`` exists and is not an empty folder, or ``source_root`` is not a
            checkout.
    """
    out, source_root = Path(out), Path(source_root)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out must be a new or empty folder, got {str(out)!r}")
    needed = ("minidiff", "tests", "tutorials")
    missing = [name for name in needed if not (source_root / name).is_dir()]
    if missing:
        raise ValueError(f"source_root must be a checkout with {', '.join(missing)}/, got "
                         f"{str(source_root)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_tree(source_root, partial, exercises, hidden_tests)
        if out.exists():
            out.rmdir()
        partial.replace(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out
