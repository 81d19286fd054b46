"""``log_metric``: record a number from a notebook, on the host or in a container job.

Standard library only: this module is also copied into every image as
``/opt/jc/shim/jupyter_containerize/metrics.py`` (re-exported by the shim package) so that
``from jupyter_containerize import log_metric`` works in the container, where the
package itself is not installed.

Where: ``$JC_OUTPUT_DIR`` (the runner sets it), else ``/output`` when it exists (a
container job), else the current folder. Two files:

- ``metrics.json``: ``{name: latest value}``, merged and replaced atomically, so a
  hand-written flat ``metrics.json`` and this helper agree; the runner reads it and
  emits ``MetricLogged`` events, which keeps notebook output free of markers.
- ``metrics.jsonl``: one line per call (``name``, ``value``, ``step``, ``time``), the
  history for curves.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["log_metric", "metrics_dir"]

CONTAINER_OUTPUT = "/output"


def metrics_dir() -> Path:
    """The folder ``log_metric`` writes to."""
    env = os.environ.get("JC_OUTPUT_DIR")
    if env:
        return Path(env)
    if os.path.isdir(CONTAINER_OUTPUT):
        return Path(CONTAINER_OUTPUT)
    return Path.cwd()


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record ``value`` as the latest value of metric ``name``.

    Args:
        name: Metric name, e.g. ``"accuracy"``.
        value: A finite number (NaN and infinities are not valid JSON).
        step: Optional step or epoch, kept in the history file.

    Raises:
        TypeError: ``name`` is not a string or ``value`` is not a number.
        ValueError: ``name`` is empty or ``value`` is not finite.
    """
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError("metric name must not be empty")
    number = _number(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} is not finite: {number}")
    folder = metrics_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _merge_latest(folder / "metrics.json", name, number)
    record = {"name": name, "value": number, "step": step, "time": time.time()}
    # One write() of one short line with O_APPEND: concurrent writers do not interleave.
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _number(value: Any) -> int | float:
    """An int stays an int (a count, a number of trees), numpy's integers too; other numbers become floats."""
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            return operator.index(value)
    try:
        return float(value)  # floats, numpy's floating scalars and the like
    except (TypeError, ValueError):
        raise TypeError(f"metric value must be a number, not {type(value).__name__}") from None


def _merge_latest(path: Path, name: str, value: float) -> None:
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(current, dict):
            current = {}
    except (OSError, ValueError):
        current = {}
    current[name] = value
    fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(current, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the host user must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
