"""The job manager in a long-lived server: finished jobs leave no thread behind, and ``close()`` joins
every thread within its bound while the jobs the engine runs keep running (real engine, tiny jobs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef
from jupyter_containerize.backends.docker import DockerBackend
from jupyter_containerize.errors import JobError
from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import Job, JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import JobSpec
from tests.support.engine import labelled_containers

pytestmark = pytest.mark.engine
TICKING = ("sh", "-c", "i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.2; done")


@pytest.fixture()
def image(engine: docker.DockerClient, base_image: str) -> ImageRef:
    return ImageRef(tag=base_image, image_id=str(engine.images.get(base_image).id))


@pytest.fixture()
def manager(job_store: Path, engine: docker.DockerClient) -> Iterator[JobManager]:
    manager = JobManager(JobStore(job_store), backends={"docker": DockerBackend(engine)})
    yield manager
    manager.close(10)


def _spec(tmp_path: Path) -> JobSpec:
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    return JobSpec(notebook=nb)


def _settle(baseline: set[int | None], timeout: float = 10) -> list[str]:
    """The names of threads that are not in ``baseline`` once they had ``timeout`` s to end."""
    deadline = time.monotonic() + timeout
    while True:
        extra = [t.name for t in threading.enumerate() if t.ident not in baseline]
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def test_twenty_finished_jobs_leave_no_thread(manager: JobManager, image: ImageRef, tmp_path: Path,
                                              engine: docker.DockerClient) -> None:
    baseline = {t.ident for t in threading.enumerate()}
    count = threading.active_count()
    jobs: list[Job] = []
    for batch in range(4):
        jobs += [manager.submit(_spec(tmp_path), image=image, command=("python", "-c", f"print('job {batch}.{i}')"))
                 for i in range(5)]
        records = [job.wait(timeout=120) for job in jobs[-5:]]
        assert [r.status for r in records] == ["succeeded"] * 5, [r.error for r in records]
    assert len(jobs) == 20
    assert _settle(baseline) == []
    assert threading.active_count() == count
    assert manager._live == set() and manager._threads == {} and manager._controls == {}
    for job in jobs[:3]:
        assert labelled_containers(engine, job.id) == []
        assert any(isinstance(e, Log) and e.text.startswith("job ") for _, e in job.events())


def test_close_joins_every_thread_and_leaves_running_jobs_for_a_reattach(
        manager: JobManager, image: ImageRef, tmp_path: Path, job_store: Path, engine: docker.DockerClient) -> None:
    baseline = {t.ident for t in threading.enumerate()}
    jobs = [manager.submit(_spec(tmp_path), image=image, command=TICKING) for _ in range(3)]
    finished = manager.submit(_spec(tmp_path), image=image, command=("true",))
    assert finished.wait(timeout=120).status == "succeeded"
    deadline = time.monotonic() + 120
    while not all(sum(isinstance(e, Log) for _, e in j.events()) >= 2 for j in jobs):
        assert time.monotonic() < deadline, "the jobs never printed"
        time.sleep(0.1)
    started = time.monotonic()
    assert manager.close(timeout=15) == []
    assert time.monotonic() - started < 15
    assert _settle(baseline, timeout=1) == []
    assert manager.close(timeout=1) == []  # idempotent
    with pytest.raises(JobError):
        manager.submit(_spec(tmp_path), image=image, command=("true",))

    for job in jobs:  # still running on the engine, ownerless: the next server re-attaches them
        record = manager.store.get(job.id)
        assert record.status == "running" and record.owner_pid is None and record.last_log_time
        assert [c.status for c in labelled_containers(engine, job.id)] == ["running"]

    before = {j.id: len(list(j.events())) for j in jobs}
    successor = JobManager(JobStore(job_store), backends={"docker": DockerBackend(engine)})
    try:
        successor.reconcile()
        deadline = time.monotonic() + 60
        while not all(len(list(successor.attach(j.id).events())) > before[j.id] + 2 for j in jobs):
            assert time.monotonic() < deadline, "the re-attached jobs recorded nothing new"
            time.sleep(0.1)
        for job in jobs:
            successor.cancel(job.id)
        records = [successor.attach(j.id).wait(timeout=60) for j in jobs]
        assert [r.status for r in records] == ["cancelled"] * 3
        for job in jobs:
            ticks = [e.text for _, e in successor.attach(job.id).events() if isinstance(e, Log)
                     and e.text.startswith("tick")]
            assert ticks == [f"tick {i}" for i in range(len(ticks))]  # none lost, none doubled across the close
            assert labelled_containers(engine, job.id) == []
    finally:
        assert successor.close(10) == []


def test_close_ends_the_follow_of_a_job_that_prints_nothing(
        manager: JobManager, image: ImageRef, tmp_path: Path, job_store: Path, engine: docker.DockerClient) -> None:
    """A silent container gives its log stream no chunk to end on: close still returns within its bound."""
    baseline = {t.ident for t in threading.enumerate()}
    job = manager.submit(_spec(tmp_path), image=image, command=("sleep", "300"))
    deadline = time.monotonic() + 120
    while not (job.status == "running" and [c.status for c in labelled_containers(engine, job.id)] == ["running"]):
        assert time.monotonic() < deadline, "the job never ran"
        time.sleep(0.1)
    time.sleep(1)  # the follow is now blocked on the silent stream
    started = time.monotonic()
    assert manager.close(timeout=15) == []
    assert time.monotonic() - started < 5
    assert _settle(baseline, timeout=1) == []
    assert manager.store.get(job.id).status == "running"
    successor = JobManager(JobStore(job_store), backends={"docker": DockerBackend(engine)})
    try:
        successor.reconcile()
        successor.cancel(job.id)
        assert successor.attach(job.id).wait(timeout=60).status == "cancelled"
        assert labelled_containers(engine, job.id) == []
    finally:
        assert successor.close(10) == []
