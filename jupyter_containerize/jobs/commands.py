"""What each command of the front ends does, written once.

The CLI and the magics parse a line with :mod:`..options`, call one function here and
show what it returns: the CLI prints text, the magics print or display widgets. These
functions return plain values (a job record, an image reference, a Dockerfile) and raise the
project's errors; progress goes to the ``on_event`` callback they are given, warnings to
``on_warning``. None of them prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import Event, Finished
from ..jobspec import JobSpec

if TYPE_CHECKING:  # the pipeline (and docker-py) load when a command runs, not when a front end starts
    from ..backends.base import ImageRef
    from .manager import Job, JobManager
    from ..cron import CronRule
    from .retention import DiskUsage, ImageRemoval, JobRemoval, PrunePlan, PruneResult, Retention
    from .schedules import ScheduleView
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


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_with_outputs` removed: the job's full id and its own output folder, if it had one."""

    id: str
    folder: Path | None = None  # the job's own folder, removed; None: it had none
    kept: Path | None = None  # a folder that is not the job's own (``--output``): the user's, it stays


def own_output_folder(record: JobRecord) -> Path | None:
    """The job's own output folder (``<notebook stem>.jc-jobs/<job id>/`` beside its notebook), by the rule
    prune uses; None when it has none or wrote into a folder given with ``--output`` (the user's)."""
    return Path(record.output_dir) if record.output_dir and _own_folder(record) else None


def remove_with_outputs(manager: JobManager, job_id: str, *, within: Path | None = None) -> Removed:
    """Remove a finished job as :func:`remove` does, and its own output folder first (as prune does: a folder
    that cannot be removed keeps the record). A ``--output`` folder is the user's and stays.

    Args:
        within: The folder the output folder must lie in (the Jupyter root); refused when it lies outside.

    Raises:
        JobError: the job has not finished, or its folder could not be removed (nothing was removed then).
        OptionError: its own folder lies outside ``within``.
    """
    from ..backends.disk import remove_output_folder
    from ..errors import JobError, OptionError

    record = manager.store.get(job_id)
    if not record.done:
        raise JobError(f"Job {record.id} has not finished, so its outputs are still being written",
                       "Cancel it first, then delete it with its outputs.")
    folder = own_output_folder(record)
    kept = Path(record.output_dir) if record.output_dir and folder is None else None
    if folder is not None and within is not None and not folder.resolve().is_relative_to(within.resolve()):
        raise OptionError(f"The output folder of job {record.id} ({folder}) lies outside the Jupyter root",
                          "Delete the job without its outputs, and remove the folder from a terminal.")
    if folder is not None:
        try:
            remove_output_folder(folder)
        except OSError as e:
            raise JobError(f"The output folder {folder} of job {record.id} could not be removed "
                           f"({e.strerror or e}); the job stays", "Check the folder's permissions.") from None
    manager.remove(record.id)
    return Removed(id=record.id, folder=folder, kept=kept)


# -- prune / du ---------------------------------------------------------------------------------------------

EVERY_JOB = 2**62  # the store's list limit that means all of them


def prune_plan(manager: JobManager, retention: Retention, *, all_images: bool = False, build_cache: bool = False,
               protected: Collection[str] = (), sizes: bool = True, engine_required: bool = True) -> PrunePlan:
    """What ``prune`` removes under ``retention`` (nothing is removed here): see :mod:`.retention` for the rules.

    Args:
        all_images: Also this tool's images of notebooks with no job in this store (an engine one user has).
        build_cache: Also the engine's BuildKit cache unused for ``retention.older_than`` (uv's cache mounts stay).
        protected: Image tags or ids that never go; the images of the schedules' runs are always added.
        sizes: Measure what it frees (image sizes, folders); the automatic retention skips that.
        engine_required: Without an engine, fail (the CLI) or plan the jobs and folders alone (after a job).

    Raises:
        OptionError: no retention, or ``build_cache`` without an age.
        EngineError: no engine answers (``engine_required``), or it would not list its images.
    """
    from ..backends.disk import EngineFacts, folder_bytes, read_engine
    from ..backends.engine import connect
    from ..errors import EngineError, OptionError
    from .retention import plan

    if not retention.given:
        raise OptionError("A prune needs a retention", "Give keep_last (runs per notebook) or older_than (seconds).")
    if build_cache and retention.older_than is None:
        raise OptionError("The build cache is pruned by age", "Give older_than as well.")
    jobs = manager.store.list(limit=EVERY_JOB)
    try:
        client = connect(timeout=60)
    except EngineError:
        if engine_required:
            raise
        facts = EngineFacts(reachable=False)
    else:
        try:
            facts = read_engine(client, sizes=sizes or build_cache)
        finally:
            client.close()
    # The images the schedules' runs use always stay: the next occurrence would build them again.
    protected = {*protected, *manager.store.schedule_images()}
    found = plan(jobs, facts, retention, owned_folder=_own_folder, repos=_repos(jobs), all_images=all_images,
                 protected=protected, build_cache=build_cache)
    if sizes:
        found = found.with_folder_sizes({j.folder: folder_bytes(Path(j.folder)) for j in found.jobs if j.folder})
    return found


