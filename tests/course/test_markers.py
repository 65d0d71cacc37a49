"""nbgrader's markers: regions found, replaced and cleared as nbgrader clears them."""

import textwrap

import pytest

from minidiff.course.markers import (
    clear_notebook_source,
    find_regions,
    function_span,
    remove_markers,
    replace_regions,
)

SOURCE = textwrap.dedent('''\
    def f(x):
        """Doc."""
        y = x + 1
        ### BEGIN SOLUTION
        z = y * 2
        return z
        ### END SOLUTION


    class A:
        def g(self):
            ### BEGIN SOLUTION
            return 3
            ### END SOLUTION
    ''')


def test_regions_are_found_with_their_indentation():
    regions = find_regions(SOURCE)
    assert [(r.begin, r.end, r.indent) for r in regions] == [(4, 7, "    "), (12, 14, "        ")]
    assert function_span(SOURCE, "f") == (1, 6)
    assert function_span(SOURCE, "A.g")[0] == 11
    assert function_span(SOURCE, "A.h") is None and function_span(SOURCE, "B.g") is None


def test_replaced_region_raises_the_message_and_the_rest_still_runs():
    out = replace_regions(SOURCE, {4: 'f: return 2 (x + 1), "eq. 1"'})
    namespace = {}
    exec(compile(out, "student", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r'f: return 2 \(x \+ 1\), "eq. 1"'):
        namespace["f"](1)
    assert namespace["A"]().g() == 3  # a region not chosen keeps its solution
    assert "### " not in out


def test_removing_markers_keeps_every_solution_line():
    out = remove_markers(SOURCE)
    assert out.splitlines() == [line for line in SOURCE.splitlines() if "###" not in line]


@pytest.mark.parametrize("bad, match", [
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside"),
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "not open"),
])
def test_malformed_regions_raise_naming_the_line(bad, match):
    with pytest.raises(ValueError, match=match):
        find_regions(bad, "m.py")


def test_cleared_cells_equal_what_nbgrader_writes():
    """The student notebooks match nbgrader's own ClearSolutions and ClearHiddenTests."""
    import nbformat  # the dev extra (nbgrader) brings both
    from nbgrader import preprocessors

    code = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    test = "assert f() == 1\n### BEGIN HIDDEN TESTS\nassert f() + 1 == 2\n### END HIDDEN TESTS"
    text = "Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(test),
                nbformat.v4.new_markdown_cell(text)]
    resources = {}
    nb, resources = preprocessors.ClearSolutions(enforce_metadata=False).preprocess(nb, resources)
    nb, resources = preprocessors.ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
    ours = [clear_notebook_source(s, kind) for s, kind in
            ((code, "code"), (test, "code"), (text, "markdown"))]
    assert ours == [cell.source for cell in nb.cells]
