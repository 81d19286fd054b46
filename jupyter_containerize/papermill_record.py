"""What papermill writes into an executed notebook, so tools that read papermill outputs read a job's.

The notebook's ``metadata.papermill`` (parameters, times, exception), every cell's
``metadata.papermill`` (times and status: ``pending`` until its turn, so the cells after a failure stay
pending; markdown cells are ``completed`` as they are passed) and, when a cell fails, papermill's two
red error-marker cells: one at the top linking to the failing cell, one right above it. Markers of an
earlier run are removed first. As papermill records it, ``exception`` is ``None`` after a run without
error, and ``True`` when a cell raised, ``sys.exit(0)`` included (that run still succeeds: exit 0, no
markers). Standard library only: the build context copies this file beside the runner.

Where a job's record differs from papermill's, on purpose (tests/integration/test_papermill_compat.py
holds both to it): ``input_path`` and ``output_path`` are the paths in the container (``/work/…``,
``/output/…``), not the host's; ``default_parameters`` holds the parameters cell's literal defaults
(papermill leaves it empty); there is no ``version`` key (no papermill ran); cells without tags get
no empty ``tags`` list.

The executed notebook's own name is here too (:func:`output_notebook_name`, ``<stem>.<job id>.ipynb``), with
the host's way to find it among a job's outputs (:func:`find_output_notebook`): the runner and the host read
the one rule.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterable, Mapping, MutableSequence
from typing import Any

ERROR_MARKER_TAG = "papermill-error-cell-tag"
NOTEBOOK_SUFFIX = ".ipynb"
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what may go into a file name (job ids are 12 hex digits)
_STYLE = 'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"'
_AT_TOP = "<span " + _STYLE + ">An Exception was encountered at '<a href=\"#papermill-error-cell\">In [{count}]</a>'.</span>"
_HERE = ('<span id="papermill-error-cell" ' + _STYLE + ">Execution using papermill encountered an exception here "
         "and stopped:</span>")


def now() -> str:
    """An ISO timestamp as papermill writes them."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def remove_error_markers(cells: MutableSequence[Any]) -> None:
    """Drop the error-marker cells of an earlier run (papermill's or ours)."""
    cells[:] = [c for c in cells if ERROR_MARKER_TAG not in ((c.get("metadata") or {}).get("tags") or [])]


def error_markers(execution_count: int | None, *, ids: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cell for the top of the notebook and the one to put right above the failing cell.

    ``ids``: give each a cell id, as nbformat 4.5 and later require (papermill's cells have one too).
    """
    def cell(source: str) -> dict[str, Any]:
        marker = {"cell_type": "markdown", "metadata": {"tags": [ERROR_MARKER_TAG]}, "source": source}
        return {"id": uuid.uuid4().hex[:8], **marker} if ids else marker

    return cell(_AT_TOP.format(count=execution_count if execution_count is not None else " ")), cell(_HERE)


def notebook_metadata(parameters: Mapping[str, Any], *, input_path: str, output_path: str, start: str,
                      end: str | None = None, duration: float | None = None, exception: bool | None = None,
                      default_parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The notebook's ``metadata.papermill``, with papermill's keys."""
    return {
        "default_parameters": dict(default_parameters or {}),
        "parameters": dict(parameters),
        "environment_variables": {},
        "input_path": input_path,
        "output_path": output_path,
        "start_time": start,
        "end_time": end,
        "duration": duration,
        "exception": exception,
    }


def pending_cell_metadata() -> dict[str, Any]:
    """A cell's ``metadata.papermill`` before its turn (papermill resets every cell so when a run starts)."""
    return {"exception": None, "start_time": None, "end_time": None, "duration": None, "status": "pending"}


def cell_metadata(*, start: str, end: str, duration: float, failed: bool) -> dict[str, Any]:
    """A cell's ``metadata.papermill`` once its turn is over."""
    return {"start_time": start, "end_time": end, "duration": duration, "status": "failed" if failed else "completed",
            "exception": failed}


def output_notebook_name(notebook_name: str, job_id: str) -> str:
    """The executed notebook's file name in the output folder: ``<stem>.<job id>.ipynb``.

    ``train.ipynb`` of job ``3f2a9c01b2d4`` is saved as ``train.3f2a9c01b2d4.ipynb``, so that its JupyterLab
    tab is not taken for the source's. Without a job id (the runner started by hand, an exported
    ``compose.yaml``), or with one that cannot be part of a file name, the notebook keeps its own name.
    """
    if not _JOB_ID.fullmatch(job_id):
        return notebook_name
    stem = notebook_name[:-len(NOTEBOOK_SUFFIX)] if notebook_name.endswith(NOTEBOOK_SUFFIX) else notebook_name
    return f"{stem}.{job_id}{NOTEBOOK_SUFFIX}"


def find_output_notebook(outputs: Iterable[str], job_id: str = "") -> str | None:
    """The executed notebook among a job's output paths, else None.

    The one named for ``job_id`` (:func:`output_notebook_name`) when there is one; else the notebook
    nearest the top of the folder (the executed one sits at its top, a notebook the job wrote in a
    subfolder of its working folder lower), the first listed among equals.
    """
    notebooks = [p for p in outputs if p.endswith(NOTEBOOK_SUFFIX)]
    if job_id and _JOB_ID.fullmatch(job_id):
        named = next((p for p in notebooks if p.endswith(f".{job_id}{NOTEBOOK_SUFFIX}")), None)
        if named is not None:
            return named
    return min(notebooks, key=lambda p: p.replace("\\", "/").count("/"), default=None)
