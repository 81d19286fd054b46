"""Turn the engine's classic-builder stream into typed progress events (BuildKit's: :mod:`.buildkit`)."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..events import BuildLog, BuildStep, Event, LayerCached, PackagesProgress
from ..render.steps import StepFacts, name_step

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_UV_COUNT = re.compile(r"^(Resolved|Prepared|Installed|Uninstalled|Audited|Downloaded) (\d+) packages?\b(.*)$")
_UV_ITEM = re.compile(r"^ ([+-]) ([A-Za-z0-9_.\-]+)(==| @ )(.+)$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_DOWNLOAD = re.compile(r"^\s*Downloading (\S+) \(([^)]+)\)")
_PRECOMPILED = re.compile(r"^jupyter-containerize: precompiled (\S+) in ([\d.]+ s)$")
TAIL_LINES = 30
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def package_events(line: str) -> list[Event]:
    """A build log line as a :class:`BuildLog` event, plus what it says about packages (uv's counters)."""
    events: list[Event] = [BuildLog(line=line)]
    stripped = line.strip()
    m = _UV_COUNT.match(stripped)
    if m:
        events.append(PackagesProgress(phase=m.group(1).lower(), count=int(m.group(2)), detail=m.group(3).strip()))
        return events
    m = _UV_ITEM.match(line)
    if m and m.group(1) == "+":
        events.append(PackagesProgress(phase="added", count=1, detail=f"{m.group(2)}=={m.group(4)}"))
        return events
    m = _DOWNLOAD.match(line)
    if m:
        events.append(PackagesProgress(phase="downloading", count=1, detail=f"{m.group(1)} ({m.group(2)})"))
    m = _PRECOMPILED.match(stripped)
    if m:
        events.append(PackagesProgress(phase="precompiled", count=1, detail=f"{m.group(1)} ({m.group(2)})"))
    return events


@dataclass
class BuildProgress:
    """What a build stream said so far: the current step and the last lines, so a failure can name both."""

    step: int = 0
    total: int = 0
    instruction: str = ""
    label: str = ""
    steps_run: int = 0
    cached_steps: int = 0
    image_id: str = ""
    error: str = ""
    installed: int = 0
    stage_images: list[str] = field(default_factory=list)  # the last layer of each earlier stage (classic)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    facts: StepFacts = field(default_factory=StepFacts)  # the build context's counts, for the steps' names

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """The events of one decoded chunk of the engine's build stream."""
        raise NotImplementedError

    def finish(self) -> list[Event]:
        """The events of what the stream left unfinished (a last line without its newline)."""
        return []

    def log_line(self, line: str) -> list[Event]:
        """Events for one line of a step's output (uv's counters included)."""
        events = package_events(line)
        for event in events:
            if isinstance(event, PackagesProgress) and event.phase == "installed":
                self.installed = event.count
        return events


@dataclass
class BuildStreamParser(BuildProgress):
    """Feeds on decoded chunks of the classic builder's ``APIClient.build`` and yields events."""

    _last_layer: str = ""
    _partial: str = ""

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if "error" in chunk:
            self.error = str(chunk.get("error") or "").strip()
            return events
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            self.image_id = str(aux["ID"])
        text = chunk.get("stream")
        if not isinstance(text, str):
            return events
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        for raw in lines:
            events.extend(self._line(ANSI.sub("", raw).rstrip("\r")))
        return events

    def _line(self, line: str) -> list[Event]:
        if not line.strip():
            return []
        self.tail.append(line)
        m = _STEP.match(line)
        if m:
            self.step, self.total, self.instruction = int(m.group(1)), int(m.group(2)), m.group(3)
            if not self.instruction.upper().startswith("FROM "):
                self.steps_run += 1  # FROM never says "Using cache"; it does no work either
            elif self._last_layer:
                self.stage_images.append(self._last_layer)
            self.label = name_step(self.instruction, self.facts)
            return [BuildStep(index=self.step, total=self.total, instruction=self.instruction, label=self.label)]
        if line.strip() == "---> Using cache":
            self.cached_steps += 1
            self.steps_run -= 1
            return [LayerCached(index=self.step)]
        layer = _LAYER.match(line)
        if layer:
            self._last_layer = layer.group(1)
        if line.startswith((" ---> ", "Successfully ", "Removing intermediate")):
            return []
        return self.log_line(line)

    def finish(self) -> list[Event]:
        """Flush a trailing partial line."""
        if self._partial:
            line, self._partial = self._partial, ""
            return self._line(line)
        return []
