"""A sweep as ONE Slurm job array on the REAL one-node cluster (issue 17 item 6).

``SlurmBackend.start_array`` submits the jobs with one ``sbatch --array=0-<n-1>%N``; each task
is still its own job: its own script, output file, exit code and ref ``<array id>_<i>``, which
follow, state and cancel use exactly as a ref from ``start``. The cluster has no accounting
(``sacct`` knows nothing), so what Slurm says is read from ``scontrol`` and ``squeue``.
The cluster and the fixtures are those of tests/integration/test_slurm.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef, RunOutcome, RunRequest
from jupyter_containerize.backends.engine import JOB_LABEL
from jupyter_containerize.backends.slurm import SlurmBackend
from jupyter_containerize.events import CellFinished, CellStarted, Event, Log, RunStarted
from tests.integration import test_slurm

pytestmark = pytest.mark.engine
slurm = test_slurm.slurm  # the one-node cluster (scripts/start-slurm.sh)
image = test_slurm.image  # the base image, as an ImageRef

# Each task says which one it is, sleeps long enough for the throttle to show, writes its metrics.
TASK = test_slurm.FAKE_RUNNER.replace('json.dump({"accuracy": 0.93}',
                                      'print("I AM " + os.environ["TASK"], flush=True)\n'
                                      'import time; time.sleep(float(os.environ.get("NAP", "0")))\n'
                                      'json.dump({"task": os.environ["TASK"]}')


@pytest.fixture()
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmBackend]:
    """A Slurm backend whose arrays are scancelled at the end of the test, whatever it asserted."""
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.3)
    started: list[str] = []
    submit = backend.start_array

    def start_array(requests: Sequence[RunRequest], max_parallel: int) -> list[str]:
        refs = submit(requests, max_parallel)
        started.extend(refs)
        return refs

    monkeypatch.setattr(backend, "start_array", start_array)
    yield backend
    for ref in started:
        subprocess.run(["scancel", ref], check=False, capture_output=True, timeout=60)


def unique(prefix: str, count: int) -> list[str]:
    """Job ids of this test run only (the containers are named after them)."""
    run = uuid.uuid4().hex[:6]
    return [f"{prefix}{run}{i}" for i in range(count)]


def scontrol(ref: str) -> dict[str, str]:
    done = subprocess.run(["scontrol", "show", "job", "--oneliner", ref], check=False, capture_output=True, text=True,
                          timeout=60)
    return dict(f.split("=", 1) for f in done.stdout.split() if "=" in f)


def tasks_in_queue(array_id: str) -> list[tuple[str, str]]:
    """(task id, state) of the array's tasks that squeue still lists, one line per task."""
    done = subprocess.run(["squeue", "--noheader", "--array", "--jobs", array_id, "--format=%i %T"], check=False,
                          capture_output=True, text=True, timeout=60)
    return [(line.split()[0], line.split()[1]) for line in done.stdout.splitlines() if line.strip()]


def request(tmp_path: Path, image: ImageRef, job_id: str, command: tuple[str, ...], **env: str) -> RunRequest:
    return RunRequest(job_id=job_id, image=image, spec=test_slurm._spec(tmp_path, **env),
                      output_dir=tmp_path / "outputs" / job_id, command=command)


def follow_all(backend: SlurmBackend, jobs: list[tuple[str, str]]) -> dict[str, tuple[RunOutcome, list[Event]]]:
    """Follow every task at once, as the manager does (one thread each)."""
    results: dict[str, tuple[RunOutcome, list[Event]]] = {}

    def one(job_id: str, ref: str) -> None:
        events: list[Event] = []
        results[job_id] = (backend.follow(job_id, ref, events.append), events)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == len(jobs), "a follow did not end"
    return results


