"""A sweep as one Slurm job array: the array script's text and quoting, and what ``start_array`` submits.

The array script is run here with ``sh`` and a made-up ``$SLURM_ARRAY_TASK_ID``; ``sbatch`` and
``scancel`` are PATH shims that record their argv. The real cluster runs the same scripts in
tests/integration/test_slurm_array.py.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest

from jupyter_containerize.backends import slurm as slurm_module
from jupyter_containerize.backends.base import Backend, EventSink, ImageRef, RunOutcome, RunRequest
from jupyter_containerize.backends.slurm import SlurmBackend, SlurmState
from jupyter_containerize.backends.slurm_script import (ArrayTask, array_directives, array_script,
                                                        sbatch_directives)
from jupyter_containerize.errors import BackendError
from jupyter_containerize.jobspec import JobSpec, Resources

ODD = "it's a \"folder\" with $(touch /tmp/JC-ARRAY-PWNED) `touch /tmp/JC-ARRAY-PWNED2`; $HOME *\nand a line"


def task(root: Path, name: str, body: str = "") -> ArrayTask:
    """A job folder named ``name`` under ``root`` with a script that says where it runs."""
    folder = root / name
    folder.mkdir(parents=True)
    script = folder / "job.sbatch"
    script.write_text("#!/bin/sh\n#SBATCH --job-name=ignored\nprintf 'task in %s\\n' \"$PWD\"\n"
                      "printf 'to stderr\\n' >&2\n" + body)
    return ArrayTask(directory=str(folder), script=str(script), output=str(folder / "slurm out's.txt"))


def run(script: str, task_id: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if task_id is not None:
        env["SLURM_ARRAY_TASK_ID"] = task_id
    return subprocess.run(["sh", "-c", script, "sh"], check=False, capture_output=True, text=True, cwd=cwd, env=env)


def test_each_task_runs_its_own_script_in_its_own_folder_with_its_own_output(tmp_path: Path) -> None:
    tasks = [task(tmp_path, f"{ODD} {i}", body=f"exit {i}\n") for i in range(3)]
    script = array_script(["--job-name=jc-array-x", "--nodes=1"], tasks)
    assert subprocess.run(["sh", "-n"], check=False, input=script, text=True).returncode == 0
    for i, t in enumerate(tasks):
        done = run(script, str(i), tmp_path)
        assert done.returncode == i, done.stderr  # the job's own exit code, through exec
        assert done.stdout == "" and done.stderr == ""  # nothing in the array's own output file
        assert Path(t.output).read_text() == f"task in {t.directory}\nto stderr\n"
    assert not Path("/tmp/JC-ARRAY-PWNED").exists() and not Path("/tmp/JC-ARRAY-PWNED2").exists()


def test_the_paths_are_literal_words_of_the_script(tmp_path: Path) -> None:
    tasks = [task(tmp_path, f"{ODD} {i}") for i in range(2)]
    script = array_script(["--job-name=jc-array-x"], tasks)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh" and lines[1] == "#SBATCH --job-name=jc-array-x"
    assert "--array" not in script  # on sbatch's command line, where the throttle is decided
    assigned: dict[str, list[str]] = {}
    for line in shlex.split(script, comments=True):
        name, sep, value = line.partition("=")
        if sep and name in ("JC_DIR", "JC_SCRIPT", "JC_OUTPUT"):
            assigned.setdefault(name, []).append(value)
    assert assigned == {"JC_DIR": [t.directory for t in tasks], "JC_SCRIPT": [t.script for t in tasks],
                        "JC_OUTPUT": [t.output for t in tasks]}
    assert "${SLURM_ARRAY_TASK_ID:-}" in script and "  0)" in script and "  1)" in script


def test_an_unknown_task_id_fails_and_runs_nothing(tmp_path: Path) -> None:
    tasks = [task(tmp_path, "a")]
    script = array_script([], tasks)
    for task_id in ("1", "0; touch /tmp/JC-ARRAY-PWNED", "", None):
        done = run(script, task_id, tmp_path)
        assert done.returncode == 2 and "this job array has no task" in done.stderr
    assert not Path(tasks[0].output).exists() and not Path("/tmp/JC-ARRAY-PWNED").exists()


def test_a_missing_job_folder_fails_the_task_only(tmp_path: Path) -> None:
    tasks = [task(tmp_path, "a"), ArrayTask(str(tmp_path / "gone"), str(tmp_path / "gone" / "job.sbatch"),
                                            str(tmp_path / "gone" / "slurm.out"))]
    script = array_script([], tasks)
    assert run(script, "1", tmp_path).returncode == 125
    assert run(script, "0", tmp_path).returncode == 0


@pytest.mark.parametrize("bad", [[], [ArrayTask("", "/x/job.sbatch", "/x/out")],
                                 [ArrayTask("/x", "/x/job\x00.sbatch", "/x/out")]])
def test_no_tasks_or_unusable_paths_are_refused(bad: list[ArrayTask]) -> None:
    with pytest.raises(BackendError):
        array_script([], bad)


def test_a_directive_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError):
        array_script(["--job-name=x\n#SBATCH --uid=0"], [task(tmp_path, "a")])


def test_array_directives_are_the_jobs_shared_ones(tmp_path: Path) -> None:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb", resources=Resources(cpus=2, memory="1g", time_limit="00:10:00"))
    swept = [spec.with_changes(parameters={"lr": lr}) for lr in (0.1, 0.01)]
    assert array_directives(swept, "jc-array-x") == sbatch_directives(spec, "jc-array-x")
    with pytest.raises(BackendError, match="same resources"):
        array_directives([spec, spec.with_changes(resources=Resources(cpus=4))], "jc-array-x")
    with pytest.raises(BackendError):
        array_directives([], "jc-array-x")


# -- start_array, with sbatch and scancel as PATH shims -----------------------------------------------

@pytest.fixture
def shims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sbatch`` answers job id 77 and writes its argv (one per line) to ``sbatch.argv``; ``scancel`` likewise."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "scancel"):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {shlex.quote(str(tmp_path / (name + '.argv')))}\n"
                        + ("echo '77;jc'\n" if name == "sbatch" else ""))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(slurm_module, "_give_output_to_container_user", lambda request: None)  # no engine here
    return tmp_path


def requests(root: Path, count: int) -> list[RunRequest]:
    spec = JobSpec(notebook=root / "nb.ipynb", backend="slurm", resources=Resources(cpus=1, memory="512m"))
    image = ImageRef(tag="jc/nb:abc", image_id="sha256:1")
    return [RunRequest(job_id=f"job{i}", image=image, spec=spec.with_changes(parameters={"i": i}),
                       output_dir=root / "out" / f"job{i}") for i in range(count)]


def argv(root: Path, name: str) -> list[str]:
    return (root / f"{name}.argv").read_text().splitlines()


def test_start_array_submits_once_with_the_throttle_and_returns_a_ref_per_task(shims: Path) -> None:
    backend = SlurmBackend(workdir=shims / "slurm dir")
    refs = backend.start_array(requests(shims, 4), max_parallel=2)
    assert refs == ["77_0", "77_1", "77_2", "77_3"]
    folder = shims / "slurm dir" / "array-job0"
    assert argv(shims, "sbatch") == ["--parsable", "--array=0-3%2", f"--output={folder}/task-%a.out",
                                     f"--chdir={folder}", str(folder / "array.sbatch")]
    script = (folder / "array.sbatch").read_text()
    assert "#SBATCH --job-name=jc-array-job0" in script and "#SBATCH --mem=512M" in script
    for i in range(4):
        job_dir = backend.job_dir(f"job{i}")
        assert shlex.quote(str(job_dir / "job.sbatch")) in script
        assert shlex.quote(str(job_dir / "slurm.out")) in script
        assert (shims / "out" / f"job{i}").is_dir()
        assert f"JC_JOB_ID=job{i}" in (job_dir / "job.sbatch").read_text()


def test_no_throttle_when_every_task_may_run_at_once(shims: Path) -> None:
    backend = SlurmBackend(workdir=shims / "slurm")
    assert backend.start_array(requests(shims, 3), max_parallel=3) == ["77_0", "77_1", "77_2"]
    assert "--array=0-2" in argv(shims, "sbatch")
    assert backend.start_array(requests(shims, 3), max_parallel=8) == ["77_0", "77_1", "77_2"]
    assert "--array=0-2" in argv(shims, "sbatch")


def test_each_task_script_is_the_one_start_writes(shims: Path) -> None:
    """One code path writes a job's script, whether it is submitted alone or as an array task."""
    backend = SlurmBackend(workdir=shims / "slurm")
    reqs = requests(shims, 2)
    backend.start_array(reqs, max_parallel=1)
    as_task = (backend.job_dir("job1") / "job.sbatch").read_text()
    assert backend.start(reqs[1]) == "77"
    assert (backend.job_dir("job1") / "job.sbatch").read_text() == as_task
    assert argv(shims, "sbatch")[1:] == [f"--output={backend.output_file('job1')}", f"--chdir={backend.job_dir('job1')}",
                                         str(backend.job_dir("job1") / "job.sbatch")]


