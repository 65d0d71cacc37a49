"""The layer rules of DESIGN.md, checked on the installed package."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import minidiff

PACKAGE = Path(minidiff.__file__).parent
NUMPY_LAYERS = ("minidiff.markov", "minidiff.process", "minidiff.toy")
LAYER = {
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
}


@pytest.mark.parametrize("module", NUMPY_LAYERS)
def test_numpy_layers_never_import_torch(module):
    """Importing a NumPy layer (0-2) in a fresh interpreter leaves torch unimported."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", f"{module} imported torch"


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("minidiff.") and n.count(".") >= 1}


@pytest.mark.parametrize("layer", sorted(LAYER))
def test_layers_import_only_from_below(layer):
    """Each module of layer k imports minidiff modules of layers < k (or its own) only."""
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for other in _imported_layers(path):
            if other in LAYER:
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
