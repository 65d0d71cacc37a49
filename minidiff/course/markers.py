"""nbgrader's solution markers in Python source and in notebook cells.

A region is the lines strictly between a ``### BEGIN SOLUTION`` line and the next
``### END SOLUTION`` line; the marker lines hold nothing else. In the student version of a
module a region becomes one ``raise NotImplementedError(message)`` at the marker's
indentation; in a notebook cell it becomes ``# YOUR CODE HERE`` and a bare
``raise NotImplementedError()``, as nbgrader's ``ClearSolutions`` writes it, and a
markdown answer becomes ``YOUR ANSWER HERE``. Hidden test regions (``### BEGIN HIDDEN
TESTS`` ... ``### END HIDDEN TESTS``) are removed from the student's notebooks, as
nbgrader's ``ClearHiddenTests`` does.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass

__all__ = [
    "BEGIN",
    "END",
    "Region",
    "clear_notebook_source",
    "find_regions",
    "function_span",
    "remove_markers",
    "replace_regions",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


@dataclass(frozen=True)
class Region:
    """A marked region: ``begin`` and ``end`` are the 1-based line numbers of the marker
    lines; ``indent`` is the begin marker's indentation."""

    begin: int
    end: int
    indent: str


def _pairs(lines: list[str], begin: str, end: str, where: str) -> list[Region]:
    regions, open_at = [], None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == begin:
            if open_at is not None:
                raise ValueError(f"{where}: line {number} opens a region inside the one "
                                 f"opened on line {open_at}")
            open_at = number
            indent = line[: len(line) - len(line.lstrip())]
        elif stripped == end:
            if open_at is None:
                raise ValueError(f"{where}: line {number} closes a region that is not open")
            regions.append(Region(open_at, number, indent))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{where}: the region opened on line {open_at} is never closed")
    return regions


def find_regions(source: str, where: str = "source") -> list[Region]:
    """The solution regions of ``source``, in order.

    Raises:
        ValueError: a nested, unclosed or unopened region, naming ``where`` and the line.
    """
    return _pairs(source.splitlines(), BEGIN, END, where)


def function_span(source: str, qualname: str) -> tuple[int, int] | None:
    """The first and last line (1-based) of the function ``name`` or method
    ``Class.name`` defined at the top of a module, or None if there is none."""
    tree = ast.parse(source)
    *owner, name = qualname.split(".")
    body = tree.body
    if owner:
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == owner[0]]
        if not classes:
            return None
        body = classes[0].body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return first, node.end_lineno
    return None


def replace_regions(source: str, replacement: dict[int, str | None]) -> str:
    """``source`` with each region replaced: ``replacement[region.begin]`` is the message
    of the ``raise NotImplementedError`` that takes the region's place, or None to keep
    the solution (and drop only the marker lines). Regions missing from the dict are kept.
    """
    lines = source.splitlines(keepends=True)
    out, position = [], 0
    for region in find_regions(source):
        out.extend(lines[position : region.begin - 1])
        message = replacement.get(region.begin)
        if message is None:
            out.extend(lines[region.begin : region.end - 1])
        else:
            out.append(f"{region.indent}raise NotImplementedError({json.dumps(message)})\n")
        position = region.end
    out.extend(lines[position:])
    return "".join(out)


def remove_markers(source: str) -> str:
    """``source`` without its marker lines, every solution kept."""
    return replace_regions(source, {})


def clear_notebook_source(source: str, cell_type: str) -> str:
    """A notebook cell's source as nbgrader's student version has it: each solution region
    replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (code) or ``YOUR
    ANSWER HERE`` (markdown), and hidden tests removed. Lines are split and joined on
    newlines, as nbgrader does, so that the result is the same text."""
    lines = source.split("\n")
    hidden = {n for r in _pairs(lines, BEGIN_HIDDEN, END_HIDDEN, "cell")
              for n in range(r.begin, r.end + 1)}
    lines = [line for number, line in enumerate(lines, start=1) if number not in hidden]
    out, position = [], 0
    for region in _pairs(lines, BEGIN, END, "cell"):
        out.extend(lines[position : region.begin - 1])
        if cell_type == "code":
            indent = region.indent
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        else:
            out.append("YOUR ANSWER HERE")
        position = region.end
    out.extend(lines[position:])
    return "\n".join(out)