def prune_apply(manager: JobManager, planned: PrunePlan) -> PruneResult:
    """Carry out ``planned``, keeping to what a fresh plan still removes (a job may have started since).

    Order: images (their removed jobs' stopped containers first), then each job's own output folder and
    then its record (a prune stopped half-way leaves records a later prune finishes), then the build cache.
    What the engine or the filesystem refuses is reported in the result's failures, never forced.

    Raises:
        EngineError: no engine answers when images or build cache were to go.
    """
    from ..backends.disk import prune_build_cache, remove_container, remove_image, remove_output_folder
    from ..backends.engine import connect
    from ..errors import ContainerizeError
    from .retention import PruneResult, freed_bytes

    fresh = prune_plan(manager, planned.retention, all_images=planned.all_images, build_cache=False,
                       protected=planned.protected, sizes=False, engine_required=not planned.notes)
    still = {(i.image_id, i.refs) for i in fresh.images}
    images = [i for i in planned.images if (i.image_id, i.refs) in still]
    going_jobs = {j.id for j in fresh.jobs}
    failures: list[str] = []
    removed: list[ImageRemoval] = []
    deleted: list[str] = []
    cache = (0, 0)
    client = connect(timeout=120) if images or planned.cache is not None else None
    try:
        for removal in images:
            assert client is not None
            try:
                for container in removal.containers:
                    remove_container(client, container)
                for ref in removal.refs:
                    deleted += remove_image(client, ref)
            except ContainerizeError as e:
                failures.append(str(e))
                continue
            removed.append(removal)
        jobs, folders = _remove_jobs(manager, [j for j in planned.jobs if j.id in going_jobs], remove_output_folder,
                                     failures)
        if client is not None and planned.cache is not None and planned.retention.older_than is not None:
            try:
                cache = prune_build_cache(client, planned.retention.older_than)
            except ContainerizeError as e:
                failures.append(str(e))
    finally:
        if client is not None:
            client.close()
    gone = {r.image_id for r in removed if r.deleted and r.image_id in deleted}
    image_bytes = freed_bytes(planned.facts, gone)[0] if planned.image_bytes >= 0 else -1
    return PruneResult(plan=planned, jobs=tuple(jobs), images=tuple(removed), deleted=tuple(deleted),
                       failures=tuple(failures), image_bytes=image_bytes, folder_bytes=folders,
                       cache_records=cache[0], cache_bytes=cache[1])


def _remove_jobs(manager: JobManager, jobs: Sequence[JobRemoval], remove_folder: Callable[[Path], None],
                 failures: list[str]) -> tuple[list[str], int]:
    """Each job's own folder, then its record; the ids removed and the folders' bytes."""
    from ..errors import ContainerizeError

    done: list[str] = []
    freed = 0
    for job in jobs:
        if job.folder:
            try:
                remove_folder(Path(job.folder))
            except OSError as e:
                failures.append(f"the folder {job.folder} of job {job.id} ({e.strerror or e}); its record stays")
                continue
            freed += job.folder_bytes
        try:
            manager.store.delete(job.id)
        except ContainerizeError as e:
            failures.append(f"the record of job {job.id} ({e})")
            continue
        done.append(job.id)
    return done, freed


