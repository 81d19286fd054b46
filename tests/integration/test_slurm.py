"""The Slurm backend against a REAL one-node cluster (munged + slurmctld + slurmd, Slurm 22.05).

The batch script runs ``docker run`` on the node's engine (this machine's), so these tests
also need the engine. Starting the cluster is scripts/start-slurm.sh; if it cannot, the
tests fail (never skip).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef
from jupyter_containerize.backends.engine import JOB_LABEL
from jupyter_containerize.backends.slurm import SlurmBackend
from jupyter_containerize.events import EVENT_PREFIX, CellFinished, CellStarted, Log, Retrying, RunStarted
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import JobSpec, Resources
from tests.support.engine import start_or_fail

pytestmark = pytest.mark.engine
EVIL = "a'b\"c $(touch /tmp/jc-slurm-pwned) `touch /tmp/jc-slurm-pwned2`\nsecond line"

# A stand-in for the runner's contract (event lines on stdout, metrics in /output), so these
# tests exercise the backend and not the notebook runner.
FAKE_RUNNER = f"""
import json, os, sys
def ev(**d): print({EVENT_PREFIX!r} + json.dumps(d), flush=True)
ev(type="CellStarted", index=0, total=1, source_first_line="x = 1")
print("EVIL=" + repr(os.environ.get("EVIL")), flush=True)
print("PARAMS=" + os.environ.get("JC_PARAMETERS", ""), flush=True)
json.dump({{"accuracy": 0.93}}, open("/output/metrics.json", "w"))
ev(type="CellFinished", index=0, total=1, duration=0.1, ok=True)
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


@pytest.fixture(scope="module")
def slurm() -> None:
    start_or_fail("start-slurm.sh", "Slurm")


@pytest.fixture()
def manager(tmp_path: Path, job_store: Path) -> Iterator[JobManager]:
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.3)
    yield JobManager(store=JobStore(job_store), backends={"slurm": backend})


@pytest.fixture()
def image(engine: docker.DockerClient, base_image: str) -> ImageRef:
    return ImageRef(tag=base_image, image_id=str(engine.images.get(base_image).id))


def _spec(tmp_path: Path, **env: str) -> JobSpec:
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    return JobSpec(notebook=nb, backend="slurm", env=env, resources=Resources(cpus=1, memory="512m", time_limit="00:05:00"))


def test_job_runs_on_slurm_and_lands_in_the_store(slurm: None, manager: JobManager, image: ImageRef,
                                                   tmp_path: Path) -> None:
    job = manager.submit(_spec(tmp_path, EVIL=EVIL), image=image, command=("python", "-c", FAKE_RUNNER))
    record = job.wait(timeout=180)
    events = [e for _, e in job.events()]
    assert record.status == "succeeded", (record.error, events)
    assert record.backend == "slurm" and record.backend_ref.isdigit()
    assert record.metrics == {"accuracy": 0.93}
    assert any(isinstance(e, CellStarted) for e in events) and any(isinstance(e, CellFinished) for e in events)
    assert any(isinstance(e, RunStarted) for e in events)
    logs = "\n".join(e.text for e in events if isinstance(e, Log))
    assert "EVIL=" + repr(EVIL) in logs  # arrived byte for byte, executed nothing
    assert not Path("/tmp/jc-slurm-pwned").exists() and not Path("/tmp/jc-slurm-pwned2").exists()
    # Slurm itself ran it, with the resources asked for.
    shown = subprocess.run(["scontrol", "show", "job", "--oneliner", record.backend_ref], check=False, capture_output=True, text=True)
    assert "JobState=COMPLETED" in shown.stdout and "MinMemoryNode=512M" in shown.stdout
    assert "TimeLimit=00:06:00" in shown.stdout and f"JobName=jc-{record.id}" in shown.stdout
    # Another process sees the same job in the same store.
    other = JobManager(store=JobStore(manager.store.path))
    assert other.store.get(record.id).status == "succeeded"


def test_exit_code_is_the_containers(slurm: None, manager: JobManager, image: ImageRef, tmp_path: Path) -> None:
    job = manager.submit(_spec(tmp_path, EXIT_CODE="3"), image=image, command=("python", "-c", FAKE_RUNNER))
    record = job.wait(timeout=180)
    assert record.status == "failed" and record.exit_code == 3, record.error


