"""Watching a job from a test: its events so far, waiting for a condition, the ticks a notebook printed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jupyter_containerize.events import Event, Log


def job_events(job: Any) -> list[Event]:
    """The events a :class:`~jupyter_containerize.jobs.manager.Job` recorded so far, in order."""
    return [e for _, e in job.events()]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def ticks(events: list[Event]) -> list[str]:
    """The ``tick N`` lines a ticking test notebook printed, in order."""
    return [e.text.strip() for e in events if isinstance(e, Log) and e.text.strip().startswith("tick ")]