def disk_usage(manager: JobManager) -> DiskUsage:
    """``du``: the space of each notebook of the store (jobs' output folders, images) and each image of this tool,
    and the engine's build cache.

    Raises:
        EngineError: no engine answers, or it would not list its images.
    """
    from ..backends.disk import folder_bytes, read_engine
    from ..backends.engine import connect
    from .retention import usage

    jobs = manager.store.list(limit=EVERY_JOB)
    client = connect(timeout=60)
    try:
        facts = read_engine(client, sizes=True)
    finally:
        client.close()
    folders = {r.output_dir for r in jobs if r.output_dir}
    return usage(jobs, facts, {f: folder_bytes(Path(f)) for f in folders}, _repos(jobs))


def _own_folder(record: JobRecord) -> bool:
    """Whether the job's output folder is the one this tool made for it (``--output`` folders are the user's)."""
    from .pipeline import default_output_dir

    return Path(record.output_dir) == default_output_dir(Path(record.notebook), record.id)


def _repos(jobs: Sequence[JobRecord]) -> dict[str, str]:
    """The image repository of each notebook of ``jobs`` (render/context.py names it after the notebook)."""
    from ..render.context import slug

    return {r.notebook: f"jupyter-containerize/{slug(Path(r.notebook).stem)}" for r in jobs}


# -- schedules ----------------------------------------------------------------------------------------------

def schedule(manager: JobManager, spec: JobSpec, rule: CronRule, *, now: float | None = None) -> ScheduleView:
    """Save ``spec`` to run at each occurrence of ``rule``; the Jupyter server's scheduler starts the runs.

    The spec is checked exactly as ``run`` checks it before a job is recorded (the notebook's code and
    parameters cell, then the backend's preflight), so a schedule that could not run is refused here,
    before anything is saved.

    Raises:
        OptionError: ``--sweep`` (a schedule starts one job per occurrence).
        ContainerizeError: what ``run`` would refuse (no engine, a parameter the notebook does not have…).
    """
    from ..errors import OptionError
    from .pipeline import checked_spec
    from .schedules import ScheduleView

    if spec.sweep:
        raise OptionError("A schedule starts one job at each time, not a sweep",
                          "Drop --sweep, or schedule each set of values on its own (-p).")
    spec = checked_spec(spec)
    manager.backend(spec.backend).preflight(spec)
    # Stored absolute: the server that runs it has a working folder of its own.
    spec = spec.with_changes(notebook=spec.notebook.resolve(), detach=False, wait=False)
    record = manager.store.create_schedule(str(spec.notebook), rule.expression, rule.tz, spec.to_dict(),
                                           rule.next_after(time.time() if now is None else now), name=spec.name)
    return ScheduleView(record)


def schedules(manager: JobManager) -> list[ScheduleView]:
    """Every schedule with its last run's job, oldest first."""
    from .schedules import views

    return views(manager.store, manager.store.schedules())


def unschedule(manager: JobManager, schedule_id: str) -> str:
    """Remove a schedule (``schedule_id`` may be a unique prefix); its runs stay. Its full id."""
    record = manager.store.schedule(schedule_id)
    manager.store.delete_schedule(record.id)
    return record.id


def pause(manager: JobManager, schedule_id: str) -> ScheduleView:
    """Stop a schedule from starting runs until it is resumed (a run already started goes on)."""
    from .schedules import views

    record = manager.store.schedule(schedule_id)
    manager.store.set_schedule_paused(record.id, True)
    return views(manager.store, [manager.store.schedule(record.id)])[0]


def resume(manager: JobManager, schedule_id: str, *, now: float | None = None) -> ScheduleView:
    """Start a paused schedule again from its next occurrence after now: the times it missed while paused
    are not caught up."""
    from ..cron import CronRule
    from .schedules import views

    record = manager.store.schedule(schedule_id)
    next_run = CronRule(record.cron, record.tz).next_after(time.time() if now is None else now)
    manager.store.set_schedule_paused(record.id, False, next_run=next_run if record.paused else None)
    return views(manager.store, [manager.store.schedule(record.id)])[0]