def test_start_array_refuses_before_submitting(shims: Path) -> None:
    backend = SlurmBackend(workdir=shims / "slurm")
    assert backend.start_array([], max_parallel=2) == []
    with pytest.raises(BackendError, match="max-parallel"):
        backend.start_array(requests(shims, 2), max_parallel=0)
    mixed = requests(shims, 2)
    mixed[1] = RunRequest(job_id="job1", image=mixed[1].image, output_dir=mixed[1].output_dir,
                          spec=mixed[1].spec.with_changes(resources=Resources(cpus=2)))
    with pytest.raises(BackendError, match="same resources"):
        backend.start_array(mixed, max_parallel=2)
    assert not (shims / "sbatch.argv").exists()


def test_an_answer_that_is_no_array_id_is_an_error(shims: Path) -> None:
    (shims / "bin" / "sbatch").write_text("#!/bin/sh\necho '77_1'\n")
    with pytest.raises(BackendError, match="instead of a job id"):
        SlurmBackend(workdir=shims / "slurm").start_array(requests(shims, 2), max_parallel=2)


def test_cancelling_a_task_names_that_task_only(shims: Path) -> None:
    SlurmBackend(workdir=shims / "slurm").cancel("job2", "77_2")
    assert argv(shims, "scancel") == ["77_2"]


