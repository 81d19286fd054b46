"""Faults on the real engine: nothing is lost (issue 8).

Container killed mid-run, the owning server killed mid-job, cancel in every phase, the
package index cut off during a build, failing notebooks, a locked job store. The daemon
restart lives in test_daemon_restart.py (marked ``daemon_restart``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.errors import BuildError, JobError
from jupyter_containerize.events import BuildStep, CellFinished, CellStarted, Log
from jupyter_containerize.jobs.manager import JobManager, prepare
from jupyter_containerize.jobs.store import JobStore
from tests.support.cli import check_store_consistent, cli
from tests.support.engine import labelled_containers
from tests.support.jobs import job_events, ticks, wait_for
from tests.support.notebooks import write_notebook
from tests.support.outputs import read_output_notebook
from tests.support.specs import run_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"





def _ticking(path: Path, n: int, pause: float = 1.0) -> Path:
    return write_notebook(path, *[f"import time\nprint('tick {i}', flush=True)\ntime.sleep({pause})" for i in range(n)])


@pytest.mark.engine
def test_container_killed_mid_run_fails_keeps_partial_notebook_and_log(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = _ticking(tmp_path / "steady.ipynb", 30)
    manager = JobManager(JobStore(job_store))
    job = manager.submit(run_spec(nb))
    wait_for(lambda: sum(isinstance(e, CellFinished) for e in job_events(job)) >= 3, 600, "three cells")
    engine.containers.get(f"jc-{job.id}").kill()
    record = job.wait(timeout=120)
    assert record.status == "failed" and record.exit_code == 137, (record.status, record.exit_code, record.error)
    assert "137" in record.error
    partial = read_output_notebook(record.output_dir, record.id)
    done = [i for i, c in enumerate(partial.cells) if any("tick" in o.get("text", "") for o in c.get("outputs", []))]
    assert done[:3] == [0, 1, 2]  # the cells that finished before the kill are saved with their output
    printed = ticks(job_events(job))
    assert printed == [f"tick {i}" for i in range(len(printed))] and len(printed) >= 3  # in order, none lost or doubled
    assert labelled_containers(engine, job.id) == []
    assert check_store_consistent(job_store) == []


# -- the server that owns a job dies -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `jupyter server` process with the extension, on a private port and store."""

    def __init__(self, root: Path, store: Path) -> None:
        self.root, self.store, self.port, self.token = root, store, _free_port(), uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "JC_STORE": str(self.store), "JUPYTER_RUNTIME_DIR": str(self.root / ".runtime")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={self.port}", "--ip=127.0.0.1",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}",
             "--ServerApp.jpserver_extensions={'jupyter_containerize': True}"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.root / "server.log", "ab"),  # noqa: SIM115
            start_new_session=True)
        wait_for(self._up, 90, "the server to answer")

    def _up(self) -> bool:
        try:
            self.call("GET", "engine")
            return True
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/containerize/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data else None

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.mark.engine
def test_server_killed_mid_job_then_restarted_reattaches_and_records_everything(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    _ticking(tmp_path / "steady.ipynb", 12)
    server = Server(tmp_path, job_store)
    server.start()
    try:
        job = server.call("POST", "jobs", {"path": "steady.ipynb", "options": {}})
        store = JobStore(job_store)

        def ticks_seen() -> int:
            return len(ticks([e for _, e in store.events(job["id"])]))

        wait_for(lambda: ticks_seen() >= 3, 600, "the job to print")
        server.kill()  # the owner dies; its container keeps running
        assert labelled_containers(engine, job["id"]), "the container must outlive its owner"
        time.sleep(3)  # ticks printed now are only in the container's log
        server = Server(tmp_path, job_store)
        server.start()  # the extension reconciles on start
        wait_for(lambda: server.call("GET", f"jobs/{job['id']}")["done"], 300, "the job to end")
        final = server.call("GET", f"jobs/{job['id']}")
    finally:
        server.stop()
    assert final["status"] == "succeeded", final
    events = [e for _, e in store.events(job["id"])]
    assert ticks(events) == [f"tick {i}" for i in range(12)]  # none lost, none doubled
    assert [e.index for e in events if isinstance(e, CellStarted)] == list(range(12))
    assert server.proc is not None and store.get(job["id"]).owner_pid == server.proc.pid  # the new server owns it
    assert labelled_containers(engine, job["id"]) == []
    assert check_store_consistent(job_store) == []


# -- cancel in every phase --------------------------------------------------------------------------


def _tag_exists(engine: docker.DockerClient, tag: str) -> bool:
    return bool(tag) and any(tag in (i.tags or []) for i in engine.images.list(name=tag.split(":")[0]))


@pytest.mark.engine
def test_cancel_in_every_phase_leaves_no_container_and_no_tagged_image(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    manager = JobManager(JobStore(job_store))
    marker = uuid.uuid4().hex  # a context no earlier test built: its tag must not appear
    nb = write_notebook(tmp_path / "phases.ipynb", f"# {marker}\nimport time\nfor i in range(600):\n    time.sleep(0.5)")

    # queued, in this process: cancelled before the worker got anywhere
    job = manager.submit(run_spec(nb))
    phase = job.status
    job.cancel()
    record = job.wait(timeout=300)
    assert phase in ("queued", "building") and record.status == "cancelled", (phase, record.status)
    if record.lock_hash:  # a cancel that came before the build started must not build (or tag) anything
        assert not _tag_exists(engine, f"jupyter-containerize/phases:{record.lock_hash[:16]}")

    # queued, owned by a process that died before starting it: `stop` ends it (it was lost with its
    # owner, so it is recorded as failed with that reason, never left queued forever)
    orphan = manager.store.create(str(nb), spec={}, owner_pid=2**22 + 7)  # no such pid
    result = cli("stop", orphan.id, cwd=tmp_path, store=job_store)
    assert result.returncode == 0 and orphan.id in result.stdout, result.stderr
    ended = manager.store.get(orphan.id)
    assert ended.status == "failed" and "ended before it started" in ended.error, (ended.status, ended.error)

    # building (no cache, so there is a build to interrupt)
    job = manager.submit(run_spec(nb, "--no-cache"))
    wait_for(lambda: sum(isinstance(e, BuildStep) for e in job_events(job)) >= 3, 600, "build steps")
    job.cancel()
    record = job.wait(timeout=120)
    assert record.status == "cancelled"
    tag = f"jupyter-containerize/phases:{record.lock_hash[:16]}"
    assert record.lock_hash and not _tag_exists(engine, tag), "a cancelled build must not leave its tag"

    # running
    job = manager.submit(run_spec(nb))
    wait_for(lambda: any(isinstance(e, CellStarted) for e in job_events(job)), 900, "the cell to start")
    job.cancel()
    record = job.wait(timeout=120)
    assert record.status == "cancelled"

    for r in manager.store.list():
        assert labelled_containers(engine, r.id) == [], r.id
    assert check_store_consistent(job_store) == []


# -- the package index cut off during a build --------------------------------------------------------


@pytest.mark.engine
def test_package_index_unreachable_during_build_shows_the_installers_last_lines(
        tmp_path: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = write_notebook(tmp_path / "offline.ipynb", f"# {uuid.uuid4().hex}\nprint('hi')")
    prepared = prepare(run_spec(nb))
    try:
        with pytest.raises(BuildError) as info:
            build_image(prepared.context, lambda e: None, no_cache=True, network_mode="none")
        tag = prepared.context.image_tag
    finally:
        prepared.cleanup()
    error = info.value
    assert "pip install" in error.step or "uv" in error.step, error.step
    assert "The image build failed at step" in str(error) and "Last lines of the build" in str(error)
    tail = "\n".join(error.log_tail).lower()
    assert any(w in tail for w in ("no matching distribution", "could not find a version", "network", "resolve",
                                   "connection", "failed to fetch")), tail
    assert not _tag_exists(engine, tag)


# -- notebooks that fail ----------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.parametrize("fixture, needle", [("broken", "ValueError"), ("sysexit1", "SystemExit"),
                                             ("keyboard_interrupt", "KeyboardInterrupt")])
def test_failing_notebook_through_the_cli(tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str,
                                          fixture: str, needle: str) -> None:
    nb = tmp_path / f"{fixture}.ipynb"
    shutil.copy(FIXTURES / f"{fixture}.ipynb", nb)
    result = cli("run", nb.name, cwd=tmp_path, store=job_store, timeout=900)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "jupyter_containerize/" not in result.stderr  # the cell's traceback, as papermill prints it; not the tool's
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("job failed") and "at cell 2" in last and needle in last, result.stdout
    record = JobStore(job_store).list(limit=1)[0]
    assert record.status == "failed" and record.failing_cell == 1
    partial = read_output_notebook(record.output_dir, record.id)
    code = [c for c in partial.cells if c.cell_type == "code"]  # papermill's error markers are markdown
    assert "start" in json.dumps(code[0].outputs) or "before" in json.dumps(code[0].outputs)
    assert not code[2].get("outputs")  # the cell after the failure never ran
    assert labelled_containers(engine, record.id) == []
    assert check_store_consistent(job_store) == []


# -- the job store locked by another process ----------------------------------------------------------

HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE jobs SET updated = updated")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_locked_store_gives_a_clear_error_then_works_again(tmp_path: Path, job_store: Path) -> None:
    nb = write_notebook(tmp_path / "ok.ipynb", "print(1)")
    store = JobStore(job_store)
    existing = store.create(str(nb))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(job_store), "6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(JobError, match="stayed locked"):
            JobStore(job_store, timeout=0.5).create(str(nb))
        assert time.monotonic() - started < 4
        with pytest.raises(JobError, match="stayed locked"):
            JobStore(job_store, timeout=0.5).append_event(existing.id, Log(text="x"))
        result = cli("run", "ok.ipynb", cwd=tmp_path, store=job_store, env={"JC_STORE_TIMEOUT": "1"}, timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert [p for p in result.problems] == [result.problems[0]] and "stayed locked" in result.problems[0]
    finally:
        holder.wait(30)
    assert holder.returncode == 0
    # Released: nothing was half-written, and the store works again.
    assert [r.id for r in store.list()] == [existing.id]
    assert store.events(existing.id) == []
    store.append_event(existing.id, Log(text="after"))
    assert [e.text for _, e in store.events(existing.id)] == ["after"]  # type: ignore[attr-defined]
    assert sqlite3.connect(job_store).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
