"""The assignments of a notebook's parameters cell (for the sidebar's form); the rule: :mod:`..parameters_cell`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..notebook_file import read_notebook
from ..parameters_cell import assignments, parameters_cell_index


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """``{"has_cell": bool, "parameters": [{"name", "value", "type"}]}``; values are source text."""
    nb = read_notebook(notebook)
    index = parameters_cell_index(nb.cells)
    if index is None:
        return {"has_cell": False, "parameters": []}
    return {"has_cell": True, "parameters": [{"name": a.name, "value": a.text, "type": a.kind}
                                             for a in assignments(str(nb.cells[index].source))]}
