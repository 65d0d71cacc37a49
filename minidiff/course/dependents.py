"""The dependent tests of each exercise: the tests, not graded for it, that fail when its
solution alone is removed, because they call its function directly or through other code.

They are found in three steps, each cheaper than running the whole suite per exercise:

1. the import graph (`import_graph`, `reaching_modules`): a test module can only call an
   exercise's function if the module's imports, followed through the package, reach the
   exercise's file;
2. one traced run (`trace_calls`) of the test modules that reach any exercise, with the
   solution in place: each exercise function is instrumented (its code object swapped for a
   recording wrapper, so every reference to it records), and each test lists the exercises
   it called while it ran (setup, call and teardown);
3. for each exercise, one run of only the test modules holding a test that called it
   (whole modules, so that tests sharing a module-scoped fixture are run too), in a student
   version with that exercise alone removed (`dependent_tests`): the failing tests that are
   not graded for the exercise are its dependents.

A test that starts a subprocess could call an exercise there unseen by the trace; the
slow end-to-end test of the course (a student version with every exercise removed fails
exactly the graded and dependent tests) checks that none does.

The result is written to ``minidiff/course/dependent_tests.py`` by
``python -m minidiff.course.dependents`` and read by the manifest.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from minidiff.course.manifest import EXERCISES, Exercise, write_table

__all__ = ["dependent_tests", "import_graph", "reaching_modules", "trace_calls"]

_TRACE_ENV = "MINIDIFF_COURSE_TRACE"
_hits: set[str] = set()


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(root: Path, path: Path) -> set[Path]:
    """The files of ``minidiff`` and ``tests`` that the module at ``path`` imports, a
    package's ``__init__`` included; ``from package import name`` also counts the
    submodule ``package.name`` when there is one."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                parent = ".".join([*parts, parent] if parent else parts)
            names = [parent] + [f"{parent}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] not in ("minidiff", "tests"):
                continue
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
                file = _module_file(root, ".".join(parts[:end]))
                if file is not None:
                    found.add(file)
    return found


def import_graph(root: str | Path) -> dict[Path, set[Path]]:
    """Each module of ``minidiff/`` and ``tests/`` under ``root``, with the modules it
    imports; a test module also depends on the ``conftest.py`` files above it."""
    root = Path(root)
    graph = {}
    for path in sorted([*(root / "minidiff").rglob("*.py"), *(root / "tests").rglob("*.py")]):
        edges = _imports(root, path)
        if path.parts[len(root.parts)] == "tests":
            for folder in path.relative_to(root).parents:
                conftest = root / folder / "conftest.py"
                if conftest.is_file() and conftest != path:
                    edges.add(conftest)
        graph[path] = edges
    return graph


def reaching_modules(root: str | Path, file: str, graph: dict[Path, set[Path]] | None = None
                     ) -> list[str]:
    """The test modules (``tests/**/test_*.py``, relative to ``root``) whose imports reach
    ``file`` (a path relative to ``root``)."""
    root = Path(root)
    graph = import_graph(root) if graph is None else graph
    target = root / file
    reach: dict[Path, bool] = {}

    def reaches(path: Path, seen: frozenset[Path]) -> bool:
        if path == target:
            return True
        if path not in reach:
            reach[path] = any(reaches(edge, seen | {path})
                              for edge in graph.get(path, ()) if edge not in seen)
        return reach[path]

    return sorted(path.relative_to(root).as_posix() for path in graph
                  if path.name.startswith("test_") and path.parts[len(root.parts)] == "tests"
                  and reaches(path, frozenset()))


def _hit(name: str) -> None:
    _hits.add(name)


def _function(exercise: Exercise):
    module = importlib.import_module(exercise.file.removesuffix(".py").replace("/", "."))
    owner = module
    for part in exercise.function.split("."):
        owner = getattr(owner, part)
    return inspect.unwrap(owner)


def _instrument(exercise: Exercise) -> None:
    """Swap the code of the exercise's function for a wrapper that records the call and
    runs a copy of the original, so every reference to the function records."""
    function = _function(exercise)
    original = type(function)(function.__code__, function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)
    original.__kwdefaults__ = function.__kwdefaults__
    key = f"_course_original_{exercise.name}"
    function.__globals__[key] = original
    function.__globals__["_course_hit"] = _hit
    source = (f"def _wrapper(*args, **kwargs):\n    _course_hit({exercise.name!r})\n"
              f"    return {key}(*args, **kwargs)\n")
    namespace: dict = {}
    exec(compile(source, exercise.file, "exec"), function.__globals__, namespace)
    function.__code__ = namespace["_wrapper"].__code__


class _TracePlugin:
    """A pytest plugin: instruments every exercise and writes, for each test, the exercises
    called while it ran or while a fixture it uses was set up (a module- or session-scoped
    fixture is set up once, for the first test that needs it), and for each test module the
    exercises called while it was collected."""

    def __init__(self, out: str) -> None:
        self.out, self.calls, self.fixtures = out, {}, {}

    def pytest_sessionstart(self, session) -> None:
        for exercise in EXERCISES:
            _instrument(exercise)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        before = set(_hits)
        _hits.clear()
        yield
        self.fixtures.setdefault(fixturedef.argname, set()).update(_hits)
        _hits.update(before)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        _hits.clear()
        yield
        called = set(_hits).union(*(self.fixtures.get(f, ()) for f in item.fixturenames))
        node = item.nodeid.split("[")[0]
        self.calls[node] = sorted(set(self.calls.get(node, ())) | called)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector):
        _hits.clear()
        yield
        if _hits and collector.nodeid:
            module = collector.nodeid.split("::")[0]
            self.calls[module] = sorted(set(self.calls.get(module, ())) | _hits)

    def pytest_sessionfinish(self, session) -> None:
        Path(self.out).write_text(json.dumps(self.calls, indent=0, sort_keys=True))


