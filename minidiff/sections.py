"""Settings as a tree of frozen dataclasses: named paths, ``path=value`` strings, plain data.

A `minidiff.configs.Preset` holds one frozen dataclass per section (``data``, ``model``,
``diffusion``, ``training``, ``sampling``), each holding plain values. This module knows
nothing of presets; it works on any such tree:

- `leaves(obj)`: every plain setting by its dotted path, ``"training.lr"``;
- `assign(obj, ["training.lr=1e-3", "T=100"])`: a copy with settings parsed from strings by
  each field's type; a bare name stands for the one path that ends in it;
- `to_plain(obj)` / `from_plain(cls, data)`: JSON-ready data and back.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator, Sequence
from dataclasses import Field, fields, is_dataclass, replace
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin, get_type_hints

__all__ = [
    "Leaf",
    "assign",
    "from_plain",
    "leaves",
    "parse_value",
    "to_plain",
]


class Leaf(NamedTuple):
    """One plain setting of a tree: its dotted path, its field and its type."""

    path: str
    field: Field
    kind: Any


def leaves(obj: Any, prefix: str = "") -> Iterator[Leaf]:
    """Every field of the dataclass ``obj`` that does not hold a dataclass, depth first,
    by dotted path (a field holding a dataclass is a section: its own fields are listed)."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value) and not isinstance(value, type):
            yield from leaves(value, f"{prefix}{f.name}.")
        else:
            yield Leaf(f"{prefix}{f.name}", f, hints[f.name])


def parse_value(name: str, text: str, kind: Any) -> Any:
    """Parse ``text`` as a value of type ``kind`` (the annotation of field ``name``):
    int, float (finite), bool (true/false, 1/0, yes/no), str, a Literal's options, tuples
    as comma-separated items (an empty text is the empty tuple), ``none`` for an optional.

    Raises:
        ValueError: naming the field, the value and the expected type.
    """
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip().lower() == "none":
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_value(name, text, option)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0] if len(errors) == 1 else "; ".join(errors))
    if origin is Literal:
        if text in args:
            return text
        raise ValueError(f"bad value {text!r} for field {name!r}: expected one of {args}")
    if origin is tuple:
        items = [item.strip() for item in text.split(",")] if text.strip() else []
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(name, item, args[0]) for item in items)
        if len(items) != len(args):
            raise ValueError(f"bad value {text!r} for field {name!r}: expected "
                             f"{len(args)} comma-separated values")  # fmt: skip
        return tuple(parse_value(name, item, a) for item, a in zip(items, args, strict=True))
    text = text.strip()
    if kind is bool:
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() in truth:
            return truth[text.lower()]
    elif kind is int:
        try:
            return int(text)
        except ValueError:
            pass
    elif kind is float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    elif kind is str:
        if text:
            return text
    type_name = getattr(kind, "__name__", str(kind))
    raise ValueError(f"bad value {text!r} for field {name!r}: expected {type_name}")


def _resolve(name: str, paths: dict[str, Leaf]) -> Leaf:
    """The leaf named by a dotted path, or by a bare name that ends exactly one path."""
    if name in paths:
        return paths[name]
    candidates = [path for path in paths if "." not in name and path.endswith(f".{name}")]
    if len(candidates) == 1:
        return paths[candidates[0]]
    if candidates:
        raise ValueError(f"field {name!r} is ambiguous: write one of {tuple(candidates)}")
    raise ValueError(f"unknown field {name!r}; expected one of {tuple(paths)}")


def _apply(obj: Any, changes: dict[str, Any]) -> Any:
    """``obj`` with ``changes`` ({name: value or {name: ...}}) applied in one `replace`
    per dataclass, so that each validates the final values only."""
    return replace(obj, **{
        name: _apply(getattr(obj, name), value) if isinstance(value, dict) else value
        for name, value in changes.items()
    })  # fmt: skip


def assign(obj: Any, assignments: Sequence[str], *, fixed: Sequence[str] = ()) -> Any:
    """A copy of the dataclass tree ``obj`` with settings from ``"path=value"`` strings.

    ``path`` is a dotted path (``training.lr``) or a bare field name that ends exactly one
    path (``lr``); values are parsed by `parse_value`. All assignments are applied
    together, so their order does not matter and each dataclass checks the final values.

    Args:
        obj: a frozen dataclass whose sections are frozen dataclasses.
        assignments: ``"path=value"`` strings; a later one for the same path wins.
        fixed: paths that may not be assigned (e.g. a preset's name).

    Raises:
        ValueError: an assignment without ``=``, an unknown path (the message lists the
            paths), a bare name that ends several paths (the message lists them), a value
            that does not parse, or values a dataclass refuses.
    """
    paths = {leaf.path: leaf for leaf in leaves(obj) if leaf.path not in fixed}
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep:
            raise ValueError(f"override {assignment!r} must have the form field=value")
        leaf = _resolve(name.strip(), paths)
        *sections, last = leaf.path.split(".")
        target = changes
        for section in sections:
            target = target.setdefault(section, {})
        target[last] = parse_value(last, text, leaf.kind)
    return _apply(obj, changes)


def to_plain(obj: Any) -> dict[str, Any]:
    """The dataclass tree ``obj`` as JSON-ready data: dicts, lists for tuples, scalars."""

    def plain(value: Any) -> Any:
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value

    return plain(obj)


def from_plain(cls: type, data: Any, where: str = "settings") -> Any:
    """The dataclass ``cls`` from `to_plain` data of its plain fields (lists become the
    tuples that the fields' types ask for; a missing field takes its default).

    Raises:
        ValueError: not a mapping, unknown fields (named), or values ``cls`` refuses.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}; expected some of {sorted(names)}")
    values = {name: _tuples(value, hints[name]) for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{where}: {err}") from err


def _tuples(value: Any, kind: Any) -> Any:
    """``value`` with lists turned into tuples where ``kind`` (or an option of it) is one."""
    kinds = get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)
    if isinstance(value, list) and any(get_origin(k) is tuple for k in kinds):
        return tuple(value)
    return value
