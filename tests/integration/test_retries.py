"""--retries on the real engine: a run lost for a reason outside the notebook is run again under the
same job, with its own section of the log; a failing cell and an out-of-memory kill are not.

The engine restart itself lives in tests/reliability/test_daemon_restart.py (it stops the shared daemon).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.docker import DockerBackend
from jupyter_containerize.events import CellFinished, Finished, Retrying
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import JobSpec
from tests.support.cli import check_store_consistent, cli
from tests.support.engine import labelled_containers
from tests.support.jobs import job_events, ticks, wait_for
from tests.support.notebooks import write_notebook
from tests.support.specs import run_spec

pytestmark = pytest.mark.engine





def _manager(job_store: Path) -> JobManager:
    manager = JobManager(JobStore(job_store))
    manager.retry_backoff = 1.0
    return manager


def test_a_container_killed_from_outside_is_retried_and_succeeds(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = write_notebook(tmp_path / "steady.ipynb",
                        *[f"import time\nprint('tick {i}', flush=True)\ntime.sleep(0.5)" for i in range(6)])
    manager = _manager(job_store)
    job = manager.submit(run_spec(nb, "--retries", "2"))
    wait_for(lambda: sum(isinstance(e, CellFinished) for e in job_events(job)) >= 2, 600, "two cells")
    engine.containers.get(f"jc-{job.id}").kill()
    record = job.wait(timeout=300)
    assert record.status == "succeeded", record.error
    assert record.attempt == 2 and record.attempts == 3
    events = job_events(job)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [(r.attempt, r.attempts, r.reason) for r in retries] == \
        [(2, 3, "the container was killed from outside (exit code 137)")]
    after = events[events.index(retries[0]):]
    assert ticks(after) == [f"tick {i}" for i in range(6)]  # the second attempt ran the whole notebook
    assert [e for e in events if isinstance(e, Finished)][-1].status == "succeeded"
    assert labelled_containers(engine, job.id) == []  # neither attempt's container is left

    logs = cli("logs", job.id, cwd=tmp_path, store=job_store, timeout=60)
    assert logs.returncode == 0, logs.stderr
    heading = "── attempt 2 of 3 (the one before ended: the container was killed from outside (exit code 137); after 1 s) ──"
    assert heading in logs.stdout.splitlines(), logs.stdout
    listed = cli("jobs", "--json", cwd=tmp_path, store=job_store, timeout=60)
    assert '"attempt": 2' in listed.stdout
    assert check_store_consistent(job_store) == []


def test_without_retries_a_kill_says_it_could_be_retried(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = write_notebook(tmp_path / "once.ipynb", "import time\nprint('tick 0', flush=True)\ntime.sleep(60)")
    manager = _manager(job_store)
    job = manager.submit(run_spec(nb))
    wait_for(lambda: ticks(job_events(job)) == ["tick 0"], 600, "the first cell")
    engine.containers.get(f"jc-{job.id}").kill()
    record = job.wait(timeout=120)
    assert record.status == "failed" and record.exit_code == 137
    assert record.error == "the container was killed from outside (exit code 137) " \
                           "(run with --retries N to retry such failures)"
    assert not any(isinstance(e, Retrying) for e in job_events(job))


def test_a_failing_cell_is_never_retried(tmp_path: Path, job_store: Path, base_image: str) -> None:
    nb = write_notebook(tmp_path / "broken.ipynb", "x = 1", "raise ValueError('bad input data')")
    manager = _manager(job_store)
    job = manager.submit(run_spec(nb, "--retries", "3"))
    record = job.wait(timeout=600)
    assert record.status == "failed" and record.failing_cell == 1, (record.status, record.error)
    assert "ValueError: bad input data" in record.error
    assert record.attempt == 1 and not any(isinstance(e, Retrying) for e in job_events(job))


def test_out_of_memory_is_reported_not_retried(tmp_path: Path, job_store: Path, engine: docker.DockerClient,
                                               base_image: str) -> None:
    nb = write_notebook(tmp_path / "greedy.ipynb", "blocks = [bytearray(64 * 2**20) for _ in range(32)]")
    manager = _manager(job_store)
    job = manager.submit(run_spec(nb, "--memory", "128m", "--retries", "2"))
    record = job.wait(timeout=600)
    assert record.status == "failed", record.status
    assert "ran out of memory" in record.error and "--memory 128m" in record.error, record.error
    assert "not retried" in record.error
    assert record.attempt == 1 and not any(isinstance(e, Retrying) for e in job_events(job))
    assert labelled_containers(engine, job.id) == []


def test_a_cancel_while_waiting_to_retry_ends_the_job_at_once(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = write_notebook(tmp_path / "patient.ipynb", "import time\nprint('tick 0', flush=True)\ntime.sleep(60)")
    manager = JobManager(JobStore(job_store))
    manager.retry_backoff = 120.0
    job = manager.submit(run_spec(nb, "--retries", "1"))
    wait_for(lambda: ticks(job_events(job)) == ["tick 0"], 600, "the first cell")
    engine.containers.get(f"jc-{job.id}").kill()
    wait_for(lambda: any(isinstance(e, Retrying) for e in job_events(job)), 60, "the retry's announcement")
    started = time.monotonic()
    job.cancel()
    record = job.wait(timeout=30)
    assert record.status == "cancelled" and time.monotonic() - started < 10
    assert labelled_containers(engine, job.id) == []
    assert check_store_consistent(job_store) == []


def test_a_start_takes_over_the_container_an_earlier_attempt_left(
        tmp_path: Path, engine: docker.DockerClient, base_image: str) -> None:
    """The container is named after the job: one the engine still holds from an earlier attempt (an engine
    that restarted keeps it, or is still removing it) is removed by the next start, not a name conflict."""
    backend = DockerBackend(engine)
    request = RunRequest(job_id=uuid.uuid4().hex[:12], image=ImageRef(tag=base_image, image_id=""),
                         spec=JobSpec(notebook=tmp_path / "nb.ipynb"), output_dir=tmp_path / "out",
                         command=("python", "-c", "import time; time.sleep(300)"))
    first = backend.start(request)
    try:
        second = backend.start(request)
        assert second != first and backend.is_running(request.job_id, second)
        assert [c.id for c in labelled_containers(engine, request.job_id)] == [second]
    finally:
        backend.remove(request.job_id, "")
    assert labelled_containers(engine, request.job_id) == []
