"""REST handlers under ``/containerize/``; every one is authenticated and authorized."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from ..comparison import Direction
from ..errors import ContainerizeError, JobNotFound, NotebookError, OptionError
from ..jobs.manager import JobManager
from ..jobs.store import JobStore
from .kernels import notebook_python
from .parameters import notebook_parameters
from .paths import api_path_of, resolve_in_root
from .payload import spec_from_payload
from .views import comparison_json, context_json, job_json

AUTH_RESOURCE = "containerize"
SSE_POLL_S = 0.25
SSE_HEARTBEAT_S = 15.0

F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def reports_errors(method: F) -> F:
    """Answer predictable failures as JSON ``{"error": ...}``: 404 for unknown jobs, 400 otherwise."""

    @functools.wraps(method)
    async def wrapper(self: ContainerizeHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except JobNotFound as e:
            self.fail(404, str(e))
        except ContainerizeError as e:
            self.log.warning("containerize: %s %s: %s", self.request.method, self.request.path, e)
            self.fail(400, str(e))

    return cast(F, wrapper)


class ContainerizeHandler(APIHandler):
    """Common ground: the manager, the root folder, JSON in and out."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> JobManager:
        return cast(JobManager, self.settings["containerize_manager"])

    @property
    def store(self) -> JobStore:
        return self.manager.store

    @property
    def root(self) -> Path:
        return Path(self.settings["containerize_root"])

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise OptionError("The request body is not JSON", "Send a JSON object.") from None
        if not isinstance(data, dict):
            raise OptionError("The request body must be a JSON object", "Send {\"path\": ..., \"options\": {...}}.")
        return data

    def int_argument(self, name: str, default: int, fallback: str | None = None) -> int:
        """The query argument ``name`` as an integer (``fallback`` when it is absent); bad input is an OptionError (400)."""
        text = (self.get_query_argument(name, "") or fallback or "").strip()
        if not text:
            return default
        value: int | None
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or abs(value) >= 2**63:  # SQLite's integers are 64-bit
            raise OptionError(f"The {name} parameter must be a whole number, not {text[:40]!r}",
                              f"Send ?{name}=<integer>.")
        return value

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, default=str))

    async def spec_for(self, command: str, data: dict[str, Any]) -> Any:
        api_path = str(data.get("path") or "")
        notebook = resolve_in_root(self.root, api_path)
        python = await notebook_python(self.serverapp, api_path, notebook)
        return spec_from_payload(command, notebook, data.get("options") or {}, python, self.root)


class JobsHandler(ContainerizeHandler):
    """``GET /containerize/jobs`` lists jobs; ``POST`` starts one for a notebook."""

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self) -> None:
        limit = self.int_argument("limit", 50)
        status = self.get_query_argument("status", None) or None
        name = self.get_query_argument("name", None) or None
        sweep = self.get_query_argument("sweep", None) or None
        path = self.get_query_argument("path", None)
        notebook = None
        if path:
            parts = PurePosixPath(path.replace("\\", "/")).parts
            if path.startswith("/") or ".." in parts or "\x00" in path:
                self.send({"jobs": []})  # no job's path (relative to the root) looks like that
                return
            # Filtered in the query, so ?limit counts this notebook's jobs; notebooks are stored resolved.
            notebook = str(self.root.resolve().joinpath(*parts))
        records = await asyncio.to_thread(self.store.list, min(max(limit, 1), 500), status, sweep, notebook, name)
        self.send({"jobs": [job_json(r, self.root) for r in records]})

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self) -> None:
        data = self.body()
        spec = await self.spec_for("run", data)
        if spec.sweep:
            jobs = await asyncio.to_thread(self.manager.submit_sweep, spec)
            records = [await asyncio.to_thread(self.store.get, j.id) for j in jobs]
            self.send({"jobs": [job_json(r, self.root) for r in records]}, status=201)
            return
        job = await asyncio.to_thread(self.manager.submit, spec)
        record = await asyncio.to_thread(self.store.get, job.id)
        self.send(job_json(record, self.root), status=201)


class JobHandler(ContainerizeHandler):
    """``GET /containerize/jobs/<id>``; ``DELETE`` cancels if needed and forgets it.

    ``DELETE …?outputs=1`` removes a finished job and its own output folder (``<notebook stem>.jc-jobs/<id>/``
    beside the notebook, inside the Jupyter root); a folder given with ``--output`` stays. It answers
    ``{"id", "folder_removed", "folder_kept"}`` (paths relative to the root, or null).
    """

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self, job_id: str) -> None:
        record = await asyncio.to_thread(self.store.get, job_id)
        self.send(job_json(record, self.root))

    @web.authenticated
    @authorized
    @reports_errors
    async def delete(self, job_id: str) -> None:
        outputs = self.get_query_argument("outputs", "0").strip().lower()
        if outputs not in ("0", "1", "false", "true", ""):
            raise OptionError(f"The outputs parameter must be 1 or 0, not {outputs[:40]!r}",
                              "Send ?outputs=1 to delete the job's own output folder too.")
        if outputs in ("0", "false", ""):
            await asyncio.to_thread(self.manager.remove, job_id)
            self.set_status(204)
            self.finish()
            return
        from ..jobs.commands import remove_with_outputs

        removed = await asyncio.to_thread(remove_with_outputs, self.manager, job_id, within=self.root)
        self.send({"id": removed.id,
                   "folder_removed": api_path_of(self.root, removed.folder) if removed.folder else None,
                   "folder_kept": (api_path_of(self.root, removed.kept) or str(removed.kept)) if removed.kept else None})


