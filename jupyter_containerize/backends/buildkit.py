"""Turn the engine's BuildKit stream into the same typed progress events as the classic one.

``POST /build?version=2`` answers with JSON lines whose ``moby.buildkit.trace`` entries
carry BuildKit's ``StatusResponse`` as base64 protobuf. The few fields progress needs
(vertices, their logs) are read with a small wire-format decoder; the message layout is
BuildKit's ``api/services/control/control.proto``:

* StatusResponse: 1 vertexes, 2 statuses, 3 logs
* Vertex: 1 digest, 3 name, 4 cached, 5 started, 6 completed, 7 error
* VertexLog: 1 vertex, 4 msg
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..events import BuildStep, Event, LayerCached
from ..render.steps import StepPlan
from .buildlog import ANSI, TAIL_LINES, BuildProgress

TRACE_ID = "moby.buildkit.trace"
_STEP_NAME = re.compile(r"^\[(?:([^\]\s]+) )?(\d+)/(\d+)\] (.*)$", re.DOTALL)
_EXIT = re.compile(r"(?:executor failed running|process) .*(?:exit code|did not complete successfully): (\d+)\s*$",
                   re.DOTALL)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)`` of one protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


@dataclass(frozen=True)
class Vertex:
    digest: str
    name: str
    cached: bool
    started: bool
    completed: bool
    error: str


@dataclass(frozen=True)
class VertexLog:
    digest: str
    text: str


def decode_trace(data: bytes) -> tuple[list[Vertex], list[VertexLog]]:
    """The vertices and log chunks of one ``StatusResponse``."""
    vertices: list[Vertex] = []
    logs: list[VertexLog] = []
    for number, value in fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            v = dict(fields(value))
            vertices.append(Vertex(
                digest=_text(v.get(1)), name=_text(v.get(3)), cached=bool(v.get(4)),
                started=5 in v, completed=6 in v, error=_text(v.get(7)),
            ))
        elif number == 3:
            log = dict(fields(value))
            logs.append(VertexLog(digest=_text(log.get(1)), text=_text(log.get(4))))
    return vertices, logs


def _text(value: int | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


@dataclass
class _Step:
    label: str
    instruction: str
    index: int = 0  # numbered when it starts
    started: bool = False
    done: bool = False
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    partial: str = ""


@dataclass
class BuildKitStreamParser(BuildProgress):
    """Feeds on decoded chunks of a BuildKit ``/build`` stream and yields events.

    Steps are the Dockerfile instructions BuildKit runs (``[stage k/N] …``), named by ``plan``
    and numbered 1..N in the order they start, across stages (``N``: the plan's count); ``tail``
    is the failing (else the last) step's output. No stage images: BuildKit keeps its cache itself.
    """

    plan: StepPlan = field(default_factory=StepPlan)
    _steps: dict[str, _Step] = field(default_factory=dict)
    _started: int = 0
    _logs: dict[str, deque[str]] = field(default_factory=dict)

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if "error" in chunk:
            self.error = _short_error(str(chunk.get("error") or ""))
            return []
        aux = chunk.get("aux")
        if chunk.get("id") == TRACE_ID and isinstance(aux, str):
            try:
                vertices, logs = decode_trace(base64.b64decode(aux))
            except ValueError:
                return []  # a trace this decoder cannot read costs progress detail, never the build
            events: list[Event] = []
            for vertex in vertices:
                events += self._vertex(vertex)
            for log in logs:
                events += self._log(log)
            return events
        if isinstance(aux, dict) and "ID" in aux:
            self.image_id = str(aux["ID"])
        return []

    def _vertex(self, vertex: Vertex) -> list[Event]:
        m = _STEP_NAME.match(vertex.name)
        if not m:
            return []
        step = self._steps.get(vertex.digest)
        if step is None:
            instruction = m.group(4).strip()
            step = self._steps[vertex.digest] = _Step(
                label=self.plan.label(m.group(1) or "", int(m.group(2)), instruction), instruction=instruction)
            self.total = max(self.plan.total, len(self._steps))
        events: list[Event] = []
        if (vertex.started or vertex.cached) and not step.started:
            step.started = True
            self._started += 1
            step.index = self._started
            self.step, self.instruction, self.label = step.index, step.instruction, step.label
            events.append(BuildStep(index=step.index, total=self.total, instruction=step.instruction,
                                    label=step.label, cached=vertex.cached))
        if vertex.error:
            self.step, self.instruction, self.label, self.tail = step.index, step.instruction, step.label, step.tail
        if vertex.completed and not step.done:
            step.done = True
            if vertex.cached:
                self.cached_steps += 1
                events.append(LayerCached(index=step.index))
            elif not step.instruction.upper().startswith("FROM "):
                self.steps_run += 1
        return events

    def _log(self, log: VertexLog) -> list[Event]:
        step = self._steps.get(log.digest)
        if step is None:
            return []
        text = step.partial + log.text
        lines = text.split("\n")
        step.partial = lines.pop()
        return [e for raw in lines for e in self._line(step, ANSI.sub("", raw).rstrip("\r"))]

    def _line(self, step: _Step, line: str) -> list[Event]:
        if not line.strip():
            return []
        step.tail.append(line)
        if not self.error:
            self.tail = step.tail
        return self.log_line(line)

    def finish(self) -> list[Event]:
        """Flush every step's trailing partial line."""
        events: list[Event] = []
        for step in self._steps.values():
            if step.partial:
                line, step.partial = step.partial, ""
                events += self._line(step, line)
        return events


def _short_error(message: str) -> str:
    """BuildKit repeats the whole RUN command in its error; the exit code is what matters."""
    message = message.strip()
    m = _EXIT.search(message)
    return f"the command exited with code {m.group(1)}" if m else message[:300]
