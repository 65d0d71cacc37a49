"""The course manifest agrees with the repository: each exercise's region sits in its
function, each graded test exists, each tutorial exists, and no region is unaccounted for."""

from pathlib import Path

import pytest

from minidiff.course.dependent_tests import DEPENDENT_TESTS
from minidiff.course.hidden_tests import HIDDEN_TESTS
from minidiff.course.manifest import (
    EXERCISES,
    exercise,
    exercises_of_layer,
    resolve_exercises,
)
from minidiff.course.markers import find_regions, function_span

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_each_exercise_has_one_region_inside_its_function(ex):
    source = (ROOT / ex.file).read_text()
    span = function_span(source, ex.function)
    assert span is not None, f"{ex.file} defines no {ex.function}"
    inside = [r for r in find_regions(source, ex.file) if span[0] < r.begin <= span[1]]
    assert len(inside) == 1, f"{ex.function} holds {len(inside)} solution regions"


def test_every_region_of_the_package_belongs_to_an_exercise():
    owned = {(e.file, e.function) for e in EXERCISES}
    for path in sorted((ROOT / "minidiff").rglob("*.py")):
        source = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        for region in find_regions(source, relative):
            owners = [f for file, f in owned if file == relative
                      and (span := function_span(source, f)) and span[0] < region.begin <= span[1]]
            assert len(owners) == 1, f"{relative}:{region.begin} belongs to {owners}"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.name)
def test_graded_tests_and_tutorial_exist(ex):
    assert ex.visible and ex.hidden
    assert not set(ex.visible) & set(ex.hidden)
    for test in ex.tests:
        file, name = test.split("::")
        assert function_span((ROOT / file).read_text(), name) is not None, test
    assert (ROOT / "tutorials" / ex.tutorial).is_file()


def test_names_are_unique_and_the_tables_of_tests_name_known_exercises_and_tests():
    names = [e.name for e in EXERCISES]
    assert len(names) == len(set(names)) >= 10
    assert set(HIDDEN_TESTS) == set(names) and set(DEPENDENT_TESTS) <= set(names)
    for e in EXERCISES:
        assert not set(e.dependent) & set(e.tests), e.name
        for test in e.dependent:
            file, name = test.split("::")
            assert not file.startswith("tests/course/"), test
            assert function_span((ROOT / file).read_text(), name) is not None, test
        assert e.points > 0 and e.task and e.equation
        assert e.message.startswith(f"{e.name}: ")


def test_resolve_by_names_layer_or_all():
    assert resolve_exercises() == EXERCISES
    assert [e.name for e in resolve_exercises("q_sample, posterior,q_sample")] == [
        "q_sample", "posterior"]
    assert all(e.layer == 1 for e in resolve_exercises(layer=1))
    assert exercise("adam").layer == 2
    assert exercises_of_layer(3)


@pytest.mark.parametrize("names, layer, match", [
    ("nope", None, "unknown exercise 'nope'"),
    (" , ", None, "at least one"),
    ("adam", 1, "not both"),
    (None, 9, "layer must be one of"),
])
def test_bad_choices_raise_naming_the_value(names, layer, match):
    with pytest.raises(ValueError, match=match):
        resolve_exercises(names, layer)
