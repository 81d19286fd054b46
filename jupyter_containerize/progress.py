"""The one fold of job events into job progress: what every Python view of a job shows.

:func:`fold` is pure: it takes a :class:`JobProgress` and an event and returns the next
:class:`JobProgress`, changing nothing in place. The widget view and the text view both
keep their state this way, so a job looks the same in both. Derived text (the build
line, the cells line, the summary) is computed from a progress value, never kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .events import (
    TERMINAL_STATUSES,
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
from .papermill_record import find_output_notebook

MAX_LOG_LINES = 200


@dataclass(frozen=True)
class JobProgress:
    """Where a job stands, from its events alone.

    Attributes:
        status: The job's status; a terminal one is never left for a non-terminal one.
        build_step: The 1-based build step running (or the last one, once built).
        running_cell: The 0-based code cell running, ``None`` between cells.
        log: The latest ``max_log_lines`` log lines (build log and cell output).
        log_lines_total: Every log line seen, kept or not.
        created: Time of the first event; ``finished``: of the ``Finished`` event.
    """

    status: str = "queued"
    detail: str = ""
    image_tag: str = ""
    build_total: int = 0
    build_step: int = 0
    build_instruction: str = ""
    build_label: str = ""
    layers_cached: int = 0
    packages: Mapping[str, int] = field(default_factory=dict)
    build_done: bool = False
    build_cached: bool = False
    build_seconds: float = 0.0
    cell_total: int = 0
    cells_done: int = 0
    running_cell: int | None = None
    cell_line: str = ""
    log: tuple[str, ...] = ()
    log_lines_total: int = 0
    max_log_lines: int = MAX_LOG_LINES
    metrics: Mapping[str, float] = field(default_factory=dict)
    exit_code: int | None = None
    error: str = ""
    failing_cell: int | None = None
    traceback: str = ""
    outputs: tuple[str, ...] = ()
    created: float | None = None
    finished: float | None = None
    events_seen: int = 0
    attempt: int = 1  # the attempt running (--retries); a retry starts the notebook's progress again
    attempts: int = 1

    @property
    def done(self) -> bool:
        """True once the job reached a terminal status."""
        return self.status in TERMINAL_STATUSES

    # -- text derived from the progress ---------------------------------------------------------
    def build_text(self) -> str:
        """One line about the build."""
        if self.build_done:
            # BuildFinished.cached: no step ran (the image existed, or every layer came from the cache).
            return "environment reused: 0 build steps" if self.build_cached else f"built in {self.build_seconds:.1f} s"
        if not self.build_total:
            return "capturing the environment…" if self.status == "building" else ""
        text = f"step {self.build_step}/{self.build_total}: {self.build_label or self.build_instruction[:80]}"
        added, total = self.packages_added()
        if total:
            text += f" · {added}/{total} packages"
        return text

    def packages_added(self) -> tuple[int, int]:
        """(installed so far, to install) of the step that installs packages; (0, 0) before uv resolved."""
        total = self.packages.get("resolved", 0)
        return min(self.packages.get("installed", self.packages.get("added", 0)), total), total

    def run_text(self) -> str:
        """One line about the notebook's progress."""
        if self.running_cell is not None:
            return f"cell {self.running_cell + 1} of {self.cell_total}: {self.cell_line[:80]}"
        if self.cell_total:
            return f"{self.cells_done} of {self.cell_total} cells done"
        return ""

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the first event, up to the end when the job is done."""
        if self.created is None:
            return 0.0
        end = self.finished if self.finished is not None else (time.time() if now is None else now)
        return max(0.0, end - self.created)

    def elapsed_text(self, now: float | None = None) -> str:
        """``H:MM:SS`` of :meth:`elapsed`."""
        seconds = int(self.elapsed(now))
        return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def output_notebook(self, job_id: str = "") -> str | None:
        """The executed notebook among the outputs (``<stem>.<job id>.ipynb``), if any."""
        return find_output_notebook(self.outputs, job_id)

    def summary(self, job_id: str = "") -> str:
        """One line: status, progress, metrics, error."""
        text = f"job {job_id} {self.status}" if job_id else self.status
        if self.attempt > 1:
            text += f" · attempt {self.attempt} of {self.attempts}"
        if self.cell_total:
            text += f" · {self.cells_done}/{self.cell_total} cells"
        if self.metrics:
            text += " · " + ", ".join(f"{k}={v:g}" for k, v in self.metrics.items())
        if self.error:
            text += f" · {self.error}"
        return text


def _with_log(p: JobProgress, text: str) -> JobProgress:
    lines = tuple(text.rstrip("\n").split("\n"))
    kept = (*p.log, *lines)[-p.max_log_lines:] if p.max_log_lines > 0 else ()
    return replace(p, log=kept, log_lines_total=p.log_lines_total + len(lines))


def fold(progress: JobProgress, event: Event) -> JobProgress:
    """The progress after ``event``: pure, ``progress`` is left as it was."""
    p = replace(progress, events_seen=progress.events_seen + 1,
                created=event.time if progress.created is None else progress.created)
    if isinstance(event, StatusChanged):
        return p if p.done else replace(p, status=event.status, detail=event.detail)
    built = _fold_build(p, event)
    return built if built is not None else _fold_run(p, event)


def _fold_build(p: JobProgress, event: Event) -> JobProgress | None:
    """:func:`fold` for the events of the build and push (``None``: ``event`` is not one of them)."""
    if isinstance(event, BuildStarted):
        return replace(p, image_tag=event.tag, build_total=event.total_steps)
    if isinstance(event, BuildStep):  # a new step: its own package counts
        return replace(p, build_step=event.index, build_total=event.total, build_instruction=event.instruction,
                       build_label=event.label, packages={})
    if isinstance(event, LayerCached):
        return replace(p, layers_cached=p.layers_cached + 1)
    if isinstance(event, PackagesProgress):  # uv's counters, and one "added" line per package
        count = p.packages.get(event.phase, 0) + event.count if event.phase == "added" else event.count
        return replace(p, packages={**p.packages, event.phase: count})
    if isinstance(event, BuildLog):
        return _with_log(p, event.line)
    if isinstance(event, BuildFinished):
        steps = max(p.build_total, p.build_step, 1)
        return replace(p, image_tag=event.tag or p.image_tag, build_done=True, build_cached=event.cached,
                       build_seconds=event.seconds, build_step=steps, build_total=steps)
    if isinstance(event, PushProgress):
        return replace(p, detail=f"push {event.reference}: {event.detail}")
    return None


def _fold_run(p: JobProgress, event: Event) -> JobProgress:
    """:func:`fold` for the events of the run and its end (any other event: ``p`` as it is)."""
    if isinstance(event, RunStarted):
        return replace(p, image_tag=p.image_tag or event.image)
    if isinstance(event, NotebookStarted):
        return replace(p, cell_total=event.total_cells)
    if isinstance(event, CellStarted):
        return replace(p, running_cell=event.index, cell_total=event.total, cell_line=event.source_first_line)
    if isinstance(event, CellFinished):
        done = max(p.cells_done, event.index + 1) if event.ok else p.cells_done
        return replace(p, cell_total=event.total, cells_done=done, running_cell=None)
    if isinstance(event, Log):
        return _with_log(p, event.text)
    if isinstance(event, MetricLogged):
        return replace(p, metrics={**p.metrics, event.name: event.value})
    if isinstance(event, Retrying):
        return replace(_with_log(p, retry_heading(event)), attempt=event.attempt, attempts=event.attempts,
                       cell_total=0, cells_done=0, running_cell=None, cell_line="")
    if isinstance(event, Finished):
        return replace(p, status=event.status, exit_code=event.exit_code, error=event.error,
                       failing_cell=event.failing_cell, traceback=event.traceback, outputs=tuple(event.outputs),
                       finished=event.time, running_cell=None)
    return p


def retry_heading(event: Retrying) -> str:
    """The line that starts a retry's section of the log."""
    waited = f"; after {event.delay:.0f} s" if event.delay else ""
    return f"── attempt {event.attempt} of {event.attempts} (the one before ended: {event.reason}{waited}) ──"


def fold_all(events: Iterable[Event], progress: JobProgress | None = None) -> JobProgress:
    """The progress after every event of ``events``, in order, from ``progress`` (default: a fresh job)."""
    p = progress if progress is not None else JobProgress()
    for event in events:
        p = fold(p, event)
    return p