class CancelHandler(ContainerizeHandler):
    """``POST /containerize/jobs/<id>/cancel``."""

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self, job_id: str) -> None:
        await asyncio.to_thread(self.manager.cancel, job_id)
        record = await asyncio.to_thread(self.store.get, job_id)
        self.send(job_json(record, self.root), status=202)


class RerunHandler(ContainerizeHandler):
    """``POST /containerize/jobs/<id>/rerun``: a new job with the same spec (its notebook must be inside the root)."""

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self, job_id: str) -> None:
        from ..jobspec import JobSpec

        record = await asyncio.to_thread(self.store.get, job_id)
        api_path = api_path_of(self.root, record.notebook)
        if api_path is None:
            raise NotebookError("That job's notebook lies outside the Jupyter root",
                                "Re-run it with `jupyter containerize run` from a terminal.")
        resolve_in_root(self.root, api_path)
        spec = JobSpec.from_dict(record.spec)
        job = await asyncio.to_thread(self.manager.submit, spec)
        self.send(job_json(await asyncio.to_thread(self.store.get, job.id), self.root), status=201)


class EventsHandler(ContainerizeHandler):
    """``GET /containerize/jobs/<id>/events?after=N``: server-sent events read from the store.

    Streams by sequence number, so it serves jobs started by any process and a
    client resumes after a reload with ``after`` (or ``Last-Event-ID``). The
    stream ends with an ``end`` event once the job is finished.
    """

    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self, job_id: str) -> None:
        after = self.int_argument("after", 0, fallback=self.request.headers.get("Last-Event-ID"))
        follow = self.get_query_argument("follow", "1") not in ("0", "false")
        await asyncio.to_thread(self.store.get, job_id)  # 404 before the stream starts
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        last_write = time.monotonic()
        try:
            while not self._closed:
                batch = await asyncio.to_thread(self.store.events, job_id, after)
                for seq, event in batch:
                    after = seq
                    self.write(f"id: {seq}\ndata: {json.dumps(event.to_dict(), default=str)}\n\n")
                if batch:
                    await self.flush()
                    last_write = time.monotonic()
                    continue
                record = await asyncio.to_thread(self.store.get, job_id)
                if record.done or not follow:
                    tail = await asyncio.to_thread(self.store.events, job_id, after)
                    for seq, event in tail:
                        self.write(f"id: {seq}\ndata: {json.dumps(event.to_dict(), default=str)}\n\n")
                    self.write(f"event: end\ndata: {json.dumps({'status': record.status})}\n\n")
                    break
                if time.monotonic() - last_write > SSE_HEARTBEAT_S:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    last_write = time.monotonic()
                await asyncio.sleep(SSE_POLL_S)
            self.finish()
        except StreamClosedError:
            return
        except JobNotFound:  # deleted while streaming
            if not self._finished:
                self.write(f"event: end\ndata: {json.dumps({'status': 'deleted'})}\n\n")
                self.finish()


class SweepHandler(ContainerizeHandler):
    """``GET /containerize/sweeps/<id>?metric=&direction=``: the sweep's jobs compared.

    The rows (best first), the metric and direction chosen, the best run and a Vega-Lite v5 spec
    of the plot (``jupyter containerize jobs --sweep ID --json``). ``direction``: minimize or
    maximize (default: from the metric's name).
    """

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self, sweep_id: str) -> None:
        from ..jobs.queries import compare_sweep

        metric = self.get_query_argument("metric", "") or None
        text = self.get_query_argument("direction", "")
        directions: dict[str, Direction | None] = {"": None, "minimize": "minimize", "maximize": "maximize"}
        if text not in directions:
            raise OptionError(f"The direction parameter must be minimize or maximize, not {text[:40]!r}",
                              "Send ?direction=minimize, or leave it out to infer it from the metric's name.")
        comparison = await asyncio.to_thread(compare_sweep, self.store, sweep_id, metric=metric,
                                             direction=directions[text])
        self.send(comparison_json(comparison))