def test_a_cancelled_waiting_task_that_slurm_forgot_ends_cancelled(shims: Path) -> None:
    """Slurm 22.05 drops a waiting array task that is cancelled (scontrol: not found; no accounting here)."""
    for name in ("scontrol", "sacct"):
        path = shims / "bin" / name
        path.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
        path.chmod(0o755)
    backend = SlurmBackend(workdir=shims / "slurm", poll=0.05, unknown_grace=30)
    backend.start_array(requests(shims, 3), max_parallel=1)
    assert backend.state("job2", "77_2").state == "UNKNOWN"
    backend.cancel("job2", "77_2")
    assert backend.state("job2", "77_2") == SlurmState("CANCELLED")
    assert backend.state("job2", "77_1").state == "UNKNOWN"  # the note is for that ref only
    assert backend.state("job1", "77_1").state == "UNKNOWN"
    started = time.monotonic()
    outcome = backend.follow("job2", "77_2", lambda e: None)
    assert outcome.cancelled and outcome.exit_code is None and time.monotonic() - started < 5
    assert not backend.is_running("job2", "77_2")
    backend.start_array(requests(shims, 3), max_parallel=1)  # submitted again: the old note is gone
    assert backend.state("job2", "77_2").state == "UNKNOWN"


def test_a_cancel_that_slurm_refuses_leaves_no_note(shims: Path) -> None:
    (shims / "bin" / "scancel").write_text("#!/bin/sh\necho 'scancel: error: Job has already finished' >&2\nexit 1\n")
    backend = SlurmBackend(workdir=shims / "slurm")
    backend.start_array(requests(shims, 1), max_parallel=1)
    backend.cancel("job0", "77_0")
    assert not backend.cancel_file("job0").exists()


def test_only_backends_with_arrays_say_so() -> None:
    assert SlurmBackend.job_arrays is True and Backend.job_arrays is False

    class Plain(Backend):
        name = "plain"

        def start(self, request: RunRequest) -> str:
            return ""

        def follow(self, job_id: str, ref: str, on_event: EventSink, since: str = "",
                   stop: threading.Event | None = None) -> RunOutcome:
            return RunOutcome(exit_code=0)

        def cancel(self, job_id: str, ref: str) -> None:
            return None

        def remove(self, job_id: str, ref: str) -> None:
            return None

        def is_running(self, job_id: str, ref: str) -> bool:
            return False

    with pytest.raises(BackendError, match="plain backend cannot start jobs as one array"):
        Plain().start_array([], 2)