def test_four_jobs_are_one_array_throttled_to_two_each_its_own_job(slurm: None, image: ImageRef,
                                                                     backend: SlurmBackend, tmp_path: Path) -> None:
    ids = unique("arr", 4)
    requests = [request(tmp_path, image, job_id, ("python", "-c", TASK), TASK=str(i), NAP="4",
                        EXIT_CODE="3" if i == 2 else "0") for i, job_id in enumerate(ids)]
    refs = backend.start_array(requests, max_parallel=2)
    array_id = refs[0].split("_")[0]
    assert refs == [f"{array_id}_{i}" for i in range(4)]

    # ONE array job of 4 tasks, with the throttle; never more than 2 of them running.
    shown = scontrol(refs[3])
    assert shown["ArrayJobId"] == array_id and shown["ArrayTaskThrottle"] == "2", shown
    assert shown["JobName"] == f"jc-array-{ids[0]}"
    queued = tasks_in_queue(array_id)
    assert sorted(t for t, _ in queued) == sorted(refs), queued
    most = 0
    results: dict[str, tuple[RunOutcome, list[Event]]] = {}
    watcher = threading.Thread(target=lambda: results.update(follow_all(backend, list(zip(ids, refs, strict=True)))))
    watcher.start()
    while watcher.is_alive():
        most = max(most, sum(state == "RUNNING" for _, state in tasks_in_queue(array_id)))
        time.sleep(0.5)
    assert 1 <= most <= 2

    for i, (job_id, ref) in enumerate(zip(ids, refs, strict=True)):
        outcome, events = results[job_id]
        shown = scontrol(ref)
        assert (shown["ArrayJobId"], shown["ArrayTaskId"]) == (array_id, str(i)), shown
        texts = [e.text for e in events if isinstance(e, Log)]
        # Its events come from its own output file: its own line, nobody else's.
        assert f"I AM {i}" in texts and not [t for t in texts if t.startswith("I AM ") and t != f"I AM {i}"], texts
        assert any(isinstance(e, CellStarted) for e in events) and any(isinstance(e, CellFinished) for e in events)
        assert [e.container_id for e in events if isinstance(e, RunStarted)] == [f"slurm:{ref}"]
        assert backend.output_file(job_id).read_text().count("I AM ") == 1
        assert (tmp_path / "outputs" / job_id / "metrics.json").read_text() == f'{{"task": "{i}"}}'
        expected = 3 if i == 2 else 0  # the failing task fails alone
        assert outcome.exit_code == expected and not outcome.cancelled, (job_id, outcome, texts)
        assert backend.exit_file(job_id).read_text() == f"{expected}\n"
        assert shown["JobState"] == ("FAILED" if i == 2 else "COMPLETED")
        assert backend.state(job_id, ref).exit_code == expected and not backend.is_running(job_id, ref)
    assert (backend.array_dir(ids[0]) / "array.sbatch").is_file()
    assert tasks_in_queue(array_id) == []


def test_cancelling_one_task_leaves_the_others(slurm: None, image: ImageRef, engine: docker.DockerClient,
                                               backend: SlurmBackend, tmp_path: Path) -> None:
    """Task 0 is cancelled while it runs, task 1 while it waits behind the throttle; task 2 still runs and succeeds."""
    ids = unique("cxl", 3)
    cxl0, cxl1, cxl2 = ids
    requests = [request(tmp_path, image, cxl0, ("sh", "-c", "echo started; sleep 300")),
                request(tmp_path, image, cxl1, ("sh", "-c", "echo never; sleep 300")),
                request(tmp_path, image, cxl2, ("sh", "-c", "echo the last one"))]
    refs = backend.start_array(requests, max_parallel=1)
    deadline = time.monotonic() + 120
    while not engine.containers.list(filters={"label": f"{JOB_LABEL}={cxl0}"}):
        assert time.monotonic() < deadline, backend.output_file(cxl0).read_text()
        time.sleep(0.5)
    assert backend.state(cxl1, refs[1]).state == "PENDING"
    backend.cancel(cxl1, refs[1])  # waiting: it never starts
    assert backend.is_running(cxl0, refs[0]) and backend.is_running(cxl2, refs[2])
    backend.cancel(cxl0, refs[0])  # running: its container stops
    results = follow_all(backend, list(zip(ids, refs, strict=True)))

    assert results[cxl0][0].cancelled and results[cxl1][0].cancelled
    assert scontrol(refs[0])["JobState"] == "CANCELLED"
    # Slurm keeps no record of a waiting task that is cancelled: the backend's note of its cancel says it.
    assert "JobState" not in scontrol(refs[1]) and backend.state(cxl1, refs[1]).state == "CANCELLED"
    assert not backend.output_file(cxl1).exists()  # never ran
    last, events = results[cxl2]
    assert last.exit_code == 0 and not last.cancelled, events
    assert "the last one" in [e.text for e in events if isinstance(e, Log)]
    assert scontrol(refs[2])["JobState"] == "COMPLETED"
    assert not engine.containers.list(all=True, filters={"label": f"{JOB_LABEL}={cxl0}"})
