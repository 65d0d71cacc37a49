"""``minidiff course``: hand out and grade an assignment built from the package.

    minidiff course student --out hw --layer 1             # the layer-1 exercises removed
    minidiff course student --out hw --exercises q_sample,posterior
    minidiff course grade --student hw --json results.json # visible and hidden tests

``student`` writes the student version (`minidiff.course.write_student_version`);
``grade`` runs each exercise's tests against the student's package and prints a table;
``--json`` also writes Gradescope's ``results.json`` (`minidiff.course.gradescope_results`).
Both read the instructor's checkout given by ``--source`` (default: the current folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minidiff.cli._common import check_out_folder, fail, int_at_least
from minidiff.course import format_table, grade, gradescope_results, resolve_exercises
from minidiff.course.student import write_student_version

__all__ = ["add_parser", "run"]


def _choice_options(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--exercises", help="comma-separated exercise names (default: all)")
    choice.add_argument("--layer", type=int_at_least(0), help="the exercises of one layer")
    parser.add_argument("--source", type=Path, default=Path("."),
                        help="the instructor's checkout (minidiff/, tests/, tutorials/)")


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``course`` to the subcommands ``commands`` (an argparse subparsers object)."""
    course = commands.add_parser(
        "course", help="write a student version of the package, or grade one",
        description="Course mode: student versions from the marked solutions, grading by "
        "the tests.", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    actions = course.add_subparsers(dest="action", required=True)
    student = actions.add_parser("student", help="write the student version",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    student.add_argument("--out", required=True, type=Path, help="a new or empty folder")
    _choice_options(student)
    graded = actions.add_parser("grade", help="grade a student's package",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    graded.add_argument("--student", type=Path, default=Path("."),
                        help="the folder holding the student's minidiff/")
    graded.add_argument("--json", type=Path, help="write Gradescope's results.json here")
    _choice_options(graded)
    return course


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff course`` with parsed arguments; returns the exit status."""
    try:
        chosen = resolve_exercises(args.exercises, args.layer)
    except ValueError as err:
        fail("course", str(err))
    if args.action == "student":
        check_out_folder(parser, args.out)
        if args.out.is_dir() and any(args.out.iterdir()):
            fail("course", f"--out must be a new or empty folder, got {str(args.out)!r}")
        try:
            out = write_student_version(args.out, chosen, args.source)
        except ValueError as err:
            fail("course", str(err))
        print(f"{out}: {len(chosen)} exercises, {sum(e.points for e in chosen)} points; "
              f"see {out / 'INSTRUCTIONS.md'}")
        return 0
    if args.json is not None and args.json.is_dir():
        fail("course", f"--json must be a file path, got the folder {str(args.json)!r}")
    try:
        results = grade(args.student, args.source, chosen)
    except ValueError as err:
        fail("course", str(err))
    print(format_table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(f".{args.json.name}.tmp")
        partial.write_text(json.dumps(gradescope_results(results), indent=2) + "\n")
        partial.replace(args.json)
    return 0
