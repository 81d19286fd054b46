"""Parameters checked against the notebook's parameters cell, before anything is built.

One implementation for the CLI, the magic and REST (they all reach
:func:`jupyter_containerize.jobs.pipeline.checked_spec`):

- a name the parameters cell does not set is refused, with a did-you-mean;
- a value is coerced to the type of the cell's literal default (``int``, ``float``, ``bool``,
  ``str``, ``list``, ``tuple``, ``dict``; an annotation such as ``lr: float = None`` counts
  too), or refused in one sentence. A default that is ``None`` or an expression takes any value.

Coercion widens what papermill's typing gives (``-p lr 1`` → ``1.0`` for a float default,
``-p tags a,b`` → ``['a', 'b']`` for a list default, the sidebar's text ``"30"`` → ``30``); it
never narrows a value silently (``2.5`` is refused for an ``int`` default).
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import OptionError, listing
from .parameters_cell import assignments

_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "tuple": tuple,
                           "dict": dict}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_EXAMPLES = {"int": "a whole number such as 10", "float": "a number such as 0.01", "bool": "True or False",
             "str": "text", "list": "a list such as [1, 2] or 1,2", "tuple": "a tuple such as (1, 2) or 1,2",
             "dict": "a mapping such as {'a': 1}"}


@dataclass(frozen=True)
class Declared:
    """A name the parameters cell sets: its default's source and the type a value must have (None: any)."""

    name: str
    default: str
    kind: str | None


def declared(source: str) -> dict[str, Declared]:
    """Every name the cell binds at its top level, typed where its default is a literal (or annotated).

    Raises:
        OptionError: the cell does not parse, so nothing can be checked against it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise OptionError(f"The parameters cell does not parse ({e.msg}, line {e.lineno}), so the parameters "
                          "cannot be checked against it", "Fix the cell in Jupyter, then run again.") from None
    names: dict[str, Declared] = {}
    for node in ast.walk(tree):  # tuple targets, loops, with …: known names, of no known type
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.setdefault(node.id, Declared(node.id, "", None))
    for found in assignments(source):
        kind = found.kind if found.kind in _TYPES else None
        names[found.name] = Declared(found.name, found.text, kind)
    for node in tree.body:  # `lr: float = None` is a float
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(node.annotation, ast.Name) and node.annotation.id in _TYPES):
            names[node.target.id] = Declared(node.target.id, names[node.target.id].default, node.annotation.id)
    return names


def check_parameters(source: str, given: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """``given`` with each value coerced to its parameter's type, in the order given.

    Raises:
        OptionError: an unknown name (with a did-you-mean) or a value of the wrong type.
    """
    known = declared(source)
    checked: dict[str, Any] = {}
    for name, value in given.items():
        checked[name] = coerce(_declared_as(known, name, notebook), value, notebook)
    return checked


def check_sweep(source: str, sweep: Mapping[str, Sequence[Any]], notebook: str) -> dict[str, tuple[Any, ...]]:
    """A sweep's values, each checked as :func:`check_parameters` does."""
    known = declared(source)
    return {name: tuple(coerce(_declared_as(known, name, notebook), v, notebook) for v in values)
            for name, values in sweep.items()}


def _declared_as(known: Mapping[str, Declared], name: str, notebook: str) -> Declared:
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    guess = f": did you mean {close[0]}?" if close else ""
    sets = f"Its parameters cell sets {listing(sorted(known))}" if known else "Its parameters cell sets no names"
    raise OptionError(f"{notebook} has no parameter {name}{guess}",
                      f"{sets}; fix the name, or add `{name} = …` to that cell.")


def coerce(param: Declared, value: Any, notebook: str) -> Any:
    """``value`` as the parameter's type, or an :class:`OptionError` in one sentence."""
    if param.kind is None or value is None:
        return value
    result = _COERCE[param.kind](value)
    if result is _REFUSED:
        default = f" (default {param.default})" if param.default else ""
        raise OptionError(f"{param.name} is {_article(param.kind)} {param.kind} in {notebook}'s parameters cell"
                          f"{default}, and {value!r} is not one",
                          f"Pass {_EXAMPLES[param.kind]}, e.g. -p {param.name} {param.default or '…'}.")
    return result


_REFUSED: Any = object()


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _REFUSED


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _REFUSED
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else _REFUSED
    if isinstance(value, str):
        parsed = _literal(value.replace("_", "")) if value.strip() else _REFUSED
        return _to_int(parsed) if isinstance(parsed, (int, float)) else _REFUSED
    return _REFUSED


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _REFUSED
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # also nan, inf, 1e-3
        except ValueError:
            return _REFUSED
    return _REFUSED


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return _REFUSED


def _to_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    return _REFUSED


def _sequence(kind: type) -> Any:
    def to(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return kind(value)
        if not isinstance(value, str):
            return _REFUSED
        parsed = _literal(value)
        if isinstance(parsed, (list, tuple)):
            return kind(parsed)
        from .options import papermill_value  # 1,2 → [1, 2]: each item typed as papermill types a value

        return kind(papermill_value(item.strip()) for item in value.split(",") if item.strip())
    return to


def _to_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    parsed = _literal(value) if isinstance(value, str) else _REFUSED
    return parsed if isinstance(parsed, dict) else _REFUSED


_COERCE = {"int": _to_int, "float": _to_float, "bool": _to_bool, "str": _to_str, "list": _sequence(list),
           "tuple": _sequence(tuple), "dict": _to_dict}
