"""Plain-text rendering of job events: the CLI's output and the widgets' fallback.

Lines, not a flood: build log lines and cell output are passed through, but
repeated progress of the same kind is rate-limited. The job's state is the one fold
of :mod:`jupyter_containerize.progress`, the same the widget view keeps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from .events import (
    BuildFinished,
    BuildLog,
    BuildStarted,
    BuildStep,
    CellFinished,
    CellStarted,
    Event,
    Finished,
    LayerCached,
    Log,
    MetricLogged,
    NotebookStarted,
    PackagesProgress,
    PushProgress,
    Retrying,
    RunStarted,
    StatusChanged,
)
from .progress import JobProgress, fold, retry_heading

_BUILD_EVENTS = (BuildStarted, BuildStep, LayerCached, PackagesProgress, BuildLog, BuildFinished, PushProgress)


def describe(event: Event) -> str | None:
    """One line for an event, or None for events that only move a progress bar."""
    if isinstance(event, StatusChanged):
        return f"[{event.status}]" + (f" {event.detail}" if event.detail else "")
    if isinstance(event, _BUILD_EVENTS):
        return _describe_build(event)
    return _describe_run(event)


def _describe_build(event: Event) -> str | None:
    """:func:`describe` for the events of the build and push."""
    if isinstance(event, BuildStarted):
        return f"building {event.tag}: {event.total_steps} steps"
    if isinstance(event, BuildStep):
        return f"step {event.index}/{event.total}: {event.label or event.instruction[:100]}" + (
            " (cached)" if event.cached else "")
    if isinstance(event, PackagesProgress):
        if event.phase == "added":
            return None  # counted on the progress bar, not a line each
        if event.phase in ("resolved", "prepared", "installed", "uninstalled"):
            return f"  {event.phase} {event.count} packages {event.detail}".rstrip()
        return f"  {event.phase} {event.detail}".rstrip()
    if isinstance(event, BuildFinished):
        if event.cached and event.steps_run == 0:
            return f"environment reused: {event.tag} is up to date (0 build steps)"
        return f"built {event.tag} in {event.seconds:.1f} s ({event.steps_run} steps run)"
    if isinstance(event, PushProgress):
        return f"push {event.reference}: {event.detail}" + (f" {event.digest}" if event.digest else "")
    return None  # LayerCached, BuildLog: the progress bar only


def _describe_run(event: Event) -> str | None:
    """:func:`describe` for the events of the run and its end."""
    if isinstance(event, RunStarted):
        return f"started container {event.container_id[:12]}"
    if isinstance(event, NotebookStarted):
        params = ", ".join(f"{k}={v!r}" for k, v in event.parameters.items())
        return f"notebook: {event.total_cells} code cells" + (f" (parameters: {params})" if params else "")
    if isinstance(event, CellStarted):
        return f"cell {event.index + 1}/{event.total}: {event.source_first_line[:80]}"
    if isinstance(event, CellFinished):
        return None if event.ok else f"cell {event.index + 1}/{event.total} failed after {event.duration:.1f} s"
    if isinstance(event, Log):
        return event.text.rstrip("\n")
    if isinstance(event, MetricLogged):
        return f"metric {event.name} = {event.value:g}"
    if isinstance(event, Retrying):
        return retry_heading(event)
    if isinstance(event, Finished):
        text = f"job {event.status}"
        if event.exit_code is not None:
            text += f" (exit code {event.exit_code})"
        if event.failing_cell is not None:
            text += f" at cell {event.failing_cell + 1}"
        if event.error:
            text += f": {event.error}"
        return text
    return None


class TextProgress:
    """Writes one line per meaningful event; build-log lines only when ``verbose``.

    ``progress`` is the job's :class:`~jupyter_containerize.progress.JobProgress` after the
    events written so far.
    """

    def __init__(self, out: TextIO | None = None, verbose: bool = False, min_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        self.min_interval = min_interval
        self.clock = clock
        self._last_package_line = float("-inf")
        self.progress = JobProgress()

    def __call__(self, event: Event) -> None:
        self.progress = fold(self.progress, event)
        if isinstance(event, BuildLog):
            if self.verbose:
                self._write("  | " + event.line)
            return
        if isinstance(event, PackagesProgress) and event.phase == "downloading":
            now = self.clock()
            if now - self._last_package_line < self.min_interval:
                return
            self._last_package_line = now
        line = describe(event)
        if line is not None:
            self._write(line)

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