def test_cancel_scancels_and_stops_the_container(slurm: None, manager: JobManager, image: ImageRef,
                                                  engine: docker.DockerClient, tmp_path: Path) -> None:
    job = manager.submit(_spec(tmp_path), image=image, command=("sh", "-c", "echo started; sleep 300"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if engine.containers.list(filters={"label": f"{JOB_LABEL}={job.id}"}):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the job's container never started: {[e for _, e in job.events()]}")
    started = time.monotonic()
    job.cancel()
    record = job.wait(timeout=90)
    assert record.status == "cancelled"
    assert time.monotonic() - started < 60
    squeue = subprocess.run(["squeue", "-h", "-j", record.backend_ref], check=False, capture_output=True, text=True)
    assert squeue.stdout.strip() == ""
    assert not engine.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job.id}"})


def test_follow_resumes_from_an_offset(slurm: None, image: ImageRef, tmp_path: Path) -> None:
    """Re-attaching after a restart replays nothing already recorded."""
    from jupyter_containerize.backends.base import RunRequest

    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.3)
    request = RunRequest(job_id="resume1", image=image, spec=_spec(tmp_path), output_dir=tmp_path / "out",
                         command=("sh", "-c", "echo one; echo two"))
    ref = backend.start(request)
    first: list[object] = []
    outcome = backend.follow("resume1", ref, first.append)
    assert outcome.exit_code == 0
    texts = [e.text for e in first if isinstance(e, Log)]
    assert texts[-2:] == ["one", "two"]
    again: list[object] = []
    backend.follow("resume1", ref, again.append, since=str(int(outcome.last_log_time) - len("two\n")))
    assert [e.text for e in again if isinstance(e, Log)] == ["two"]
    assert json.loads(json.dumps(outcome.last_log_time))


@pytest.mark.usefixtures("base_image")
def test_a_notebook_reads_the_data_beside_it_on_slurm(slurm: None, manager: JobManager, tmp_path: Path) -> None:
    from jupyter_containerize.options import parse
    from tests.support.notebooks import write_notebook

    nb = write_notebook(tmp_path / "reads.ipynb", "import json\nrows = open('data/rows.csv').read().split()\n"
                        "json.dump({'rows': rows}, open('/output/rows.json', 'w'))")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a\nb\n")
    spec = parse(["run", str(nb), "--backend", "slurm", "--network", "none"]).spec
    assert spec is not None
    record = manager.submit(spec).wait(timeout=600)
    assert record.status == "succeeded", record.error
    assert json.loads((Path(record.output_dir) / "rows.json").read_text()) == {"rows": ["a", "b"]}


