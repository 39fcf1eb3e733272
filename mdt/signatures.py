"""Constructors' signatures as recipes see them: which keys a component takes, what
each value must be (its annotation, its range, else its default's type), and how a value
is written in messages."""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mdt.ranges import RANGES
from mdt.toml_text import toml_value


def parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a component's constructor."""
    params = inspect.signature(factory).parameters
    return {n: p for n, p in params.items() if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations are not checked, not fatal
        return {}


DEFAULT_TYPES = (bool, int, float, str)  # bool first: True is an int too


def expected_type(param: inspect.Parameter, hints: Mapping[str, Any]) -> Any:
    """What a key's value must be: its annotation, or, where a plugin left the argument
    unannotated, the type of its default (``width=64`` takes an integer, ``names=[]`` a
    list), so a wrong value is refused when the recipe is checked rather than deep in a
    build. No annotation and no default (or a default of None): anything."""
    annotation = hints.get(param.name, param.annotation)
    if annotation is not inspect.Parameter.empty or param.default in (inspect.Parameter.empty, None):
        return annotation
    default = param.default
    if isinstance(default, (list, tuple)):
        return list
    if isinstance(default, dict):
        return dict
    return next((t for t in DEFAULT_TYPES if isinstance(default, t)), inspect.Parameter.empty)


def range_text(expected: Any) -> str | None:
    """What an argument's range annotation allows, as ``mdt list`` shows it ("an integer of
    at least 1", "one of 'offline', 'online'")."""
    if typing.get_origin(expected) is typing.Literal:
        return "one of " + ", ".join(format_value(a) for a in typing.get_args(expected))
    if typing.get_origin(expected) is not typing.Annotated:
        return None
    base, *extras = typing.get_args(expected)
    ranges = [r.describe() for r in extras if isinstance(r, RANGES)]
    return f"{problem_noun(base)} {' and '.join(ranges)}" if ranges else None


def value_text(param: inspect.Parameter, hints: Mapping[str, Any]) -> str | None:
    """What ``mdt list`` says an argument takes: its range ("an integer of at least 1"),
    else its type ("a list", "a number"), else None (anything)."""
    expected = expected_type(param, hints)
    options = [expected]
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(expected) if a is not type(None)]
    texts = [range_text(option) or type_problem(_ANY_VALUE, option) for option in options]
    return " or ".join(t for t in texts if t) or None


_ANY_VALUE = object()  # fits no type: type_problem then names the type


def type_problem(value: Any, expected: Any) -> str | None:
    """None when ``value`` fits the annotation ``expected``, else what was expected."""
    if expected in (inspect.Parameter.empty, Any, object):
        return None
    origin = typing.get_origin(expected)
    if origin is typing.Annotated:
        return _annotated_problem(value, *typing.get_args(expected))
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        problems = [type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(format_value(a) for a in args)
    if expected in (bool, int, float, str):
        return _scalar_problem(value, expected)
    if origin in (list, tuple, Sequence) or expected in (list, tuple):
        return _list_problem(value, origin, args)
    if origin is dict or expected is dict:
        return _table_problem(value, args)
    if isinstance(expected, type) and issubclass(expected, Path):
        return None if isinstance(value, str) else "a path (a string)"
    return None


def _annotated_problem(value: Any, base: Any, *extras: Any) -> str | None:
    """A value of ``Annotated[base, range, ...]``: of the base type, and within every range."""
    problem = type_problem(value, base)
    ranges = [r for r in extras if isinstance(r, RANGES)]
    if ranges and isinstance(value, float) and not math.isfinite(value):
        noun = "a finite number" if base is float else problem_noun(base)
        return f"{noun} {' and '.join(r.describe() for r in ranges)}"
    if problem or not ranges or not isinstance(value, (int, float)):
        return problem
    out_of_range = [p for r in ranges if (p := r.problem(value))]
    return f"{problem_noun(base)} {out_of_range[0]}" if out_of_range else None


def _scalar_problem(value: Any, expected: type) -> str | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is bool:
        return None if isinstance(value, bool) else "true or false"
    if expected is int:  # TOML's integers are 64-bit; Python's parser takes any
        whole = isinstance(value, int) and not isinstance(value, bool)
        return None if whole and -(2**63) <= value < 2**63 else "an integer (64-bit)" if whole else "an integer"
    if expected is float:  # a recipe's inf or nan would only fail later, mid-run
        return None if number and math.isfinite(value) else "a finite number" if number else "a number"
    return None if isinstance(value, str) else "a string"


def _list_problem(value: Any, origin: Any, args: tuple) -> str | None:
    if not isinstance(value, list):
        return "a list"
    item = args[0] if args else Any
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis) and len(args) != len(value):
        return f"a list of {len(args)} items"
    for element in value:
        problem = type_problem(element, item)
        if problem:
            return f"a list whose items are {problem}"
    return None


def _table_problem(value: Any, args: tuple) -> str | None:
    if not isinstance(value, dict):
        return "a table"
    key_type, value_type = args if len(args) == 2 else (Any, Any)
    for key, item in value.items():
        if type_problem(key, key_type) or type_problem(item, value_type):
            return f"a table of {_noun(key_type)} keys and {_noun(value_type)} values"
    return None


def _noun(expected: Any) -> str:
    """What a table's keys or values are, for a message ("number", "string")."""
    return {str: "string", int: "integer", float: "number", bool: "true or false"}.get(expected, "any")


def problem_noun(expected: Any) -> str:
    return "an integer" if expected is int else "a number"


def format_value(value: Any) -> str:
    return toml_value(value)
