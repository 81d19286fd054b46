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
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, MutableSequence
from typing import Any

ERROR_MARKER_TAG = "papermill-error-cell-tag"
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