def pytest_configure(config) -> None:
    """Registers the tracing plugin when ``MINIDIFF_COURSE_TRACE`` names an output file."""
    if os.environ.get(_TRACE_ENV):
        config.pluginmanager.register(_TracePlugin(os.environ[_TRACE_ENV]), "course-trace")


def _pytest(root: Path, args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
               "no:randomly", "-p", "no:xdist", *args]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)


def trace_calls(root: str | Path, modules: Iterable[str]) -> dict[str, list[str]]:
    """Run the test ``modules`` in ``root`` once with the exercise functions instrumented;
    returns each test (node id without parameters) with the exercises it called."""
    root = Path(root)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "calls.json"
        _pytest(root, ["-p", "minidiff.course.dependents", *modules], {_TRACE_ENV: str(out)})
        return json.loads(out.read_text())


def dependent_tests(root: str | Path, exercises: Sequence[Exercise] = EXERCISES
                    ) -> dict[str, tuple[str, ...]]:
    """The dependent tests of each exercise, found as the module docstring says, in the
    checkout ``root`` (the course's own tests, ``tests/course``, are not part of it: the
    student version leaves them out)."""
    from minidiff.course.grade import failing_tests
    from minidiff.course.student import write_student_version

    root = Path(root)
    graph = import_graph(root)
    reach = {e.name: [m for m in reaching_modules(root, e.file, graph)
                      if not m.startswith("tests/course/")] for e in exercises}
    modules = sorted({m for found in reach.values() for m in found})
    calls = trace_calls(root, modules)
    result = {}
    with tempfile.TemporaryDirectory() as work:
        for exercise in exercises:
            callers = sorted({test.split("::")[0] for test, names in calls.items()
                              if exercise.name in names} & set(reach[exercise.name]))
            student = write_student_version(Path(work) / exercise.name, [exercise], root,
                                            hidden_tests=True)
            failing = failing_tests(student, callers) if callers else set()
            result[exercise.name] = tuple(sorted(failing - set(exercise.tests)))
    return result


if __name__ == "__main__":
    here = Path.cwd()
    write_table(here / "minidiff" / "course" / "dependent_tests.py", "DEPENDENT_TESTS",
                dependent_tests(here), "The dependent tests of each exercise, written by "
                "``python -m minidiff.course.dependents``\n(see `minidiff.course.dependents`).")
