"""``--retries``: which ends of a run are not the notebook's fault, and how long to wait before the next.

A run is retried only when it was *lost*: the engine or controller stopped answering or
stopped the container, the node failed, the container was killed or removed from outside.
A failing cell, a timeout, a user's cancel and an out-of-memory kill are never retried (the
last is the user's call: raise ``--memory``); the job's error says so.
"""

from __future__ import annotations

import threading
import time

from ..backends.base import Backend, RunOutcome
from ..errors import ContainerizeError
from ..events import Finished
from ..jobspec import JobSpec

BACKOFF_SECONDS = 10.0  # before the first retry; doubled for each one after, at most MAX_BACKOFF_SECONDS
MAX_BACKOFF_SECONDS = 300.0
BACKEND_WAIT_SECONDS = 300.0  # how long a retry waits for the backend to answer again
_KILLED_FROM_OUTSIDE = frozenset({137, 143, 255})  # SIGKILL, SIGTERM, the engine's "lost track of it"


def why_lost(outcome: RunOutcome, runner_end: Finished | None) -> str:
    """Why the run was lost for a reason outside the notebook; "" when it was not (never retry then).

    ``runner_end``: the runner's own last event from inside the container, if it got to write one.
    """
    if outcome.out_of_memory or (runner_end is not None and runner_end.status == "succeeded"):
        return ""
    if outcome.lost:
        return outcome.lost
    if runner_end is not None:
        # The runner reports a stop by signal as "cancelled": without a cancel by the user, someone else sent it.
        if runner_end.status == "cancelled":
            return f"the container was stopped from outside ({runner_end.error or 'by a signal'})"
        return ""  # the notebook's own failure, or its time limit
    if outcome.exit_code is None:
        return "the job's container is gone (removed from outside)"
    if outcome.exit_code in _KILLED_FROM_OUTSIDE:
        return f"the container was killed from outside (exit code {outcome.exit_code})"
    return ""


def out_of_memory_error(spec: JobSpec) -> str:
    """The job's error when the kernel was killed for its memory."""
    limit = spec.resources.memory
    said = f"its memory limit (--memory {limit})" if limit else "the memory the machine gave it"
    return (f"the notebook ran out of memory: it used more than {said} and was killed. "
            "Raise --memory (or use less) and run it again; this is not retried automatically")


def backoff(attempt: int, first: float = BACKOFF_SECONDS) -> float:
    """Seconds to wait before ``attempt`` (2 for the first retry): ``first``, then doubled, bounded."""
    return min(MAX_BACKOFF_SECONDS, first * float(2 ** max(0, attempt - 2)))


def wait_for_backend(backend: Backend, spec: JobSpec, stop: threading.Event,
                     limit: float = BACKEND_WAIT_SECONDS) -> str:
    """Wait until ``backend`` can take the job again (its preflight passes); "" then, else why not.

    Returns early with "stopped" when ``stop`` is set (a cancel, the manager's close).
    """
    deadline = time.monotonic() + limit
    while True:
        try:
            backend.preflight(spec)
            return ""
        except ContainerizeError as e:
            if time.monotonic() >= deadline:
                return f"the {spec.backend} backend did not come back within {limit:.0f} s ({e.message})"
        if stop.wait(2.0):
            return "stopped"