class PreviewHandler(ContainerizeHandler):
    """``POST /containerize/preview``: the Dockerfile and context files for a notebook (no engine needed)."""

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self) -> None:
        from ..jobs.pipeline import prepare

        spec = await self.spec_for("run", self.body())  # the run form's options; capture ignores run-only ones
        prepared = await asyncio.to_thread(prepare, spec)
        try:
            # The spec decides what a run mounts; the rule reads the data's sizes, so off the event loop.
            self.send(await asyncio.to_thread(context_json, prepared, spec))
        finally:
            prepared.cleanup()


class EngineHandler(ContainerizeHandler):
    """``GET /containerize/engine``: reachable, version, GPU runtime, GPUs."""

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self) -> None:
        from ..jobs.commands import engine

        self.send(await asyncio.to_thread(engine))


class ParametersHandler(ContainerizeHandler):
    """``GET /containerize/notebook-parameters?path=``: the parameters cell's assignments."""

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self) -> None:
        notebook = resolve_in_root(self.root, self.get_query_argument("path", ""))
        self.send(await asyncio.to_thread(notebook_parameters, notebook))


class SchedulesHandler(ContainerizeHandler):
    """``GET /containerize/schedules`` lists them; ``POST`` saves one: ``{"path", "cron", "tz", "options"}``,
    the options of ``POST /containerize/jobs``, checked as a run is before anything is saved (201)."""

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self) -> None:
        from ..jobs import commands
        from .views import schedule_json

        rows = await asyncio.to_thread(commands.schedules, self.manager)
        self.send({"schedules": [schedule_json(r, self.root) for r in rows]})

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self) -> None:
        from ..jobs import commands
        from .payload import schedule_from_payload
        from .views import schedule_json

        data = self.body()
        api_path = str(data.get("path") or "")
        notebook = resolve_in_root(self.root, api_path)
        python = await notebook_python(self.serverapp, api_path, notebook)
        parsed = schedule_from_payload(notebook, data, python, self.root)
        assert parsed.spec is not None
        view = await asyncio.to_thread(commands.schedule, self.manager, parsed.spec, parsed.args["rule"])
        self.send(schedule_json(view, self.root), status=201)


class ScheduleHandler(ContainerizeHandler):
    """``GET /containerize/schedules/<id>``; ``DELETE`` removes it (its runs stay)."""

    @web.authenticated
    @authorized
    @reports_errors
    async def get(self, schedule_id: str) -> None:
        from ..jobs.schedules import views
        from .views import schedule_json

        record = await asyncio.to_thread(self.store.schedule, schedule_id)
        rows = await asyncio.to_thread(views, self.store, [record])
        self.send(schedule_json(rows[0], self.root))

    @web.authenticated
    @authorized
    @reports_errors
    async def delete(self, schedule_id: str) -> None:
        from ..jobs import commands

        await asyncio.to_thread(commands.unschedule, self.manager, schedule_id)
        self.set_status(204)
        self.finish()


class PauseScheduleHandler(ContainerizeHandler):
    """``POST /containerize/schedules/<id>/pause``: it starts no run until resumed."""

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self, schedule_id: str) -> None:
        from ..jobs import commands
        from .views import schedule_json

        self.send(schedule_json(await asyncio.to_thread(commands.pause, self.manager, schedule_id), self.root))


class ResumeScheduleHandler(ContainerizeHandler):
    """``POST /containerize/schedules/<id>/resume``: runs again from its next time after now."""

    @web.authenticated
    @authorized
    @reports_errors
    async def post(self, schedule_id: str) -> None:
        from ..jobs import commands
        from .views import schedule_json

        self.send(schedule_json(await asyncio.to_thread(commands.resume, self.manager, schedule_id), self.root))


_JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]+)"
_SCHEDULE_ID = r"(?P<schedule_id>[A-Za-z0-9_-]+)"

HANDLERS: list[tuple[str, type[ContainerizeHandler]]] = [
    (r"/containerize/jobs", JobsHandler),
    (rf"/containerize/jobs/{_JOB_ID}", JobHandler),
    (rf"/containerize/jobs/{_JOB_ID}/cancel", CancelHandler),
    (rf"/containerize/jobs/{_JOB_ID}/rerun", RerunHandler),
    (rf"/containerize/jobs/{_JOB_ID}/events", EventsHandler),
    (r"/containerize/sweeps/(?P<sweep_id>[A-Za-z0-9_-]+)", SweepHandler),
    (r"/containerize/preview", PreviewHandler),
    (r"/containerize/engine", EngineHandler),
    (r"/containerize/notebook-parameters", ParametersHandler),
    (r"/containerize/schedules", SchedulesHandler),
    (rf"/containerize/schedules/{_SCHEDULE_ID}", ScheduleHandler),
    (rf"/containerize/schedules/{_SCHEDULE_ID}/pause", PauseScheduleHandler),
    (rf"/containerize/schedules/{_SCHEDULE_ID}/resume", ResumeScheduleHandler),
]
