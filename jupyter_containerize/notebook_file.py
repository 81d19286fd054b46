"""The one reader of notebook files: any nbformat Jupyter opens (2, 3, 4), as nbformat 4.

Every host-side reader (render, parameters, verify, export, the pipeline's checks) goes
through :func:`read_notebook`, so a notebook saved by an old Jupyter runs like a new one.
The in-container runner cannot import the package: it reads the upgraded copy the
build context holds (see :func:`.render.context.normalized_notebook`).

Upgrading is deterministic: the cell ids nbformat 4.5 needs are ``cell-<index>`` rather
than nbformat's random ones, so the same old notebook always gives the same image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from .errors import NotebookError

CURRENT = 4


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` as an nbformat 4 ``NotebookNode`` (older formats upgraded).

    Raises:
        NotebookError: the file cannot be read, is not JSON, or is not a Jupyter notebook.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"The notebook {path} cannot be read ({exc.strerror or exc})", "Check the path.") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise NotebookError(f"The notebook {path} is not valid JSON ({exc})", "Open and save it in Jupyter.") from None
    return as_current(data, path)


def as_current(data: Any, path: Path) -> Any:
    """A notebook's parsed JSON as an in-memory nbformat 4 notebook (what ``nbformat.read`` gives).

    Multi-line fields are joined into strings; an older notebook is upgraded. Unlike
    ``nbformat.read`` nothing random is added: no validation pass inventing cell ids.

    Raises:
        NotebookError: ``data`` is not a notebook of a format nbformat knows.
    """
    if not isinstance(data, dict):
        raise _not_a_notebook(path)
    version = data.get("nbformat", CURRENT if "cells" in data else None)
    if isinstance(version, int) and version > CURRENT:
        raise NotebookError(f"The notebook {path} has nbformat {version}, newer than this tool reads",
                            "Save it from a Jupyter that writes nbformat 4, or upgrade jupyter-containerize.")
    cells = data.get("cells") if version in (1, CURRENT) else data.get("worksheets")
    if not isinstance(version, int) or version not in nbformat.versions or not isinstance(cells, list):
        raise _not_a_notebook(path)
    try:
        nb = nbformat.versions[version].to_notebook_json(data, minor=data.get("nbformat_minor", 0))
        if version == CURRENT:
            return nb
        upgraded = nbformat.convert(nb, CURRENT)
    except Exception as exc:  # noqa: BLE001 - nbformat raises assorted errors on damaged files
        raise NotebookError(f"The notebook {path} (nbformat {version}) cannot be read as nbformat 4 ({exc})",
                            "Open and save it in Jupyter, which upgrades it.") from None
    for index, cell in enumerate(upgraded.get("cells", [])):
        if "id" in cell:
            cell["id"] = f"cell-{index}"
    return upgraded


def _not_a_notebook(path: Path) -> NotebookError:
    return NotebookError(f"The file {path} is not a Jupyter notebook", "Give an .ipynb file.")
