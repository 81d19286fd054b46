"""Cells run in a real ipykernel (driven by nbclient), and the text they showed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def execute(folder: Path, *sources: str, raises: tuple[int, ...] = (), timeout: int = 900) -> Any:
    """Run cells in a fresh kernel whose folder is ``folder``; cells listed in ``raises`` may fail."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    for i in raises:
        nb.cells[i].metadata["tags"] = ["raises-exception"]
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, store_widget_state=True,
                            resources={"metadata": {"path": str(folder)}})
    client.execute()
    return nb


def text_of(cell: Any) -> str:
    """The text a cell showed: its streams, plain-text results and tracebacks."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(str(out.data.get("text/plain", "")))
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
    return "".join(parts)
