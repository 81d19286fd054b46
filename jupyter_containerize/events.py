"""Typed progress events: the one stream every front end renders.

Plain frozen values, no I/O. Each serialises to a JSON dict with a ``type`` key
(``to_dict``) and back (``event_from_dict``); the in-container runner writes the
same dicts on its stdout, one per line, prefixed with ``EVENT_PREFIX``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

EVENT_PREFIX = "@@jc-event "

JobStatus = Literal["queued", "building", "pushing", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Event:
    """Base of all events; ``time`` is the Unix time the event was made."""

    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = type(self).__name__
        return d


@dataclass(frozen=True)
class StatusChanged(Event):
    status: JobStatus
    detail: str = ""


@dataclass(frozen=True)
class BuildStarted(Event):
    tag: str
    total_steps: int


@dataclass(frozen=True)
class BuildStep(Event):
    index: int  # 1-based, as Docker prints "Step k/N"
    total: int
    instruction: str


@dataclass(frozen=True)
class LayerCached(Event):
    index: int


@dataclass(frozen=True)
class PackagesProgress(Event):
    """The installer's counters: phase is resolved, prepared, installed or uninstalled."""

    phase: str
    count: int
    detail: str = ""


@dataclass(frozen=True)
class BuildLog(Event):
    line: str


@dataclass(frozen=True)
class BuildFinished(Event):
    image_id: str
    tag: str
    cached: bool
    steps_run: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PushProgress(Event):
    reference: str
    detail: str
    digest: str = ""


@dataclass(frozen=True)
class RunStarted(Event):
    container_id: str
    image: str


@dataclass(frozen=True)
class NotebookStarted(Event):
    total_cells: int
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellStarted(Event):
    index: int  # 0-based index among code cells
    total: int
    source_first_line: str


@dataclass(frozen=True)
class CellFinished(Event):
    index: int
    total: int
    duration: float
    ok: bool = True


@dataclass(frozen=True)
class Log(Event):
    text: str
    stream: str = "stdout"


@dataclass(frozen=True)
class MetricLogged(Event):
    name: str
    value: float


@dataclass(frozen=True)
class Finished(Event):
    """The last event of a job (or of the runner inside the container)."""

    status: JobStatus
    exit_code: int | None = None
    error: str = ""
    failing_cell: int | None = None
    traceback: str = ""
    outputs: tuple[str, ...] = ()


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StatusChanged, BuildStarted, BuildStep, LayerCached, PackagesProgress, BuildLog,
        BuildFinished, PushProgress, RunStarted, NotebookStarted, CellStarted, CellFinished,
        Log, MetricLogged, Finished,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``Event.to_dict`` output; unknown keys are ignored."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return Log(text=str(data), stream="stderr")
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "outputs" in kwargs:
        kwargs["outputs"] = tuple(kwargs["outputs"])
    return cls(**kwargs)
