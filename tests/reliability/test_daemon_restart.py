"""The Docker daemon stopped before and during a build: a clear error, then a retry works.

WARNING — THIS TEST STOPS THE SHARED dockerd (SIGTERM), which also stops every running
container on this machine, including other people's test jobs. It is collected only
with ``-m daemon_restart``, ``JC_DAEMON_RESTART=1`` or in CI (``CI=true``, where nothing else
runs); otherwise ``tests/conftest.py`` deselects it. Run it alone, at a quiet moment, e.g.::

    .venv/bin/python -m pytest tests/reliability/test_daemon_restart.py -m daemon_restart

The daemon is always restarted in a ``finally`` block (the way scripts/ensure-engine.sh
starts it) and the test waits until ``docker info`` answers; each outage lasts seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.errors import EngineError
from jupyter_containerize.events import BuildStep, Log, Retrying
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from tests.support import REPO
from tests.support.cli import assert_one_clear_error, check_store_consistent, cli
from tests.support.notebooks import write_notebook
from tests.support.specs import run_spec

pytestmark = [pytest.mark.engine, pytest.mark.daemon_restart]


def _engine_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0


def _dockerd_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False).stdout.split()
    return int(out[0]) if out else None


def _stop_dockerd() -> None:
    pid = _dockerd_pid()
    assert pid is not None, "no dockerd runs on this machine"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _dockerd_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _dockerd_pid() != pid, "dockerd did not stop"


def _start_dockerd() -> None:
    """Start dockerd exactly as scripts/ensure-engine.sh does, and wait until it answers."""
    if not _engine_answers():
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-engine.sh")], check=False, timeout=120)
    deadline = time.monotonic() + 90
    while not _engine_answers():
        assert time.monotonic() < deadline, "dockerd did not come back"
        time.sleep(0.5)


@pytest.fixture()
def daemon_outage() -> Any:
    """Stops dockerd on request; always restarts it afterwards. Opt-in only (see above)."""
    if os.geteuid() != 0:
        pytest.fail("stopping and restarting the daemon needs root", pytrace=False)
    try:
        yield _stop_dockerd
    finally:
        _start_dockerd()


@pytest.mark.daemon_restart
def test_daemon_stopped_before_and_during_a_build(tmp_path: Path, job_store: Path, base_image: str,
                                                  daemon_outage: Any) -> None:
    nb = write_notebook(tmp_path / "outage.ipynb", f"# {uuid.uuid4().hex}\nprint('after the outage')")
    manager = JobManager(JobStore(job_store))

    # 1. Stopped before: the CLI says so in one sentence; a submitted job fails with the same reason.
    daemon_outage()
    try:
        result = cli("build", nb.name, cwd=tmp_path, store=job_store, timeout=120)
        assert_one_clear_error(result, "No Docker engine answers", "Start one")
        with pytest.raises(EngineError, match="No Docker engine answers"):  # refused at submit: nothing recorded
            manager.submit(run_spec(nb))
        assert manager.store.list() == []
    finally:
        _start_dockerd()
    retry = manager.submit(run_spec(nb))
    record = retry.wait(timeout=900)
    assert record.status == "succeeded", record.error

    # 2. Stopped during a build (no cache, so there is one to interrupt).
    job = manager.submit(run_spec(nb, "--no-cache"))
    deadline = time.monotonic() + 600
    while not sum(isinstance(e, BuildStep) for _, e in job.events()) >= 3:
        assert time.monotonic() < deadline and not job.record.done, "the build never got going"
        time.sleep(0.2)
    daemon_outage()
    try:
        record = job.wait(timeout=180)
        assert record.status == "failed", record.status
        assert "Traceback" not in record.error and record.error, record.error
        assert any(w in record.error for w in ("build failed", "No Docker engine", "engine")), record.error
    finally:
        _start_dockerd()
    retry = manager.submit(run_spec(nb))
    record = retry.wait(timeout=900)
    assert record.status == "succeeded", record.error
    assert check_store_consistent(job_store) == []


@pytest.mark.daemon_restart
def test_a_job_lost_to_an_engine_restart_is_retried_and_succeeds(tmp_path: Path, job_store: Path, base_image: str,
                                                                 daemon_outage: Any) -> None:
    nb = write_notebook(tmp_path / "overnight.ipynb",
                        *[f"import time\nprint('tick {i}', flush=True)\ntime.sleep(1)" for i in range(8)])
    manager = JobManager(JobStore(job_store))
    manager.retry_backoff = 1.0
    job = manager.submit(run_spec(nb, "--retries", "2"))
    deadline = time.monotonic() + 600
    while not any(isinstance(e, Log) and "tick 1" in e.text for _, e in job.events()):
        assert time.monotonic() < deadline and not job.record.done, "the job never got going"
        time.sleep(0.2)
    daemon_outage()  # stops every container with the daemon: the run is lost
    _start_dockerd()
    record = job.wait(timeout=600)
    assert record.status == "succeeded", record.error
    retries = [e for _, e in job.events() if isinstance(e, Retrying)]
    assert retries and retries[0].attempt == 2, record.error
    assert any(w in retries[0].reason for w in ("engine", "outside", "gone")), retries[0].reason
    assert record.attempt == len(retries) + 1
    ticks = [e.text.strip() for _, e in job.events() if isinstance(e, Log) and e.text.strip().startswith("tick ")]
    assert ticks[-8:] == [f"tick {i}" for i in range(8)]  # the last attempt ran the whole notebook
    assert check_store_consistent(job_store) == []
