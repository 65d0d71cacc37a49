"""The layer rules of DESIGN.md, checked on the installed package."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import minidiff

PACKAGE = Path(minidiff.__file__).parent
NUMPY_LAYERS = ("minidiff.atomic", "minidiff.markov", "minidiff.process", "minidiff.toy")
# The layer of every package (and top-level module) of minidiff, as in DESIGN.md: presets,
# settings and runs above the libraries, the command line on top.
LAYER = {
    "atomic": 0,  # the one file writer: imports neither torch nor numpy
    "markov": 0,
    "process": 1,
    "toy": 2,
    "nn": 3,
    "diffusion": 3,
    "discrete": 3,
    "data": 3,
    "training": 4,
    "evaluation": 4,
    "applications": 5,
    "sections": 6,
    "kinds": 6,  # the kinds of network and process a preset holds
    "configs": 6,
    "runs": 6,
    "course": 6,  # course mode: student versions, grading, the bug museum
    "cli": 7,
}


def _packages() -> set[str]:
    """The packages (folders with an __init__.py) and modules directly under minidiff/."""
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return folders | modules


def test_every_package_has_a_layer_and_every_layer_a_package():
    """The layer table names exactly the packages and top-level modules that exist: a new
    package must take its place in the layers, and none is listed that is not there."""
    assert set(LAYER) == _packages()


def _files(name: str) -> list[Path]:
    return sorted((PACKAGE / name).rglob("*.py")) if (PACKAGE / name).is_dir() else [
        PACKAGE / f"{name}.py"
    ]  # fmt: skip


def _imported_packages(path: Path, own: tuple[str, ...] | None = None) -> set[str]:
    """The minidiff packages a file imports from, in every form: ``import minidiff.x``,
    ``from minidiff.x import y``, ``from minidiff import x`` and relative imports (``own``:
    the file's dotted name as parts, default from its place in the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if own is None:
        own = path.relative_to(PACKAGE.parent).with_suffix("").parts  # ("minidiff", "runs", ..)
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package upwards
                base = ".".join([*own[: len(own) - node.level], *([base] if base else [])])
            modules += [base] if base != "minidiff" else []
            if base == "minidiff":  # from minidiff import x: x is a package or module
                modules += [f"minidiff.{alias.name}" for alias in node.names]
    return {m.split(".")[1] for m in modules if m.startswith("minidiff.")}


def test_imported_packages_reads_every_import_form(tmp_path):
    """The import reader finds ``import minidiff.a``, ``from minidiff.b import c``,
    ``from minidiff import d``, ``import minidiff.e as f`` and a relative import."""
    path = tmp_path / "probe.py"
    path.write_text("import minidiff.a\nfrom minidiff.b import c\nfrom minidiff import d\n"
                    "import minidiff.e as f\nfrom ..g import h\nfrom . import i\n"
                    "import numpy\n", encoding="utf-8")  # fmt: skip
    own = ("minidiff", "runs", "probe")
    assert _imported_packages(path, own) == {"a", "b", "d", "e", "g", "runs"}


@pytest.mark.parametrize("module", NUMPY_LAYERS)
def test_numpy_layers_never_import_torch(module):
    """Importing a NumPy layer (0-2) in a fresh interpreter leaves torch unimported."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", f"{module} imported torch"


@pytest.mark.parametrize("layer", sorted(LAYER))
def test_layers_import_only_from_below(layer):
    """Each module of layer k imports minidiff packages of layers <= k only (its own
    layer's included), in any import form."""
    for path in _files(layer):
        for other in _imported_packages(path):
            assert other in LAYER, f"{path.name} imports minidiff.{other}, which has no layer"
            assert LAYER[other] <= LAYER[layer], f"{path.name} imports minidiff.{other}"


def test_import_minidiff_is_light():
    """`import minidiff` pulls in neither torch nor matplotlib (optional weight is lazy)."""
    code = (
        "import sys, minidiff; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_command_line_and_toy_run_do_not_import_torch():
    """`minidiff --help` (the parsers of every command) and the NumPy toy run's module load
    without torch: torch loads when a command that needs it runs."""
    code = ("import sys, minidiff.cli, minidiff.runs.toy; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
