"""The one rule for a notebook's parameters cell, papermill's: the first code cell tagged ``parameters``.

Used by the runner in the job (which injects the ``injected-parameters`` cell after it), by the
pre-run check, by the sidebar's form and by ``export``'s ``train.py``. Standard library only: the
build context copies this file beside the runner, which runs without the package.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def _tags(cell: Mapping[str, Any]) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def parameters_cell_index(cells: Sequence[Mapping[str, Any]]) -> int | None:
    """Index of the first code cell tagged ``parameters`` (injected cells aside), else ``None``."""
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and TAG in _tags(cell):
            return i
    return None


def is_injected(cell: Mapping[str, Any]) -> bool:
    """Whether ``cell`` is an ``injected-parameters`` cell (of an earlier run, papermill's or ours)."""
    return INJECTED_TAG in _tags(cell)


@dataclass(frozen=True)
class Assignment:
    """``name = value`` at the top of the parameters cell: the value's source text and, if literal, the value."""

    name: str
    text: str
    kind: str  # the literal's type name (int, float, str, bool, list…), or "expression"
    value: Any = None


def assignments(source: str) -> list[Assignment]:
    """Top-level ``name = value`` (and annotated) assignments of a cell, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[Assignment] = []
    for node in tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if not isinstance(target, ast.Name) or value is None:
            continue
        text = ast.get_source_segment(source, value) or ast.unparse(value)
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            out.append(Assignment(target.id, text, "expression"))
        else:
            out.append(Assignment(target.id, text, type(literal).__name__, literal))
    return out


def describe(cells: Sequence[Mapping[str, Any]], name: str) -> str:
    """The notebook's parameters with their inferred types and defaults, as papermill's ``--help-notebook``."""
    index = parameters_cell_index(cells)
    head = f"Parameters inferred for notebook '{name}':\n"
    if index is None:
        return head + "  none: no code cell is tagged 'parameters' (tag one in Jupyter: View > Cell Toolbar > Tags).\n"
    raw = cells[index].get("source", "")
    source = "".join(raw) if isinstance(raw, list) else str(raw)
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return head + (f"  the parameters cell (cell {index + 1}) does not parse: {exc.msg} at line {exc.lineno}; "
                       "fix it in Jupyter.\n")
    found = assignments(source)
    if not found:
        return head + f"  none: the parameters cell (cell {index + 1}) assigns no names.\n"
    width = max(len(a.name) for a in found)
    return head + "".join(f"  {a.name.ljust(width)}: {a.kind} (default {a.text})\n" for a in found)
