"""Tests of `minidiff.sections`: settings trees of frozen dataclasses read by dotted path,
set from ``path=value`` strings (bare names where unique, ambiguity refused with the
candidates), parsed by each field's type, and carried as plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.sections import assign, from_plain, leaves, parse_value, to_plain


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    size: int = 3
    widths: tuple[int, ...] = (1, 2)
    limit: int | None = None


@dataclass(frozen=True)
class Other:
    size: int = 7  # "size" is in two sections: a bare "size" is ambiguous
    mode: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


@dataclass(frozen=True)
class Tree:
    name: str = "tree"
    inner: Inner = Inner()
    other: Other = Other()


def test_leaves_are_every_plain_setting_by_dotted_path():
    """A field holding a dataclass is a section: its fields are listed under its name."""
    paths = [leaf.path for leaf in leaves(Tree())]
    assert paths == ["name", "inner.rate", "inner.size", "inner.widths", "inner.limit",
                     "other.size", "other.mode"]  # fmt: skip


def test_assign_by_path_or_unique_bare_name():
    """``inner.rate=`` and ``rate=`` set the same setting; the original is unchanged."""
    tree = Tree()
    assert assign(tree, ["inner.rate=0.25"]) == assign(tree, ["rate=0.25"])
    changed = assign(tree, ["mode=b", "other.size=2", "widths=", "limit=none"])
    assert changed.other == Other(size=2, mode="b")
    assert (changed.inner.widths, changed.inner.limit) == ((), None)
    assert tree == Tree()


def test_an_ambiguous_bare_name_is_refused_with_the_candidates():
    """A bare name that ends several paths is a ValueError listing them."""
    with pytest.raises(ValueError, match=r"'size' is ambiguous.*'inner.size', 'other.size'"):
        assign(Tree(), ["size=2"])


@pytest.mark.parametrize(
    ("assignment", "match"),
    [("size", "field=value"), ("colour=red", "unknown field 'colour'.*'inner.rate'"),
     ("inner.colour=1", "unknown field 'inner.colour'"), ("name=x", "unknown field 'name'"),
     ("other.size=0", "size must be >= 1"), ("mode=c", "'c' for field 'mode'.*\\('a', 'b'\\)")],
)  # fmt: skip
def test_bad_assignments_are_refused_by_name(assignment, match):
    """No ``=``, an unknown or fixed path, a value the section refuses or outside a
    Literal's options: a ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        assign(Tree(), [assignment], fixed=("name",))


def test_assignments_apply_together():
    """All assignments reach each section in one construction, so intermediate values are
    never checked, and a later assignment to the same path wins."""
    assert assign(Tree(), ["other.size=0", "other.size=4"]).other.size == 4


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [("3", int, 3), (" 2.5 ", float, 2.5), ("yes", bool, True), ("0", bool, False),
     ("1,2,3", tuple[int, ...], (1, 2, 3)), ("", tuple[int, ...], ()),
     ("0.9, 0.99", tuple[float, float], (0.9, 0.99)), ("None", int | None, None),
     ("4", int | None, 4), ("b", Literal["a", "b"], "b")],
)  # fmt: skip
def test_parse_value_by_type(text, kind, value):
    """Each annotation parses its text form."""
    assert parse_value("f", text, kind) == value


@pytest.mark.parametrize(
    ("text", "kind"),
    [("x", int), ("nan", float), ("inf", float), ("maybe", bool), ("1", tuple[int, int]),
     ("", str)],
)  # fmt: skip
def test_parse_value_refuses_text_of_another_type(text, kind):
    """A text that is not of the field's type (non-finite floats included) is refused."""
    with pytest.raises(ValueError, match="for field 'f'"):
        parse_value("f", text, kind)


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(allow_nan=False, allow_infinity=False),
    widths=st.lists(st.integers(-5, 5), max_size=4).map(tuple),
    size=st.integers(1, 100),
    limit=st.none() | st.integers(),
)
def test_plain_data_round_trips_through_json(rate, widths, size, limit):
    """from_plain(json(to_plain(x))) == x for arbitrary values: tuples come back as tuples."""
    inner = Inner(rate=rate, widths=widths, size=size, limit=limit)
    assert from_plain(Inner, json.loads(json.dumps(to_plain(inner)))) == inner
    assert to_plain(Tree(inner=inner))["inner"]["widths"] == list(widths)


def test_from_plain_refuses_unknown_fields_and_non_mappings():
    """Unknown fields are named; a non-mapping is refused; a missing field takes its
    default."""
    with pytest.raises(ValueError, match=r"here has unknown fields \['colour'\]"):
        from_plain(Inner, {"colour": 1}, "here")
    with pytest.raises(ValueError, match="must be a mapping"):
        from_plain(Inner, [1], "here")
    assert from_plain(Inner, {"size": 9}) == Inner(size=9)
