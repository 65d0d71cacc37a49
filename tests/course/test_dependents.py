"""Finding dependent tests: the import graph follows packages, relative imports and
conftests, and the traced run records which exercises each test calls."""

from pathlib import Path

from minidiff.course.dependents import import_graph, reaching_modules, trace_calls

ROOT = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_reaching_modules_follow_packages_relative_imports_and_conftests(tmp_path):
    write(tmp_path, {
        "minidiff/__init__.py": "",
        "minidiff/a/__init__.py": "from minidiff.a.f import g\n",
        "minidiff/a/f.py": "def g():\n    return 1\n",
        "minidiff/a/other.py": "def h():\n    return 2\n",
        "minidiff/b.py": "from minidiff.a import g\n",
        "minidiff/c.py": "from .a import other\n",
        "tests/__init__.py": "",
        "tests/test_uses_b.py": "from minidiff.b import g\n",
        "tests/test_uses_c.py": "import minidiff.c\n",
        "tests/sub/conftest.py": "import minidiff.b\n",
        "tests/sub/test_plain.py": "def test_x():\n    pass\n",
        "tests/test_numpy.py": "import numpy\n",
    })
    graph = import_graph(tmp_path)
    assert tmp_path / "tests/sub/conftest.py" in graph[tmp_path / "tests/sub/test_plain.py"]
    assert reaching_modules(tmp_path, "minidiff/a/f.py", graph) == [
        "tests/sub/test_plain.py", "tests/test_uses_b.py", "tests/test_uses_c.py"]
    # the package's __init__ does not import `other`; only the relative import reaches it
    assert reaching_modules(tmp_path, "minidiff/a/other.py", graph) == ["tests/test_uses_c.py"]
    assert reaching_modules(tmp_path, "minidiff/c.py", graph) == ["tests/test_uses_c.py"]


def test_the_trace_records_the_exercises_each_test_calls():
    finite = "tests/markov/test_finite.py::"
    law_after = finite + "test_law_after_n_steps_is_the_one_step_map_applied_n_times"
    invariant = finite + "test_stationary_law_is_invariant_and_sums_to_one"
    calls = trace_calls(ROOT, [law_after, invariant])
    # law_after is P^n applied to the start law (minidiff/markov/finite.py)
    assert calls == {
        law_after: ["n_step_kernel"],
        invariant: ["stationary_law"],
    }
