"""What each command of the front ends does, written once.

The CLI and the magics parse a line with :mod:`..options`, call one function here and
show what it returns: the CLI prints text, the magics print or display widgets. These
functions return plain values (a job record, an image reference, a Dockerfile) and raise the
project's errors; progress goes to the ``on_event`` callback they are given, warnings to
``on_warning``. None of them prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import Event, Finished
from ..jobspec import JobSpec

if TYPE_CHECKING:  # the pipeline (and docker-py) load when a command runs, not when a front end starts
    from ..backends.base import ImageRef
    from .manager import Job, JobManager
    from .store import JobRecord

EventCallback = Callable[[Event], None]
Warn = Callable[[str], None]
STOP_WAIT_SECONDS = 60.0  # how long `stop` waits for the job to record its end
CANCEL_WAIT_SECONDS = 60.0  # how long an interrupted follow waits for the cancelled job to end


def _ignore(_: Any) -> None:
    return None


# -- dockerfile / build --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DockerfileResult:
    """What ``dockerfile`` made: the Dockerfile's text and, with ``-o``, the build context it wrote."""

    dockerfile: str
    path: Path | None = None  # the context folder (``-o``); None: nothing was kept
    files: tuple[str, ...] = ()
    content_hash: str = ""

    def summary(self) -> str:
        """``wrote N files to DIR (content hash …)`` (for ``-o``)."""
        return f"wrote {len(self.files)} files to {self.path} (content hash {self.content_hash[:16]})"


def dockerfile(spec: JobSpec, output_dir: Path | None = None, *, in_process: bool = False,
               on_warning: Warn = _ignore) -> DockerfileResult:
    """Capture and render ``spec``'s build context once: into ``output_dir`` (kept), else into a temp folder.

    Raises:
        ContainerizeError: capture or render failed (``output_dir`` holds something else, …).
    """
    from .pipeline import prepare

    prepared = prepare(spec, in_process=in_process, context_dir=Path(output_dir) if output_dir is not None else None)
    try:  # local projects' wheels live in the prepared folder until cleanup
        for warning in prepared.snapshot.warnings:
            on_warning(warning)
        context = prepared.context
        return DockerfileResult(dockerfile=context.dockerfile, path=context.path if output_dir is not None else None,
                                files=tuple(context.files), content_hash=context.content_hash)
    finally:
        prepared.cleanup()


def build(spec: JobSpec, on_event: EventCallback, *, in_process: bool = False, on_warning: Warn = _ignore,
          on_push: Callable[[], None] | None = None) -> ImageRef:
    """Capture, render and build ``spec``'s image (and push it with ``--push``); its progress goes to ``on_event``.

    Raises:
        ContainerizeError: capture, the index check, the build or the push failed.
    """
    from .pipeline import build_and_push, prepare

    prepared = prepare(spec, in_process=in_process)
    try:
        for warning in prepared.snapshot.warnings:
            on_warning(warning)
        return build_and_push(prepared.context, spec, on_event, on_push=on_push)
    finally:
        prepared.cleanup()


def base_image(python: str | None = None, *, tag: str | None = None, force: bool = False,
               on_event: EventCallback = _ignore) -> str:
    """Build the offline ``python:X.Y.Z-slim-bookworm`` base image (unless it exists); its tag."""
    from ..backends.baseimage import build_base_image
    from ..backends.engine import connect

    client = connect()
    try:
        return build_base_image(client, python, tag=tag, force=force, on_event=on_event)
    finally:
        client.close()


def export(spec: JobSpec, dest: Path | None = None) -> Path:
    """Write the build context and run files for ``spec`` to ``dest`` (default ``<notebook stem>-container``)."""
    from ..export import export as write_export

    return write_export(spec, Path(dest) if dest else Path(f"{spec.notebook.stem}-container"))


# -- jobs / logs / stop / rm ------------------------------------------------------------------------------

def engine() -> dict[str, Any]:
    """What the sidebar shows about the engine: reachable, version, GPU runtime, GPUs."""
    from ..backends.engine import engine_status

    return engine_status().to_dict()


def jobs(manager: JobManager, limit: int = 20) -> list[JobRecord]:
    """The most recent jobs, after re-attaching those whose owner process is gone."""
    manager.reconcile()
    return manager.store.list(limit=limit)


def logs(manager: JobManager, job_id: str) -> Iterator[Event]:
    """The job's recorded events, oldest first (``job_id`` may be a unique prefix)."""
    job = manager.attach(job_id)
    return (event for _, event in job.events())


def follow(job: Job, on_event: EventCallback, *, detach: bool = False,
           on_cancel: Callable[[], None] = lambda: None) -> JobRecord | None:
    """Feed the job's events to ``on_event`` until it ends; its final record.

    ``detach``: return ``None`` as soon as the job runs (or has ended). An interrupt
    (Ctrl-C, the kernel's interrupt button) cancels the job: ``on_cancel`` is called and
    the record is returned once the job has ended.

    Raises:
        JobError: an interrupted job did not end within ``CANCEL_WAIT_SECONDS``.
    """
    try:
        for _, event in job.events(follow=True):
            on_event(event)
            if detach and job.status in ("running", "succeeded", "failed", "cancelled"):
                return None
            if isinstance(event, Finished):
                break
        return job.wait()
    except KeyboardInterrupt:
        on_cancel()
        return cancel(job)


def cancel(job: Job, timeout: float = CANCEL_WAIT_SECONDS) -> JobRecord:
    """Cancel the job and wait for its end (an interrupted follow or wait).

    Raises:
        JobError: it did not end within ``timeout`` seconds.
    """
    job.cancel()
    return job.wait(timeout=timeout)


def stop(manager: JobManager, job_id: str, *, timeout: float = STOP_WAIT_SECONDS, poll: float = 0.2) -> JobRecord:
    """Cancel a job (of any process) and wait up to ``timeout`` s for it to end; its record then."""
    job = manager.attach(job_id)
    manager.cancel(job.id)
    deadline = time.monotonic() + timeout
    while not job.record.done and time.monotonic() < deadline:
        time.sleep(poll)
    return job.record


def remove(manager: JobManager, job_id: str) -> str:
    """Cancel the job if it runs, remove its containers and forget it; its full id."""
    record = manager.store.get(job_id)
    manager.remove(record.id)
    return record.id
