"""Slurm as a run backend: ``sbatch`` a script that runs the job's image with ``docker run`` on the node.

Status comes from ``scontrol show job`` (then ``sacct``, then the exit code the script
writes), logs from the job's output file (the runner's ``@@jc-event`` lines become
events), cancel is ``scancel``. The job lives in the same job store as every other
job: the manager records it; this backend only submits and watches.

A sweep goes as ONE job array (:meth:`SlurmBackend.start_array`: ``sbatch --array=0-3%2``, the
sweep's ``--max-parallel`` as the ``%N`` throttle); each task is still its own job with its own
script, output file and exit code, watched and cancelled by its ref ``<array id>_<task>``.

Configuration: the ``slurm_*`` settings of :class:`.config.Config` (``JC_SLURM_*`` by default):

- ``slurm_dir``: where each job's script, output file and exit code go
  (default ``~/.local/share/jupyter-containerize/slurm``). On a multi-node cluster
  it must be on a filesystem the nodes share, like the notebook's output folder.
- ``slurm_docker``: the docker command on the nodes (default ``docker``).
- ``slurm_poll``: seconds between status polls (default 1).
- ``slurm_unknown_grace``: seconds a job may stay unknown to every source (a busy or
  restarting controller, a failed or empty query) before its follow gives up (default 60).

The node's engine must hold the image (one-node clusters, or a shared engine), or be
able to pull it: push with ``--push`` so the script names the image by digest.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError, ContainerizeError, ControllerUnreachable, listing
from ..events import Log, RunStarted
from ..jobspec import JobSpec
from .base import Backend, EventSink, RunOutcome, RunRequest
from .config import Config
from .container import give_output_to_container_user, parse_log_line
from .slurm_script import ArrayTask, array_directives, array_script, batch_script

TERMINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
    "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT",
})
# Ends that are not the job's doing: the node failed or booted badly, a higher priority job took it.
LOST_STATES = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
_JOB_ID = re.compile(r"^\d+(_\d+)?$")
_OUR_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ARRAY_ID = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class SlurmState:
    """What Slurm says about one job."""

    state: str  # "PENDING", "RUNNING", "COMPLETED", … ; "UNKNOWN" when no source knows the job
    exit_code: int | None = None
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


class SlurmBackend(Backend):
    """Submits jobs with ``sbatch``; watches them with ``scontrol``/``sacct`` and their output file."""

    name = "slurm"
    host_paths = True  # the nodes share the filesystem
    job_arrays = True  # a sweep is one `sbatch --array`, its --max-parallel the array's %N throttle

    def __init__(self, workdir: Path | None = None, docker: str | None = None, poll: float | None = None,
                 unknown_grace: float | None = None) -> None:
        defaults = Config()
        self.workdir = workdir or defaults.slurm_dir
        self.docker = docker or defaults.slurm_docker
        self.poll = poll if poll is not None else defaults.slurm_poll
        self.unknown_grace = unknown_grace if unknown_grace is not None else defaults.slurm_unknown_grace

    @classmethod
    def from_config(cls, config: Config) -> SlurmBackend:
        return cls(workdir=config.slurm_dir, docker=config.slurm_docker, poll=config.slurm_poll,
                   unknown_grace=config.slurm_unknown_grace)

    # -- paths ---------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not _OUR_JOB_ID.match(job_id):
            raise BackendError(f"The job id {job_id!r} cannot name a Slurm job", "Use the id the job store gave.")
        return self.workdir / job_id

    def output_file(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "slurm.out"

    def exit_file(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "exit-code"

    def cancel_file(self, job_id: str) -> Path:
        """Where :meth:`cancel` notes the ref it cancelled (``scancel`` succeeded)."""
        return self.job_dir(job_id) / "cancelled"

    def array_dir(self, first_job_id: str) -> Path:
        """The folder of a job array (its script and the tasks' wrapper output), named after its first job."""
        return self.workdir / f"array-{self.job_dir(first_job_id).name}"

    # -- Backend protocol ----------------------------------------------------------------------
    def preflight(self, spec: JobSpec, cuda_version: str | None = None) -> None:
        """The Slurm client tools, a controller that answers and the partition asked for."""
        for tool in ("sbatch", "sacct"):
            if shutil.which(tool) is None:
                raise BackendError(f"--backend slurm needs {tool}, which is not on PATH",
                                   "Install the Slurm client (Debian: slurm-client) or run on a login node.")
        partitions = {line.strip().rstrip("*") for line in _slurm(["sinfo", "--noheader", "--format=%P"]).splitlines()}
        if spec.partition and spec.partition not in partitions:
            raise BackendError(f"The Slurm cluster has no partition {spec.partition!r} "
                               f"(it has {listing(sorted(p for p in partitions if p)) or 'none'})",
                               "Pick one of those with --partition.")

    def start(self, request: RunRequest) -> str:
        """Write the batch script and submit it; returns the Slurm job id."""
        path = self._write_job(request)
        return _submitted(_slurm(["sbatch", "--parsable", f"--output={self.output_file(request.job_id)}",
                                  f"--chdir={path.parent}", str(path)]), _JOB_ID)

    def start_array(self, requests: Sequence[RunRequest], max_parallel: int) -> list[str]:
        """Submit ``requests`` as ONE job array (``sbatch --array=0-<n-1>%<max_parallel>``); refs ``<array id>_<i>``.

        Each job's own script is written in its own folder exactly as :meth:`start` writes it; the
        array's script (in :meth:`array_dir` of the first job) runs task ``i``'s script with its
        output in that job's output file, so :meth:`follow`, :meth:`state` and :meth:`cancel` work
        on ``refs[i]`` as on a job submitted alone (``scancel <id>_<i>`` ends that task only).
        Nothing is submitted until every script is written, and ``sbatch`` submits all or nothing.
        """
        if not requests:
            return []
        if max_parallel < 1:
            raise BackendError(f"--max-parallel must be at least 1 (got {max_parallel})", "Pass --max-parallel 1 or more.")
        folder = self.array_dir(requests[0].job_id)
        directives = array_directives([r.spec for r in requests], f"jc-{folder.name}")
        scripts = [self._write_job(r) for r in requests]
        folder.mkdir(parents=True, exist_ok=True)
        tasks = [ArrayTask(directory=str(path.parent), script=str(path), output=str(self.output_file(r.job_id)))
                 for r, path in zip(requests, scripts, strict=True)]
        path = folder / "array.sbatch"
        path.write_text(array_script(directives, tasks))
        path.chmod(0o700)
        count = len(requests)
        throttle = f"%{max_parallel}" if max_parallel < count else ""
        array_id = _submitted(_slurm(["sbatch", "--parsable", f"--array=0-{count - 1}{throttle}",
                                      f"--output={folder / 'task-%a.out'}", f"--chdir={folder}", str(path)]),
                              _ARRAY_ID)
        return [f"{array_id}_{i}" for i in range(count)]

    def _write_job(self, request: RunRequest) -> Path:
        """The job's folder, output folder and batch script (``job.sbatch``, returned); no exit code yet."""
        directory = self.job_dir(request.job_id)
        directory.mkdir(parents=True, exist_ok=True)
        output = self.output_file(request.job_id)
        if "%" in str(output) or "\n" in str(output):
            raise BackendError(f"The Slurm folder {self.workdir} has '%' or a line break, which Slurm would expand",
                               "Point JC_SLURM_DIR (the slurm_dir setting) at a plain folder.")
        request.output_dir.mkdir(parents=True, exist_ok=True)
        _give_output_to_container_user(request)
        script = batch_script(request, job_name=f"jc-{request.job_id}", exit_file=str(self.exit_file(request.job_id)),
                              docker=self.docker)
        path = directory / "job.sbatch"
        path.write_text(script)
        path.chmod(0o700)  # the script carries the job's environment variables
        self.exit_file(request.job_id).unlink(missing_ok=True)
        self.cancel_file(request.job_id).unlink(missing_ok=True)
        return path

    def follow(self, job_id: str, ref: str, on_event: EventSink, since: str = "",
               stop: threading.Event | None = None) -> RunOutcome:
        """Turn the output file into events until the job ends; ``since`` is a byte offset in that file.

        A job no source knows (``UNKNOWN``: the controller busy or restarting, a query that failed
        or came back empty) is asked about again for ``unknown_grace`` s before it counts as ended.
        """
        output = self.output_file(job_id)
        offset = int(since) if since.isdigit() else 0
        buffer = b""
        last_note = ""
        announced = bool(since)
        unknown_since: float | None = None
        while True:
            state = self.state(job_id, ref)
            if state.state != "UNKNOWN":
                unknown_since = None
            elif unknown_since is None:
                unknown_since = time.monotonic()
            transient = unknown_since is not None and time.monotonic() - unknown_since < self.unknown_grace
            if state.state == "RUNNING" and not announced:
                announced = True
                on_event(RunStarted(container_id=f"slurm:{ref}", image=""))
            if state.state == "PENDING" and state.reason != last_note:
                last_note = state.reason
                on_event(Log(text=f"waiting in the Slurm queue ({state.reason or 'pending'})", stream="stderr"))
            chunk = _read_from(output, offset)
            offset += len(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                on_event(parse_log_line(raw.decode("utf-8", "replace")))
            if state.done or (state.state == "UNKNOWN" and not transient):
                tail = _read_from(output, offset)  # written between the poll and the read
                offset += len(tail)
                buffer += tail
                for raw in buffer.split(b"\n"):
                    if raw:
                        on_event(parse_log_line(raw.decode("utf-8", "replace")))
                if state.state == "UNKNOWN":
                    on_event(Log(text=f"Slurm no longer knows job {ref}: neither scontrol nor sacct answered for it "
                                 f"for {self.unknown_grace:g} s and it wrote no exit code", stream="stderr"))
                elif state.state not in ("COMPLETED", "FAILED", "CANCELLED"):
                    on_event(Log(text=f"Slurm ended job {ref} as {state.state}"
                                 + (f" ({state.reason})" if state.reason else ""), stream="stderr"))
                lost = f"Slurm ended job {ref} as {state.state}" if state.state in LOST_STATES else ""
                return RunOutcome(exit_code=state.exit_code, cancelled=state.state == "CANCELLED",
                                  last_log_time=str(offset), lost=lost,
                                  out_of_memory=state.state == "OUT_OF_MEMORY")
            if stop is not None and stop.wait(self.poll):
                return RunOutcome(exit_code=None, last_log_time=str(offset - len(buffer)))
            if stop is None:
                time.sleep(self.poll)

    def cancel(self, job_id: str, ref: str) -> None:
        """``scancel`` the job (the script then stops its container); idempotent."""
        if not _JOB_ID.match(ref):
            return
        try:
            _slurm(["scancel", ref])
        except BackendError:
            return  # already gone
        if _OUR_JOB_ID.match(job_id):
            # A waiting array task that is cancelled leaves no record (scontrol: "not found"; sacct only
            # with accounting): this note lets state() say CANCELLED instead of UNKNOWN.
            with contextlib.suppress(OSError):
                self.cancel_file(job_id).write_text(ref + "\n")

    def remove(self, job_id: str, ref: str) -> None:
        """Nothing to remove: the container ran with ``--rm``; the script and output file stay for inspection."""
        if ref and self.is_running(job_id, ref):
            self.cancel(job_id, ref)

    def is_running(self, job_id: str, ref: str) -> bool:
        state = self.state(job_id, ref)
        return not state.done and state.state != "UNKNOWN"

    # -- status --------------------------------------------------------------------------------
    def state(self, job_id: str, ref: str) -> SlurmState:
        """The job's state from the controller, else accounting, else our cancel's note or the script's exit-code file."""
        if not _JOB_ID.match(ref):
            raise BackendError(f"{ref!r} is not a Slurm job id", "The job store may be corrupt.")
        found = _scontrol_state(ref) or _sacct_state(ref)
        ours = bool(_OUR_JOB_ID.match(job_id))
        recorded = _read_exit_code(self.exit_file(job_id)) if ours else None
        if found is None:
            if ours and _read_text(self.cancel_file(job_id)) == ref:
                return SlurmState("CANCELLED", recorded)
            if recorded is not None:
                return SlurmState("COMPLETED" if recorded == 0 else "FAILED", recorded)
            return SlurmState("UNKNOWN")
        if found.done and recorded is not None:
            # The container's own exit code, not the shell's view of a signal.
            return SlurmState(found.state, recorded, found.reason)
        return found


def _scontrol_state(ref: str) -> SlurmState | None:
    try:
        text = _slurm(["scontrol", "show", "job", "--oneliner", ref])
    except BackendError:
        return None
    fields = dict(f.split("=", 1) for f in text.split() if "=" in f)
    state = fields.get("JobState", "")
    if not state:
        return None
    return SlurmState(state, _exit_code(fields.get("ExitCode", "")) if state in TERMINAL_STATES else None,
                      "" if fields.get("Reason", "None") == "None" else fields["Reason"])


def _sacct_state(ref: str) -> SlurmState | None:
    try:
        text = _slurm(["sacct", "--noheader", "--allocations", "--parsable2", "--format=State,ExitCode", "--jobs", ref])
    except BackendError:
        return None  # accounting disabled
    for line in text.splitlines():
        state, _, code = line.partition("|")
        if state:
            state = state.split()[0]  # "CANCELLED by 0"
            return SlurmState(state, _exit_code(code) if state in TERMINAL_STATES else None)
    return None


def _submitted(answer: str, pattern: re.Pattern[str]) -> str:
    """The job id in ``sbatch --parsable``'s answer (``id`` or ``id;cluster``)."""
    slurm_id = answer.strip().split(";", 1)[0]
    if not pattern.match(slurm_id):
        raise BackendError(f"sbatch answered {answer.strip()!r} instead of a job id", "Check `sinfo` and the script.")
    return slurm_id


def _exit_code(text: str) -> int | None:
    code, _, signal = text.partition(":")
    if not code.isdigit():
        return None
    if signal.isdigit() and int(signal):
        return 128 + int(signal)
    return int(code)


def _read_exit_code(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


# What Slurm's clients print when the controller is down, restarting or too busy to answer.
_CONTROLLER_AWAY = re.compile(
    r"Unable to contact slurm controller|Socket timed out|temporarily unable|Resource temporarily unavailable"
    r"|Connection refused|Zero Bytes were transmitted", re.IGNORECASE)


def _slurm(argv: list[str], timeout: float = 60) -> str:
    """Run a Slurm client command (argv only, never a shell); its stdout, or BackendError."""
    if shutil.which(argv[0]) is None:
        raise BackendError(f"{argv[0]} is not on PATH, so no Slurm cluster can be reached",
                           "Install the Slurm client (Debian: slurm-client) or run on a login node.")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ControllerUnreachable(f"{argv[0]} failed: {e}", "Check that slurmctld answers (`sinfo`).") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        said = lines[-1] if lines else f"exit {done.returncode}"
        if _CONTROLLER_AWAY.search(done.stderr or ""):
            raise ControllerUnreachable(f"{argv[0]} failed: {said}", "Check that slurmctld answers (`sinfo`).")
        raise BackendError(f"{argv[0]} failed: {said}",
                           "Check the cluster with `sinfo` and the job's options (partition, GPUs, time).")
    return done.stdout


def _give_output_to_container_user(request: RunRequest) -> None:
    """As for the Docker backend: the container's unprivileged user must be able to write /output."""
    try:
        from .engine import connect

        client = connect(timeout=10)
    except ContainerizeError:
        return  # no engine here (login node): the cluster's nodes own the output folder
    try:
        give_output_to_container_user(client, request)
    finally:
        client.close()
