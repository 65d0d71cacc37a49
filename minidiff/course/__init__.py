"""Course mode: exercises marked in the package, student versions, grading by the tests,
and the bug museum.

- `manifest`: the exercises (`EXERCISES`), each a marked region of one function with its
  equation, points, visible and hidden tests and tutorial;
- `markers`: nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in modules and cells;
- `student`: `write_student_version`, the package and tutorials with the solutions removed;
- `grade`: `grade`, the tests of each exercise run against a student's package, as a table
  and as Gradescope's ``results.json``;
- `museum`: real bugs of the ecosystem, each a buggy variant of a minidiff function and the
  property test that catches it.
"""

from minidiff.course.grade import ExerciseResult, format_table, grade, gradescope_results
from minidiff.course.manifest import EXERCISES, Exercise, resolve_exercises
from minidiff.course.student import write_student_version

__all__ = [
    "EXERCISES",
    "Exercise",
    "ExerciseResult",
    "format_table",
    "grade",
    "gradescope_results",
    "resolve_exercises",
    "write_student_version",
]
