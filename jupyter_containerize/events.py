"""Typed progress events: the one stream every front end renders.

Plain frozen values, no I/O. Each serialises to a JSON dict with a ``type`` key
(``to_dict``) and back (``event_from_dict``); the in-container runner writes the
same dicts on its stdout, one per line, prefixed with ``EVENT_PREFIX``.

The JupyterLab extension's types of these dicts (labextension/src/events.generated.ts)
are generated from this module by scripts/gen_event_types.py: class docstrings and a
field's ``metadata["doc"]`` become their comments there.
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
    """The job moved to another status."""

    status: JobStatus
    detail: str = ""


@dataclass(frozen=True)
class BuildStarted(Event):
    """The image build began (``total_steps`` Dockerfile instructions)."""

    tag: str
    total_steps: int


@dataclass(frozen=True)
class BuildStep(Event):
    """A build instruction started."""

    index: int = field(metadata={"doc": "1-based, in the order the steps start"})
    total: int
    instruction: str
    label: str = field(default="", metadata={"doc": 'what the step does, e.g. "install 38 packages (uv)"'})
    cached: bool = field(default=False, metadata={"doc": "the builder took the step from its cache"})


@dataclass(frozen=True)
class LayerCached(Event):
    """The build step ``index`` (1-based) came from the layer cache."""

    index: int


@dataclass(frozen=True)
class PackagesProgress(Event):
    """The installer's counters: phase is resolved, prepared, installed or uninstalled."""

    phase: str
    count: int
    detail: str = ""


@dataclass(frozen=True)
class BuildLog(Event):
    """One line of the build's own output."""

    line: str


@dataclass(frozen=True)
class BuildFinished(Event):
    """The image is built (or was already: ``cached``)."""

    image_id: str
    tag: str
    cached: bool
    steps_run: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PushProgress(Event):
    """Progress of pushing the image to a registry."""

    reference: str
    detail: str
    digest: str = ""


@dataclass(frozen=True)
class RunStarted(Event):
    """The job's container (or batch job) started."""

    container_id: str
    image: str


@dataclass(frozen=True)
class NotebookStarted(Event):
    """The runner began executing the notebook (``total_cells`` code cells)."""

    total_cells: int
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellStarted(Event):
    """A code cell began executing."""

    index: int = field(metadata={"doc": "0-based index among code cells"})
    total: int
    source_first_line: str


@dataclass(frozen=True)
class CellFinished(Event):
    """A code cell ended (``ok`` false: it raised)."""

    index: int = field(metadata={"doc": "0-based index among code cells"})
    total: int
    duration: float
    ok: bool = True


@dataclass(frozen=True)
class Log(Event):
    """Output of the job (cell output, the runner's messages)."""

    text: str
    stream: str = "stdout"


@dataclass(frozen=True)
class MetricLogged(Event):
    """The notebook logged a metric (the latest value of ``name``)."""

    name: str
    value: float


@dataclass(frozen=True)
class Retrying(Event):
    """The attempt before failed for a reason that is not the notebook's (``--retries``); another starts.

    The events after it are the new attempt's: its container's start, cells and log.
    """

    attempt: int = field(metadata={"doc": "the attempt that starts, 2 for the first retry"})
    attempts: int = field(metadata={"doc": "how many attempts the job may have in all"})
    reason: str = field(metadata={"doc": "why the attempt before ended"})
    delay: float = field(default=0.0, metadata={"doc": "seconds waited before this attempt (the backoff)"})


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
        Log, MetricLogged, Retrying, Finished,
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
