"""Schedules: a notebook's run at each occurrence of a cron expression, started by the Jupyter server.

A schedule (a row of the store's ``schedules`` table) holds the run's checked JobSpec, the cron rule
and ``next_run``, the occurrence it runs next. The server extension runs a :class:`Scheduler` thread
that wakes at least once a minute (and at each due time), and for each due, unpaused schedule:

1. claims the occurrence in the store (one UPDATE conditioned on ``next_run``: of several servers on
   one store exactly one wins it), moving ``next_run`` to the first occurrence after now, so however
   long the server was down one missed run is caught up, never a burst (:func:`..cron.due`);
2. submits the run through the :class:`~.manager.JobManager` as an ordinary job linked to the
   schedule (``schedule_id``): it shows in ``jobs``, the sidebar and the store like any other.

A run the manager refuses (the notebook was deleted, its parameters cell changed) is recorded on
the schedule as ``last_error``; the next occurrence tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cron import CronRule, due
from ..errors import ContainerizeError, JobNotFound
from ..jobspec import JobSpec
from .store import JobRecord, JobStore, ScheduleRecord

if TYPE_CHECKING:
    from .manager import JobManager

MAX_SLEEP_SECONDS = 60.0  # the scheduler looks at the store at least once a minute
MIN_SLEEP_SECONDS = 0.5
Clock = Callable[[], float]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Started:
    """What one tick did with one due schedule: the job it started, or why none started."""

    schedule_id: str
    occurrence: int
    job_id: str = ""
    error: str = ""


class Scheduler:
    """Runs due schedules through ``manager``; :meth:`tick` once, or :meth:`run` until ``stop`` is set."""

    def __init__(self, manager: JobManager, *, poll: float = MAX_SLEEP_SECONDS, clock: Clock = time.time,
                 log: Log = lambda _message: None) -> None:
        self.manager = manager
        self.poll = min(max(poll, MIN_SLEEP_SECONDS), MAX_SLEEP_SECONDS)
        self.clock = clock
        self.log = log

    @property
    def store(self) -> JobStore:
        return self.manager.store

    def tick(self, now: float | None = None) -> list[Started]:
        """Claim and start every schedule due at ``now`` (default: the clock); what was started."""
        now = self.clock() if now is None else now
        started: list[Started] = []
        for schedule in self.store.schedules():
            if self.manager.closed:
                break
            try:
                decision = due(CronRule(schedule.cron, schedule.tz), schedule.next_run, now, paused=schedule.paused)
            except ContainerizeError as e:  # a rule this version cannot read (written by another): say so once
                self.log(f"schedule {schedule.id}: {e}")
                continue
            if decision is None:
                continue
            if not self.store.claim_schedule(schedule.id, schedule.next_run, decision.next_run, decision.occurrence):
                continue  # another server took this occurrence, or it was paused or removed meanwhile
            started.append(self._start(schedule, decision.occurrence))
        return started

    def _start(self, schedule: ScheduleRecord, occurrence: int) -> Started:
        try:
            spec = JobSpec.from_dict(schedule.spec)
            job = self.manager.submit(spec, schedule_id=schedule.id)
        except ContainerizeError as e:
            self.store.schedule_started(schedule.id, error=str(e))
            self.log(f"schedule {schedule.id}: the run of {_minute(occurrence)} did not start: {e}")
            return Started(schedule.id, occurrence, error=str(e))
        except Exception as e:  # noqa: BLE001 - one bad schedule must not stop the others
            error = f"internal error: {type(e).__name__}: {e}"
            self.store.schedule_started(schedule.id, error=error)
            self.log(f"schedule {schedule.id}: {error}")
            return Started(schedule.id, occurrence, error=error)
        self.store.schedule_started(schedule.id, job_id=job.id)
        return Started(schedule.id, occurrence, job_id=job.id)

    def seconds_to_wait(self, now: float | None = None) -> float:
        """Until the earliest due time of an unpaused schedule, at most ``poll`` seconds."""
        now = self.clock() if now is None else now
        times = [s.next_run for s in self.store.schedules() if not s.paused]
        wait = min([self.poll, *(t - now + 0.05 for t in times)])
        return max(MIN_SLEEP_SECONDS, wait)

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; an error (a locked store, a slow engine) is logged and the loop goes on."""
        while not stop.is_set():
            wait = self.poll
            try:
                self.tick()
                wait = self.seconds_to_wait()
            except Exception as e:  # noqa: BLE001 - the scheduler outlives a bad minute
                self.log(f"the scheduler could not run the schedules: {e}")
            stop.wait(wait)


def _minute(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


# -- what the front ends show ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ScheduleView:
    """A schedule with its last run's job record (``None``: no run yet, or the record was removed)."""

    schedule: ScheduleRecord
    last_job: JobRecord | None = None

    @property
    def rule(self) -> CronRule:
        return CronRule(self.schedule.cron, self.schedule.tz)

    @property
    def last_status(self) -> str:
        """The last run's job status; ``not started`` (see ``last_error``), ``removed``, or "" before any run."""
        s = self.schedule
        if s.last_error:
            return "not started"
        if self.last_job is not None:
            return self.last_job.status
        if s.last_job_id:
            return "removed"
        return "starting" if s.last_run is not None else ""

    def summary(self) -> str:
        """One line: ``schedule ID: NOTEBOOK at 'CRON' (TZ); next run …`` (or ``paused``)."""
        s = self.schedule
        when = "paused" if s.paused else f"next run {self.rule.local_text(s.next_run)}"
        named = f" ({s.name})" if s.name else ""
        return f"schedule {s.id}{named}: {Path(s.notebook).name} at '{s.cron}' ({s.tz}); {when}"

    def to_dict(self) -> dict[str, Any]:
        data = self.schedule.to_dict()
        data.update(
            next_run_text=self.rule.local_text(self.schedule.next_run),
            last_run_text=self.rule.local_text(self.schedule.last_run) if self.schedule.last_run else "",
            last_status=self.last_status,
            parameters=self.schedule.spec.get("parameters", {}),
        )
        return data


def views(store: JobStore, schedules: Sequence[ScheduleRecord]) -> list[ScheduleView]:
    """Each schedule with its last run's record."""
    out = []
    for schedule in schedules:
        job = None
        if schedule.last_job_id:
            try:
                job = store.get(schedule.last_job_id)
            except JobNotFound:
                job = None
        out.append(ScheduleView(schedule, job))
    return out


def table(rows: Sequence[ScheduleView]) -> str:
    """The schedule list as text: id, notebook, cron (and zone), next run, last run, its job and status, paused."""
    if not rows:
        return "no schedules (add one with: jupyter containerize schedule NOTEBOOK --cron '0 3 * * *')"
    cells = [("SCHEDULE", "NOTEBOOK", "CRON", "TZ", "NEXT RUN", "LAST RUN", "LAST JOB", "STATUS", "PAUSED")]
    notes: dict[int, str] = {}
    for row in rows:
        s = row.schedule
        cells.append((s.id, Path(s.notebook).name, s.cron, s.tz, "-" if s.paused else row.rule.local_text(s.next_run),
                      row.rule.local_text(s.last_run) if s.last_run else "-", s.last_job_id or "-",
                      row.last_status or "-", "yes" if s.paused else "no"))
        if s.last_error:
            notes[len(cells) - 1] = f"  last run not started: {s.last_error}"
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(f"{v:{w}}" for v, w in zip(c, widths, strict=True)).rstrip())
        if n in notes:
            lines.append(notes[n])
    return "\n".join(lines)
