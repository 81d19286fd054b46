"""The job manager: capture → render → build → run, recording every event in the store.

Front ends call :meth:`JobManager.submit` and render the events of the returned
:class:`Job`; none of them talks to an engine directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from ..backends.base import Backend, ImageRef, RunOutcome, RunRequest, hard_limit_seconds
from ..backends.builder import BuildCancelled
from ..backends.config import Config
from ..backends.plugins import backend_names, load_backend
from ..errors import ContainerizeError, JobError, Unreachable
from ..events import (
    BuildFinished,
    Event,
    Finished,
    JobStatus,
    Log,
    Retrying,
    RunStarted,
    StatusChanged,
)
from ..jobspec import JobSpec, sweep_job_name
from . import retries
from .ownership import give_outputs_to_notebook_owner
from .pipeline import (
    Prepared,
    build_and_push,
    checked_spec,
    default_output_dir,
    prepare,
    read_metrics,
    sweep_specs,
    with_data_mounts,
)
from .store import JobRecord, JobStore

__all__ = ["Config", "Job", "JobManager", "Prepared", "backend_names", "build_and_push", "checked_spec",
           "load_backend", "prepare"]

EventCallback = Callable[[Event], None]
CANCEL_POLL_SECONDS = 0.3
CANCEL_GRACE_SECONDS = 30.0  # after the backend's cancel, how long its follow may take to see the end
CLOSE_TIMEOUT_SECONDS = 10.0
SERVER_STOPPED = "the Jupyter server stopped before the job started; run it again"
_LOG = logging.getLogger("jupyter_containerize")
_RETAINING = threading.Lock()  # the automatic retention runs once at a time in a process


class _Control:
    """One job's signals, shared by its worker, its watchers and the manager.

    ``cancel`` stops the work in this process (a build, a job waiting its turn): set by the
    user's cancel, or by :meth:`JobManager.close` before the backend has the job. ``stop``
    ends the backend's follow. ``wake`` is set on every change (cancel, close, the job's
    end), so watchers block on one event and never outlive their job.
    """

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.by_user = False
        self.started = False  # the backend has the job: close() leaves it running there
        self._lock = threading.Lock()

    def request_cancel(self) -> None:
        self.by_user = True
        self.cancel.set()
        self.wake.set()

    def mark_started(self) -> None:
        with self._lock:
            self.started = True

    def close(self) -> None:
        with self._lock:
            if not self.started:
                self.cancel.set()
        self.stop.set()
        self.wake.set()


class Job:
    """A handle on one job: its id, live events, wait and cancel."""

    def __init__(self, manager: JobManager, job_id: str) -> None:
        self.manager = manager
        self.id = job_id

    @property
    def record(self) -> JobRecord:
        return self.manager.store.get(self.id)

    @property
    def status(self) -> str:
        return self.record.status

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback`` for each new event recorded in this process; returns an unsubscribe."""
        return self.manager._subscribe(self.id, callback)

    def events(self, after: int = 0, follow: bool = False, poll: float = 0.2,
               timeout: float | None = None) -> Iterator[tuple[int, Event]]:
        """Recorded events after sequence ``after``; with ``follow`` keep going until the job ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.manager.store.events(self.id, after)
            for seq, event in batch:
                after = seq
                yield seq, event
            if not follow:
                return
            if not batch and self.record.done:
                tail = self.manager.store.events(self.id, after)
                yield from tail
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            if not batch:
                time.sleep(poll)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> JobRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.record
            if record.done:
                thread = self.manager._threads.get(self.id)
                if thread is not None:
                    thread.join(5)
                return self.manager.store.get(self.id)
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"Job {self.id} did not finish within {timeout} s", "It is still running.")
            time.sleep(poll)

    def cancel(self) -> None:
        self.manager.cancel(self.id)


class JobManager:
    """Runs jobs on a backend and keeps the store up to date.

    Backends are loaded by name from the registry (:mod:`..backends.plugins`) with ``config``
    (default: the ``JC_*`` environment's), unless ``backends`` already holds one of that name.
    Each job's threads end with it; a long-lived owner (the server) calls :meth:`close` when it stops.
    """

    # Image tags or ids the automatic retention never removes (a scheduler adds the images it will run).
    protected_images: frozenset[str] = frozenset()

    def __init__(self, store: JobStore | None = None, backends: dict[str, Backend] | None = None,
                 config: Config | None = None) -> None:
        self._config = config
        self.store = store or JobStore(config.store_path if config else None)
        self.cancel_grace = CANCEL_GRACE_SECONDS
        self.retry_backoff = retries.BACKOFF_SECONDS  # before the first retry (--retries), doubled after
        self._backends: dict[str, Backend] = dict(backends or {})
        self._subscribers: dict[str, list[EventCallback]] = {}
        self._controls: dict[str, _Control] = {}
        self._threads: dict[str, threading.Thread] = {}  # job id -> the thread that records its end
        self._live: set[threading.Thread] = set()  # every thread this manager started and that runs
        self._closed = threading.Event()
        self._lock = threading.Lock()

    # -- lifetime -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> list[str]:
        """Stop every watcher and join every thread of this manager, waiting ``timeout`` s at most in all.

        Jobs the backend already runs keep running there: their follow stops, they lose their
        owner and the next server (or ``jupyter containerize jobs``) re-attaches them. Jobs still
        being prepared or built are stopped and recorded as failed. Idempotent.

        Returns:
            The names of the threads still alive at the bound (empty when every one ended).
        """
        self._closed.set()
        with self._lock:
            controls = list(self._controls.values())
        for control in controls:
            control.close()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                live = [t for t in self._live if t is not threading.current_thread()]
            remaining = deadline - time.monotonic()
            if not live or remaining <= 0:
                return sorted(t.name for t in live if t.is_alive())
            try:
                live[0].join(min(remaining, 0.5))  # and look again: a thread may start another on its way out
            except RuntimeError:  # registered, not started yet
                time.sleep(0.01)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any, job_id: str | None = None,
               on_end: Callable[[], None] | None = None) -> threading.Thread:
        """Start a daemon thread that forgets itself when it ends (``job_id``: it records that job's end)."""

        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._live.discard(thread)
                    if job_id is not None and self._threads.get(job_id) is thread:
                        del self._threads[job_id]
                if on_end is not None:
                    on_end()

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._live.add(thread)
            if job_id is not None:
                self._threads[job_id] = thread
        thread.start()
        return thread

    def _control(self, job_id: str, started: bool = False) -> _Control:
        control = _Control()
        control.started = started
        with self._lock:
            self._controls[job_id] = control
        if self._closed.is_set():
            control.close()
        return control

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._controls.pop(job_id, None)

    # -- backends -------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        """The settings this manager gives the backends it loads (read from the environment when none was given)."""
        if self._config is None:
            self._config = Config.from_env()
        return self._config

    def backend(self, name: str) -> Backend:
        """The backend registered as ``name``, loaded once per manager."""
        if name not in self._backends:
            self._backends[name] = load_backend(name, self.config)
        return self._backends[name]

    # -- submitting -----------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, in_process: bool = False, extra_modules: tuple[str, ...] = (),
               command: tuple[str, ...] = (), extra_env: tuple[tuple[str, str], ...] = (),
               extra_mounts: tuple[tuple[str, str, bool], ...] = (), prepared: Prepared | None = None,
               image: ImageRef | None = None, sweep_id: str = "", schedule_id: str = "") -> Job:
        """Record a queued job and start it in a background thread; returns at once.

        ``schedule_id``: the schedule whose occurrence this job is (the server's scheduler).
        """
        spec = checked_spec(spec, runs_notebook=not command)
        # A backend that cannot run the job (or an unknown name) fails here, before a job is recorded.
        self.backend(spec.backend).preflight(spec)
        job = self._create(spec, sweep_id, schedule_id)
        self._start(job.id, spec, in_process, extra_modules, command, extra_env, extra_mounts, prepared, image)
        return job

    def submit_sweep(self, spec: JobSpec, *, in_process: bool = False) -> list[Job]:
        """One job per combination, all recorded at once; returns at once.

        A coordinator thread builds (and pushes) the image once for the whole sweep,
        shows that build on every job, then starts at most ``max_parallel`` jobs at a time.
        """
        spec = checked_spec(spec)
        specs = [s.with_changes(name=sweep_job_name(spec.name, s.parameters, spec.sweep)) for s in sweep_specs(spec)]
        self.backend(spec.backend).preflight(spec)
        if len(specs) == 1:
            return [self.submit(specs[0], in_process=in_process)]
        sweep_id = "sweep-" + os.urandom(4).hex()
        jobs = [self._create(s, sweep_id) for s in specs]
        self._spawn(f"jc-{sweep_id}", self._run_sweep, spec, specs, jobs, in_process)
        return jobs

    def _create(self, spec: JobSpec, sweep_id: str, schedule_id: str = "") -> Job:
        if self._closed.is_set():
            raise JobError("This job manager is closed (the server is stopping)", "Start the job again once it is up.")
        record = self.store.create(str(spec.notebook.resolve()), spec=spec.to_dict(), parameters=spec.parameters,
                                   backend=spec.backend, sweep_id=sweep_id, owner_pid=os.getpid(), name=spec.name,
                                   schedule_id=schedule_id)
        self._control(record.id)
        self._emit(record.id, StatusChanged(status="queued"))
        return Job(self, record.id)

    def _start(self, job_id: str, spec: JobSpec, *args: Any, on_end: Callable[[], None] | None = None) -> None:
        self._spawn(f"jc-job-{job_id}", self._run, job_id, spec, self._controls[job_id], *args,
                    job_id=job_id, on_end=on_end)

    def _run_sweep(self, spec: JobSpec, specs: list[JobSpec], jobs: list[Job], in_process: bool) -> None:
        def to_all(event: Event) -> None:
            for job in jobs:
                self._emit(job.id, event)

        try:
            for job in jobs:
                self._set_status(job.id, "building")
            backend = self.backend(spec.backend)
            prepared = prepare(spec, in_process=in_process)
            try:
                specs = [self._mount_data(s, prepared, to_all if i == 0 else lambda _e: None)
                         for i, s in enumerate(specs)]
                backend.preflight(specs[0], prepared.snapshot.gpu.cuda_version)
                image = backend.build(prepared.context, spec, to_all,
                                      partial(build_and_push, prepared.context, spec, to_all, cancel=self._closed))
                specs = [self._default_shm(s, prepared) for s in specs]
            finally:
                prepared.cleanup()
        except Exception as e:  # noqa: BLE001 - every job of the sweep must record the end
            error = str(e) if isinstance(e, ContainerizeError) else f"internal error: {type(e).__name__}: {e}"
            for job in jobs:
                self._finish(job.id, Finished(status="failed", error=SERVER_STOPPED if self.closed else error))
                self._forget(job.id)
            return
        if backend.job_arrays:
            self._start_array(backend, jobs, specs, image, spec.max_parallel)
            return
        gate = threading.Semaphore(spec.max_parallel)
        for job, job_spec in zip(jobs, specs, strict=True):
            while not gate.acquire(timeout=0.25):
                if self._closed.is_set():
                    break
            if self._closed.is_set():
                self._finish(job.id, Finished(status="failed", error=SERVER_STOPPED))
                self._forget(job.id)
                continue
            record = self.store.get(job.id)
            if self._controls[job.id].cancel.is_set() or record.done or record.cancel_requested:
                self._finish(job.id, Finished(status="cancelled", error="cancelled by the user"))
                self._forget(job.id)
                gate.release()
                continue
            self._start(job.id, job_spec, False, (), (), (), (), None, image, on_end=gate.release)

    def _start_array(self, backend: Backend, jobs: list[Job], specs: list[JobSpec], image: ImageRef,
                     max_parallel: int) -> None:
        """A sweep's runs as one array on a backend that has them (Slurm's job arrays): the backend
        throttles them to ``max_parallel``; each is followed, cancelled and retried as its own job."""
        live: list[tuple[Job, JobSpec]] = []
        for job, job_spec in zip(jobs, specs, strict=True):
            record = self.store.get(job.id)
            if self._closed.is_set() or self._controls[job.id].cancel.is_set() or record.done or record.cancel_requested:
                self._finish(job.id, Finished(status="failed", error=SERVER_STOPPED) if self._closed.is_set()
                             else Finished(status="cancelled", error="cancelled by the user"))
                self._forget(job.id)
            else:
                live.append((job, job_spec))
        requests = [RunRequest(job_id=job.id, image=image, spec=s,
                               output_dir=s.output_dir or default_output_dir(s.notebook, job.id)) for job, s in live]
        try:
            refs = backend.start_array(requests, max_parallel)
        except ContainerizeError as e:  # nothing was submitted
            for job, _ in live:
                self._finish(job.id, Finished(status="failed", error=str(e)))
                self._forget(job.id)
            return
        for (job, job_spec), ref in zip(live, refs, strict=True):
            self._start(job.id, job_spec, False, (), (), (), (), None, image, ref)

    # -- the worker ------------------------------------------------------------------------------
    def _run(self, job_id: str, spec: JobSpec, control: _Control, in_process: bool,
             extra_modules: tuple[str, ...], command: tuple[str, ...], extra_env: tuple[tuple[str, str], ...],
             extra_mounts: tuple[tuple[str, str, bool], ...], prepared: Prepared | None,
             image: ImageRef | None, started: str = "") -> None:
        """``started``: the backend's ref of a run it already started (a task of a sweep's array)."""
        emit = self._emitter(job_id)
        cancel = control.cancel
        self._spawn(f"jc-watch-{job_id}", self._watch_cancel_requests, job_id, control)
        own_prepared = False
        try:
            if image is None:
                self._set_status(job_id, "building")
                if prepared is None:
                    prepared = prepare(spec, in_process=in_process, extra_modules=extra_modules,
                                       runs_notebook=not command)
                    own_prepared = True
                environment = _environment_key(prepared)
                for w in getattr(prepared.snapshot, "warnings", ()):  # said once per environment, not every job
                    if self.store.first_notice(f"{environment}\n{w}"):
                        emit(Log(text=f"warning: {w}", stream="stderr"))
                backend = self.backend(spec.backend)
                spec = self._mount_data(spec, prepared, emit)
                backend.preflight(spec, prepared.snapshot.gpu.cuda_version)
                self.store.update(job_id, lock_hash=prepared.context.content_hash)
                image = backend.build(prepared.context, spec, emit, partial(
                    build_and_push, prepared.context, spec, emit, cancel=cancel,
                    on_push=lambda: self._set_status(job_id, "pushing")))
                spec = self._default_shm(spec, prepared)
                if own_prepared:  # built: the context folder is not needed for the run (the CLI may exit at its end)
                    prepared.cleanup()
                    own_prepared = False
            self.store.update(job_id, image_tag=image.tag, image_id=image.image_id, digest=image.digest)
            if cancel.is_set():
                raise BuildCancelled("The job was cancelled", "")
            self._execute(job_id, spec, image, control, command, extra_env, extra_mounts, started)
        except BuildCancelled:
            if control.by_user:
                self._finish(job_id, Finished(status="cancelled", error="cancelled by the user"))
            else:  # close() stopped it before the backend had it
                self._finish(job_id, Finished(status="failed", error=SERVER_STOPPED))
        except ContainerizeError as e:
            self._finish(job_id, Finished(status="cancelled" if control.by_user else "failed", error=str(e)))
        except Exception as e:  # noqa: BLE001 - a worker thread must always record an end
            self._finish(job_id, Finished(status="failed", error=f"internal error: {type(e).__name__}: {e}"))
        finally:
            if own_prepared and prepared is not None:
                prepared.cleanup()
            control.wake.set()  # its watchers end with it
            self._forget(job_id)

    def _execute(self, job_id: str, spec: JobSpec, image: ImageRef, control: _Control,
                 command: tuple[str, ...], extra_env: tuple[tuple[str, str], ...],
                 extra_mounts: tuple[tuple[str, str, bool], ...], started: str = "") -> None:
        backend = self.backend(spec.backend)
        output_dir = spec.output_dir or default_output_dir(spec.notebook, job_id)
        request = RunRequest(job_id=job_id, image=image, spec=spec, output_dir=output_dir, command=command,
                             extra_env=extra_env, extra_mounts=extra_mounts)
        attempts = spec.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                ref = started if attempt == 1 and started else backend.start(request)
            except Unreachable as e:  # the engine or controller did not take it: not the notebook's fault
                if attempt == attempts:
                    raise type(e)(_lost_error(e.message, self.store.get(job_id)), e.hint) from None
                if not self._before_retry(job_id, spec, backend, control, attempt + 1, attempts, e.message):
                    return
                continue
            control.mark_started()
            self.store.update(job_id, backend_ref=ref, output_dir=str(output_dir), started=time.time())
            self._set_status(job_id, "running")
            if control.by_user:
                backend.cancel(job_id, ref)
            lost = self._follow(job_id, backend, ref, control, since="", may_retry=attempt < attempts)
            if not lost or not self._before_retry(job_id, spec, backend, control, attempt + 1, attempts, lost):
                return

    def _before_retry(self, job_id: str, spec: JobSpec, backend: Backend, control: _Control, attempt: int,
                      attempts: int, lost: str) -> bool:
        """Announce attempt ``attempt``, wait its backoff and for the backend; False when the job ended meanwhile."""
        delay = retries.backoff(attempt, self.retry_backoff)
        self._emit(job_id, Retrying(attempt=attempt, attempts=attempts, reason=lost, delay=delay))
        self.store.update(job_id, attempt=attempt)
        self._set_status(job_id, "queued")
        waited = "stopped" if control.wake.wait(delay) else retries.wait_for_backend(backend, spec, control.wake)
        if not waited:
            with contextlib.suppress(ContainerizeError):  # what the engine kept of the lost attempt
                backend.remove(job_id, self.store.get(job_id).backend_ref)
            return True
        if control.by_user:
            self._finish(job_id, Finished(status="cancelled", error="cancelled by the user"))
        elif self._closed.is_set():
            self._finish(job_id, Finished(status="failed", error=SERVER_STOPPED))
        else:
            self._finish(job_id, Finished(status="failed", error=f"{lost}; then {waited}"))
        return False

    def _follow(self, job_id: str, backend: Backend, ref: str, control: _Control, since: str,
                skip: int = 0, may_retry: bool = False) -> str:
        """Record the backend's events until the job ends, then finish it.

        A user's cancel goes to the backend; when its follow has not seen the end ``cancel_grace``
        s later (a pod stuck Pending, a controller that lost the job), the follow is stopped. On
        :meth:`close` the follow stops at once and the job, still running there, is left for a
        re-attach. ``skip``: how many of the backend's first events a dead owner already recorded
        (its log is replayed from the start when no ``since`` was saved). ``may_retry``: a run lost
        for a reason that is not the notebook's is not finished; its reason is returned ("" else).
        """
        runner_end: list[Finished] = []
        emit = self._emitter(job_id)
        replayed = [0]
        run_started = [self.store.get(job_id).started or time.time()]

        def on_event(event: Event) -> None:
            if isinstance(event, Finished):
                runner_end.append(event)  # folded into the job's own Finished below
                return
            if replayed[0] < skip:
                replayed[0] += 1
                return
            if isinstance(event, RunStarted):  # the time limit counts from here, not from a wait in a queue
                run_started[0] = time.time()
            emit(event)

        followed = threading.Event()

        def stop_on_cancel() -> None:
            while not followed.is_set() and not control.wake.wait(CANCEL_POLL_SECONDS):
                pass  # until a cancel, close() (which sets the stop itself) or the end of the follow
            if followed.is_set() or not control.by_user:
                return
            try:
                backend.cancel(job_id, ref)
            except Exception as e:  # noqa: BLE001 - the follow must still be stopped
                emit(Log(text=f"the backend could not cancel the job: {e}\n", stream="stderr"))
            if not followed.wait(self.cancel_grace):
                control.stop.set()

        self._spawn(f"jc-stop-{job_id}", stop_on_cancel)
        record = self.store.get(job_id)
        timed_out = self._watch_time_limit(job_id, backend, ref, record, followed, run_started)
        try:
            outcome = backend.follow(job_id, ref, on_event, since=since, stop=control.stop)
        finally:
            followed.set()
        if self._closed.is_set() and not control.by_user and outcome.exit_code is None:
            # Stopped by close(): the job runs on; ownerless, it is re-attached from where this left off.
            self.store.update(job_id, last_log_time=outcome.last_log_time, owner_pid=None)
            return ""
        self.store.update(job_id, last_log_time=outcome.last_log_time)
        inner = runner_end[-1] if runner_end else None
        lost = "" if control.by_user or timed_out.is_set() else retries.why_lost(outcome, inner)
        if lost and may_retry and not self._closed.is_set():
            with contextlib.suppress(ContainerizeError):  # the engine may still be away: the next start says so
                backend.remove(job_id, ref)
            return lost
        self._finish(job_id, _job_end(outcome, inner, record, by_user=control.by_user,
                                      timed_out=timed_out.is_set(), lost=lost))
        backend.remove(job_id, ref)
        return ""

    def _watch_time_limit(self, job_id: str, backend: Backend, ref: str, record: JobRecord,
                          followed: threading.Event, run_started: list[float]) -> threading.Event:
        """The backstop when the job did not stop itself at --timeout: cancel it on the backend after
        the limit and its grace, counted from ``run_started[0]`` (moved when the run really starts);
        the event returned is set when it did."""
        timed_out = threading.Event()
        limit = hard_limit_seconds(JobSpec.from_dict(record.spec)) if record.spec else None
        if limit is None:
            return timed_out

        def watchdog() -> None:
            while not followed.wait(max(0.0, run_started[0] + limit - time.time())):
                if time.time() >= run_started[0] + limit:
                    timed_out.set()
                    backend.cancel(job_id, ref)
                    return

        self._spawn(f"jc-timeout-{job_id}", watchdog)
        return timed_out

    def _finish(self, job_id: str, end: Finished) -> None:
        record = self.store.get(job_id)
        if record.done:
            return
        if record.output_dir:
            give_outputs_to_notebook_owner(Path(record.output_dir), Path(record.notebook))
        metrics = read_metrics(Path(record.output_dir)) if record.output_dir else {}
        outputs = sorted(str(p) for p in Path(record.output_dir).rglob("*") if p.is_file()) if record.output_dir else []
        end = replace(end, outputs=tuple(outputs) or end.outputs)
        self.store.update(job_id, exit_code=end.exit_code, error=end.error, failing_cell=end.failing_cell,
                          finished=time.time(), metrics=metrics, outputs=outputs)
        self._emit(job_id, end)  # before the status: views see the end before wait() returns
        self.store.update(job_id, status=end.status)
        self._notify(job_id, record)
        if record.schedule_id and record.image_tag:  # the schedule's next runs need it: prune keeps it
            self.store.schedule_image(record.schedule_id, record.image_tag, record.image_id)
        self._apply_retention()

    def _notify(self, job_id: str, record: JobRecord) -> None:
        """Tell the job's ``--notify`` target (else the config's) that it ended, in a thread of its own."""
        target = str(record.spec.get("notify") or "")
        if not target:
            with contextlib.suppress(ContainerizeError):
                target = self.config.notify or ""
        if not target:
            return

        def send() -> None:
            from .notify import send as send_summary

            problem = send_summary(target, self.store.get(job_id))
            if problem:  # the job's record is final (its Finished is the last event): the server's log says it
                _LOG.warning("jupyter-containerize: job %s: %s", job_id, problem)

        self._spawn(f"jc-notify-{job_id}", send)

    def _apply_retention(self) -> None:
        """The config's automatic retention (``retention_keep_last``/``retention_older_than``), after a job's end:
        a ``prune`` without sizes, one at a time per process; a failure never fails the job."""
        try:
            config = self.config
        except ContainerizeError:  # a malformed JC_* variable: the backends report it
            return
        if config.retention_keep_last is None and config.retention_older_than is None:
            return
        if not _RETAINING.acquire(blocking=False):
            return  # another job's end is applying it now
        try:
            from .commands import prune_apply, prune_plan
            from .retention import Retention

            retention = Retention(config.retention_keep_last, config.retention_older_than)
            prune_apply(self, prune_plan(self, retention, protected=self.protected_images, sizes=False,
                                         engine_required=False))
        except Exception:  # noqa: BLE001 - disk hygiene is best effort; the next job's end tries again
            pass
        finally:
            _RETAINING.release()

    # -- control -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> None:
        """Cancel a job in any phase, from any process."""
        record = self.store.get(job_id)
        if record.done:
            return
        self.store.update(record.id, cancel_requested=1)
        with self._lock:
            local = self._controls.get(record.id)
        if local is not None:
            local.request_cancel()
            return
        if record.backend_ref:
            self.backend(record.backend).cancel(record.id, record.backend_ref)
        if not _pid_alive(record.owner_pid):
            self._finish(record.id, Finished(status="cancelled", error="cancelled by the user"))

    def remove(self, job_id: str) -> None:
        """Cancel if needed, remove the job's containers and forget it."""
        record = self.store.get(job_id)
        if not record.done:
            self.cancel(record.id)
        with contextlib.suppress(ContainerizeError):
            self.backend(record.backend).remove(record.id, record.backend_ref)
        self.store.delete(record.id)

    def attach(self, job_id: str) -> Job:
        """A handle on an existing job; re-attach to its container when its owner process is gone."""
        record = self.store.get(job_id)
        job = Job(self, record.id)
        if record.done or record.id in self._threads or _pid_alive(record.owner_pid) or self._closed.is_set():
            return job
        if not record.backend_ref:
            self._finish(record.id, Finished(status="failed", error="the process preparing this job ended before it started"))
            return job
        self.store.update(record.id, owner_pid=os.getpid())
        backend = self.backend(record.backend)
        # The owner died while following: its log position was never saved, so the log replays from
        # the start; skip what it already recorded (every event after 'running' came from the log).
        skip = 0 if record.last_log_time else self._recorded_since_running(record.id)
        control = self._control(record.id, started=True)
        self._spawn(f"jc-follow-{record.id}", self._follow_attached, record.id, backend, record.backend_ref,
                    control, record.last_log_time, skip, job_id=record.id)
        return job

    def _follow_attached(self, job_id: str, backend: Backend, ref: str, control: _Control, since: str,
                         skip: int) -> None:
        try:
            self._follow(job_id, backend, ref, control, since, skip)
        finally:
            control.wake.set()  # its watchers end with it
            self._forget(job_id)

    def _recorded_since_running(self, job_id: str) -> int:
        events = self.store.events(job_id)
        starts = [i for i, (_, e) in enumerate(events) if isinstance(e, StatusChanged) and e.status == "running"]
        return len(events) - starts[-1] - 1 if starts else 0

    def reconcile(self, settle: float = 0.0) -> None:
        """Re-attach every unfinished job whose owner process is gone (server start, `jobs`).

        ``settle``: wait up to that many seconds in all for the re-attached jobs that already ended on
        their backend to be recorded as ended (a short-lived process, such as the CLI's ``jobs``, would
        otherwise exit before they are and list a job that ended long ago as running).
        """
        attached = []
        for record in self.store.list(limit=500):
            if not record.done and record.id not in self._threads and not _pid_alive(record.owner_pid):
                try:
                    attached.append(self.attach(record.id))
                except ContainerizeError:
                    continue
        deadline = time.monotonic() + settle
        for job in attached:
            record = job.record
            if record.done or not record.backend_ref:
                continue
            with contextlib.suppress(ContainerizeError):
                if not self.backend(record.backend).is_running(job.id, record.backend_ref):
                    job.wait(timeout=max(0.0, deadline - time.monotonic()))

    # -- events --------------------------------------------------------------------------------
    def _subscribe(self, job_id: str, callback: EventCallback) -> Callable[[], None]:
        with self._lock:
            self._subscribers.setdefault(job_id, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subscribers.get(job_id, [])
                if callback in subs:
                    subs.remove(callback)

        return unsubscribe

    def _emitter(self, job_id: str) -> EventCallback:
        return lambda event: self._emit(job_id, event)

    def _emit(self, job_id: str, event: Event) -> None:
        self.store.append_event(job_id, event)
        if isinstance(event, BuildFinished):
            self.store.update(job_id, image_tag=event.tag, image_id=event.image_id)
        with self._lock:
            subscribers = list(self._subscribers.get(job_id, ()))
        for callback in subscribers:
            with contextlib.suppress(Exception):  # a broken view must not break the job
                callback(event)

    def _set_status(self, job_id: str, status: str) -> None:
        self.store.update(job_id, status=status)
        self._emit(job_id, StatusChanged(status=status))  # type: ignore[arg-type]

    def _watch_cancel_requests(self, job_id: str, control: _Control) -> None:
        """Honour `stop` from other processes (CLI, server) by polling the store, until the job's end."""
        while not control.wake.is_set():
            try:
                record = self.store.get(job_id)
            except ContainerizeError:
                return
            if record.done:
                return
            if record.cancel_requested:
                control.request_cancel()
                return
            control.wake.wait(CANCEL_POLL_SECONDS)

    def _mount_data(self, spec: JobSpec, prepared: Prepared, emit: EventCallback) -> JobSpec:
        """The spec with the notebook's data mounted (refused before building where the backend cannot)."""
        spec, notes = with_data_mounts(spec, prepared.snapshot,
                                       host_paths=getattr(self.backend(spec.backend), "host_paths", True))
        for note in notes:
            emit(Log(text=f"{note}\n", stream="stderr"))
        return spec

    @staticmethod
    def _default_shm(spec: JobSpec, prepared: Prepared) -> JobSpec:
        """PyTorch DataLoader workers need more than Docker's 64 MB of /dev/shm."""
        if spec.resources.shm_size is None and prepared.snapshot.pin("torch") is not None:
            return replace(spec, resources=replace(spec.resources, shm_size="1g"))
        return spec


def _environment_key(prepared: Prepared) -> str:
    """The environment a job's image holds: its lock and base image (not the notebook, which changes often)."""
    try:
        lock = (prepared.context.path / "requirements.lock").read_bytes()
    except OSError:
        lock = b""
    return hashlib.sha256(lock + b"\0" + prepared.context.base_image.encode()).hexdigest()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _job_end(outcome: RunOutcome, inner: Finished | None, record: JobRecord, *, by_user: bool, timed_out: bool,
             lost: str) -> Finished:
    """The job's end from the backend's ``outcome`` and the runner's own end (``inner``), if it wrote one."""
    status: JobStatus
    if by_user or (inner is not None and inner.status == "cancelled" and not lost):
        status = "cancelled"
    elif outcome.exit_code == 0:
        status = "succeeded"
    else:
        status = "failed"
    error = inner.error if inner else ("" if outcome.exit_code == 0 else f"the container exited with code {outcome.exit_code}")
    if timed_out and not by_user and status != "succeeded":
        limit = JobSpec.from_dict(record.spec).resources.time_limit
        status, error = "failed", f"timed out after {limit} (--timeout): the job did not stop by itself, so it was stopped"
    elif lost:
        status, error = "failed", _lost_error(lost, record)
    elif outcome.out_of_memory and status != "succeeded":
        status, error = "failed", retries.out_of_memory_error(JobSpec.from_dict(record.spec))
    return Finished(status=status, exit_code=outcome.exit_code, error=error,
                    failing_cell=inner.failing_cell if inner else None, traceback=inner.traceback if inner else "",
                    outputs=inner.outputs if inner else ())


def _lost_error(lost: str, record: JobRecord) -> str:
    """The error of a job whose last attempt was lost (not the notebook's fault)."""
    tries = f" (attempt {record.attempt} of {record.attempts}: no retry left)" if record.attempts > 1 else \
        " (run with --retries N to retry such failures)"
    return lost + tries
