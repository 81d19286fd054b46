"""How the Slurm backend's follow reads the controller, with ``scontrol``/``sacct`` as PATH shims.

The shims are shell scripts that answer like a Slurm controller that is busy, restarting or has
lost the job: an empty answer, a failed query, then (maybe) a real state. The same shims in front
of the real cluster are in tests/integration/test_slurm.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jupyter_containerize.backends.slurm import SlurmBackend
from jupyter_containerize.events import Event, Log

REF = "4242"


def shim(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}:/usr/bin:/bin")
    shim(directory, "sacct", "exit 0\n")  # accounting that knows nothing (or is disabled: exit 1)
    return directory


def controller(bin_dir: Path, answers: list[str]) -> Path:
    """An ``scontrol`` that gives ``answers`` in turn (the last one from then on); counts its calls.

    An answer is ``empty`` (exit 0, no output), ``down`` (exit 1, as when slurmctld does not
    answer) or a JobState (``RUNNING``, ``COMPLETED``…).
    """
    count = bin_dir.parent / "scontrol.calls"
    count.write_text("0")
    cases = "\n".join(
        f"  {i}) answer={a} ;;" for i, a in enumerate(answers[:-1])) + f"\n  *) answer={answers[-1]} ;;"
    shim(bin_dir, "scontrol", f"""n=$(cat {count}); echo $((n + 1)) > {count}
case $n in
{cases}
esac
case $answer in
  empty) exit 0 ;;
  down) echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
  *) echo "JobId={REF} JobName=jc-x JobState=$answer Reason=None ExitCode=0:0"; exit 0 ;;
esac
""")
    return count


def test_a_transiently_unknown_job_is_asked_about_again(tmp_path: Path, bin_dir: Path) -> None:
    calls = controller(bin_dir, ["empty", "down", "empty", "RUNNING", "empty", "COMPLETED"])
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.05, unknown_grace=30)
    events: list[Event] = []
    outcome = backend.follow("job1", REF, events.append)
    assert outcome.exit_code == 0, events
    assert int(calls.read_text()) == 6
    assert not any(isinstance(e, Log) and "no longer knows" in e.text for e in events)


def test_a_job_unknown_for_good_ends_after_the_bound(tmp_path: Path, bin_dir: Path) -> None:
    calls = controller(bin_dir, ["RUNNING", "empty"])
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.05, unknown_grace=0.5)
    events: list[Event] = []
    started = time.monotonic()
    outcome = backend.follow("job1", REF, events.append)
    took = time.monotonic() - started
    assert outcome.exit_code is None and 0.5 <= took < 5
    assert int(calls.read_text()) >= 5  # retried, not given up on the first empty answer
    notes = [e.text for e in events if isinstance(e, Log)]
    assert any(f"Slurm no longer knows job {REF}" in n for n in notes), notes


def test_the_exit_code_file_settles_an_unknown_job_at_once(tmp_path: Path, bin_dir: Path) -> None:
    controller(bin_dir, ["down"])
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.05, unknown_grace=60)
    backend.exit_file("job1").parent.mkdir(parents=True)
    backend.exit_file("job1").write_text("3\n")
    started = time.monotonic()
    assert backend.follow("job1", REF, lambda e: None).exit_code == 3
    assert time.monotonic() - started < 2


def test_stop_ends_the_follow_while_the_job_is_unknown(tmp_path: Path, bin_dir: Path) -> None:
    controller(bin_dir, ["empty"])
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=2.0, unknown_grace=600)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    outcome = backend.follow("job1", REF, lambda e: None, stop=stop)
    assert outcome.exit_code is None and time.monotonic() - started < 1.5  # never sleeps past the stop


@pytest.mark.parametrize(("state", "lost", "out_of_memory"), [
    ("NODE_FAIL", f"Slurm ended job {REF} as NODE_FAIL", False),
    ("PREEMPTED", f"Slurm ended job {REF} as PREEMPTED", False),
    ("BOOT_FAIL", f"Slurm ended job {REF} as BOOT_FAIL", False),
    ("OUT_OF_MEMORY", "", True),
    ("FAILED", "", False),
    ("TIMEOUT", "", False),
])
def test_ends_that_are_not_the_jobs_doing_are_lost_for_retries(tmp_path: Path, bin_dir: Path, state: str, lost: str,
                                                                out_of_memory: bool) -> None:
    controller(bin_dir, ["RUNNING", state])
    backend = SlurmBackend(workdir=tmp_path / "slurm", poll=0.05, unknown_grace=30)
    outcome = backend.follow("job1", REF, lambda e: None)
    assert (outcome.lost, outcome.out_of_memory) == (lost, out_of_memory)


@pytest.mark.parametrize("said, away", [
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)", True),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", True),
    ("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying", True),
    ("sbatch: error: Batch job submission failed: Invalid partition name specified", False),
    ("sbatch: error: Batch job submission failed: Requested node configuration is not available", False),
])
def test_a_controller_that_does_not_answer_is_told_from_a_refusal(bin_dir: Path, said: str, away: bool) -> None:
    """Only the first kind is worth submitting again (``--retries``); a refusal stays a refusal."""
    from jupyter_containerize.backends.slurm import _slurm
    from jupyter_containerize.errors import BackendError, Unreachable

    shim(bin_dir, "sbatch", f"echo '{said}' >&2\nexit 1\n")
    with pytest.raises(BackendError) as info:
        _slurm(["sbatch", "--parsable", "job.sbatch"])
    assert isinstance(info.value, Unreachable) is away
    assert said.rpartition("error: ")[2] in info.value.message