def _in_front_of(command: str, before: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``command`` as a PATH shim that runs the shell lines ``before``, then hands the call to the real one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    real = subprocess.run(["sh", "-c", f"command -v {command}"], check=True, capture_output=True, text=True).stdout.strip()
    shim = bin_dir / command
    shim.write_text(f'#!/bin/sh\n{before}exec {real} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_an_empty_answer_from_the_controller_is_retried(slurm: None, image: ImageRef, tmp_path: Path,
                                                        job_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy or restarting slurmctld can answer nothing: the job is asked about again, not failed.

    ``scontrol`` is a PATH shim that answers its first two ``show job`` calls with nothing (exit 0),
    then hands every call to the real one; accounting is disabled on this cluster, so ``sacct``
    knows nothing either and the job is UNKNOWN until the real controller answers.
    """
    count = tmp_path / "empty-answers"
    _in_front_of("scontrol", f"""if [ "$1" = show ]; then
  n=$(cat {count} 2>/dev/null || echo 0)
  if [ "$n" -lt 2 ]; then echo $((n + 1)) > {count}; exit 0; fi
fi
""", tmp_path, monkeypatch)
    manager = JobManager(store=JobStore(job_store), backends={"slurm": SlurmBackend(workdir=tmp_path / "slurm", poll=0.3)})
    job = manager.submit(_spec(tmp_path), image=image, command=("sh", "-c", "echo hello from slurm"))
    record = job.wait(timeout=180)
    events = [e for _, e in job.events()]
    assert count.read_text().strip() == "2"  # the controller did answer nothing, twice
    assert record.status == "succeeded" and record.exit_code == 0, (record.error, events)
    assert "hello from slurm" in [e.text for e in events if isinstance(e, Log)]
    assert manager.close(10) == []


def _sbatch_away_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sbatch`` whose first call fails as Slurm's does when slurmctld is down or restarting; every
    later call is the real one. Returns the file that marks the failed call."""
    count = tmp_path / "refused-submits"
    _in_front_of("sbatch", f"""if [ ! -e {count} ]; then
  echo 1 > {count}
  echo "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)" >&2
  exit 1
fi
""", tmp_path, monkeypatch)
    return count


@pytest.mark.parametrize("retries", [1, 0])
def test_a_submit_the_controller_did_not_take_is_retried(slurm: None, image: ImageRef, tmp_path: Path,
                                                          job_store: Path, monkeypatch: pytest.MonkeyPatch,
                                                          retries: int) -> None:
    """A controller that does not answer at submit is not the notebook's fault: ``--retries`` submits again."""
    refused = _sbatch_away_once(tmp_path, monkeypatch)
    manager = JobManager(store=JobStore(job_store), backends={"slurm": SlurmBackend(workdir=tmp_path / "slurm", poll=0.3)})
    manager.retry_backoff = 0.5
    spec = dataclasses.replace(_spec(tmp_path), retries=retries)
    job = manager.submit(spec, image=image, command=("sh", "-c", "echo hello from slurm"))
    record = job.wait(timeout=180)
    events = [e for _, e in job.events()]
    assert refused.exists()
    said = [e.reason for e in events if isinstance(e, Retrying)]
    if retries:
        assert record.status == "succeeded" and record.attempt == 2, (record.error, events)
        assert len(said) == 1 and "Unable to contact slurm controller" in said[0]
        assert "hello from slurm" in [e.text for e in events if isinstance(e, Log)]
    else:
        assert record.status == "failed" and said == [] and not record.backend_ref
        assert "Unable to contact slurm controller" in record.error
        assert "(run with --retries N to retry such failures)" in record.error
    assert manager.close(10) == []


def test_a_partition_the_cluster_lacks_is_refused_at_submit(slurm: None, tmp_path: Path, job_store: Path) -> None:
    """Asked of the real controller (sinfo) before anything is captured, built or recorded."""
    from jupyter_containerize.errors import BackendError
    from tests.support.notebooks import write_notebook

    nb = write_notebook(tmp_path / "nb.ipynb", "print(1)")
    manager = JobManager(store=JobStore(job_store), backends={"slurm": SlurmBackend(workdir=tmp_path / "slurm")})
    partitions = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, check=True,
                                timeout=60).stdout.split()
    with pytest.raises(BackendError) as info:
        manager.submit(JobSpec(notebook=nb, backend="slurm", partition="no-such-partition"))
    said = str(info.value)
    assert "has no partition 'no-such-partition'" in said and partitions[0].rstrip("*") in said
    assert manager.store.list() == [] and not (tmp_path / "slurm").exists()


def test_a_four_combination_sweep_is_one_array_of_four_tasks(slurm: None, manager: JobManager, tmp_path: Path,
                                                              base_image: str) -> None:
    """Issue 17: a sweep on Slurm is ONE ``sbatch --array`` (``--max-parallel`` its ``%N``), each task its own job."""
    from jupyter_containerize.options import parse
    from tests.support.notebooks import write_notebook

    nb = write_notebook(tmp_path / "slurm_sweep.ipynb",
                        "from jupyter_containerize import log_metric\nlog_metric('score', lr * batch)",
                        parameters="lr = 0.5\nbatch = 1")
    spec = parse(["run", str(nb), "--backend", "slurm", "--sweep", "lr=0.1,0.2", "batch=2,4",
                  "--max-parallel", "2", "--timeout", "10m"]).spec
    assert spec is not None
    jobs = manager.submit_sweep(spec)
    assert len(jobs) == 4
    records = [j.wait(timeout=900) for j in jobs]
    assert all(r.status == "succeeded" for r in records), [r.error for r in records]
    array_ids = {r.backend_ref.partition("_")[0] for r in records}
    assert len(array_ids) == 1, [r.backend_ref for r in records]  # one array …
    assert sorted(r.backend_ref.partition("_")[2] for r in records) == ["0", "1", "2", "3"]  # … of four tasks
    shown = subprocess.run(["scontrol", "show", "job", records[0].backend_ref], capture_output=True, text=True,
                           check=False).stdout
    assert "ArrayTaskThrottle=2" in shown, shown  # --max-parallel is the array's %2
    backend = manager.backend("slurm")
    assert isinstance(backend, SlurmBackend) and (backend.array_dir(records[0].id) / "array.sbatch").is_file()
    got = sorted((r.parameters["lr"], r.parameters["batch"], round(r.metrics["score"], 6)) for r in records)
    assert got == [(0.1, 2, 0.2), (0.1, 4, 0.4), (0.2, 2, 0.4), (0.2, 4, 0.8)]
    assert len({r.output_dir for r in records}) == 4  # each task its own job: own output, own metrics
