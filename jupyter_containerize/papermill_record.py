"""What papermill writes into an executed notebook, so tools that read papermill outputs read a job's.

The notebook's ``metadata.papermill`` (parameters, times, exception), each code cell's
``metadata.papermill`` (times and status) and, when a cell fails, papermill's two red error-marker
cells: one at the top linking to the failing cell, one right above it. Markers of an earlier run are
removed first. Standard library only: the build context copies this file beside the runner.
"""

from __future__ import annotations

import datetime
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


def error_markers(execution_count: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cell for the top of the notebook and the one to put right above the failing cell."""
    def cell(source: str) -> dict[str, Any]:
        return {"cell_type": "markdown", "metadata": {"tags": [ERROR_MARKER_TAG]}, "source": source}

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


def cell_metadata(*, start: str, end: str, duration: float, failed: bool) -> dict[str, Any]:
    """A code cell's ``metadata.papermill``."""
    return {"start_time": start, "end_time": end, "duration": duration, "status": "failed" if failed else "completed",
            "exception": failed}
