"""The assignments of a notebook's cell tagged ``parameters`` (for the sidebar's form)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ..notebook_file import read_notebook


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """``{"has_cell": bool, "parameters": [{"name", "value", "type"}]}``; values are source text."""
    nb = read_notebook(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return {"has_cell": True, "parameters": assignments(str(cell.source))}
    return {"has_cell": False, "parameters": []}


def assignments(source: str) -> list[dict[str, str]]:
    """Top-level ``name = value`` (and annotated) assignments, in order, values as written."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[dict[str, str]] = []
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
        out.append({"name": target.id, "value": text, "type": _kind(value)})
    return out


def _kind(node: ast.expr) -> str:
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return "expression"
    return type(value).__name__
