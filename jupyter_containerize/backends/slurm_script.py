"""The Slurm batch script for one job: pure text generation, no Slurm or engine needed.

The script runs the job exactly like the Docker backend does: the same image, the same
runner and the same hardening flags, turned from :func:`backends.container.container_options`
into a ``docker run`` argument list. Every literal reaches the shell through
:func:`shlex.join`/:func:`shlex.quote`; ``#SBATCH`` values are checked against strict
patterns first (Slurm does not quote them). The only shell expansion in the script is
``$CUDA_VISIBLE_DEVICES``, which Slurm sets to the GPUs it allocated.

A sweep's job array (:func:`array_script`) is one more script that, by ``$SLURM_ARRAY_TASK_ID``,
runs task *i*'s own batch script in that job's folder, its output going to that job's output file;
the paths in it are quoted the same way, and the task id is only ever compared to literal numbers.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import validators
from ..errors import BackendError
from ..jobspec import JobSpec
from .base import hard_limit_seconds
from .base import RunRequest
from .container import container_options

STOP_SECONDS = 10


def sbatch_directives(spec: JobSpec, job_name: str) -> list[str]:
    """The ``#SBATCH`` options for ``spec`` (GPUs → ``--gres=gpu:N``, cpus, memory, time, partition)."""
    opts = [f"--job-name={validators.name(job_name, 'The job name')}", "--nodes=1", "--ntasks=1"]
    res = spec.resources
    if res.cpus:
        opts.append(f"--cpus-per-task={max(1, math.ceil(res.cpus))}")
    if res.memory:
        opts.append(f"--mem={validators.size_mib(res.memory)}M")
    deadline = hard_limit_seconds(spec)
    if deadline:  # Slurm's --time in minutes (rounded up): --timeout plus the runner's grace to save the notebook
        opts.append(f"--time={math.ceil(deadline / 60)}")
    if spec.partition:
        opts.append(f"--partition={validators.name(spec.partition, '--partition')}")
    gpus = spec.gpus
    if gpus.device_ids:
        raise BackendError("--gpus device=… cannot be honoured by Slurm, which picks the devices itself",
                           "Ask for a number of GPUs instead, e.g. --gpus 2.")
    if gpus.count == -1:
        raise BackendError("--gpus all has no meaning on a Slurm cluster",
                           "Ask for a number of GPUs, e.g. --gpus 1 (Slurm allocates them as --gres=gpu:N).")
    if gpus.count > 0:
        opts.append(f"--gres=gpu:{gpus.count}")
    return opts


def docker_run_args(request: RunRequest) -> tuple[list[str], list[str]]:
    """``docker run`` options and the trailing ``IMAGE [COMMAND…]``, from the Docker backend's own options.

    GPUs are left out: the script adds ``--gpus`` from the devices Slurm allocated.
    """
    o = container_options(request)
    args: list[str] = ["run", "--rm", "--name", str(o["name"])]
    for key, value in sorted(o.get("labels", {}).items()):
        args += ["--label", f"{key}={value}"]
    for key, value in sorted(o.get("environment", {}).items()):
        if "\x00" in str(value) or "\x00" in key:
            raise BackendError(f"The environment variable {key!r} contains a NUL byte", "Remove it.")
        args += ["--env", f"{key}={value}"]
    for mount in o.get("mounts", ()):
        args += ["--mount", _mount_csv(mount)]
    for target, opts in sorted(o.get("tmpfs", {}).items()):
        args += ["--tmpfs", f"{target}:{opts}"]
    if o.get("read_only"):
        args.append("--read-only")
    for cap in o.get("cap_drop") or ():
        args += ["--cap-drop", cap]
    for opt in o.get("security_opt") or ():
        args += ["--security-opt", opt]
    if o.get("shm_size"):
        args += ["--shm-size", str(o["shm_size"])]
    if o.get("mem_limit"):
        args += ["--memory", str(o["mem_limit"])]
    if o.get("nano_cpus"):
        args += ["--cpus", f"{o['nano_cpus'] / 1e9:g}"]
    if o.get("network_mode"):
        args += ["--network", str(o["network_mode"])]
    if o.get("init"):
        args.append("--init")
    tail = [str(o["image"]), *[str(c) for c in o.get("command", ())]]
    return args, tail


def _mount_csv(mount: Mapping[str, Any]) -> str:
    """One ``--mount`` value; fields with ``,`` or ``"`` are CSV-quoted exactly as the docker CLI parses them."""
    source = [f"source={mount['Source']}"] if mount.get("Source") else []  # none: an anonymous volume
    fields = [f"type={mount.get('Type', 'bind')}", *source, f"target={mount['Target']}"]
    if mount.get("ReadOnly"):
        fields.append("readonly")
    for field in fields:
        if "\n" in field or "\r" in field or "\x00" in field:
            raise BackendError(f"The mount {mount.get('Source')!r} has a line break in its path", "Rename the folder.")
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def batch_script(request: RunRequest, job_name: str, exit_file: str = "", docker: str = "docker",
                 extra_directives: Sequence[str] = (), portable_uid: int | None = None) -> str:
    """The whole batch script: directives, pull by digest if needed, ``docker run``, exit code.

    Args:
        request: the run, as for the Docker backend.
        job_name: the Slurm job name (``jc-<job id>``).
        exit_file: where the script writes the container's exit code ("" for none).
        docker: the docker client command on the node.
        extra_directives: more ``#SBATCH`` options (already checked by the caller).
        portable_uid: for a committed script (export): outputs go to ``$SLURM_SUBMIT_DIR/output``
            (given to this UID when root submits) and the container is named after the Slurm job id.
    """
    spec = request.spec
    directives = [*sbatch_directives(spec, job_name), *extra_directives]
    for d in directives:
        if "\n" in d or "\r" in d:
            raise BackendError(f"The Slurm option {d!r} has a line break", "Remove it.")
    run_args, tail = docker_run_args(request)
    image = tail[0]
    name = run_args[run_args.index("--name") + 1]
    q = shlex.quote
    portable = portable_uid is not None
    if portable:
        at = run_args.index("--name")
        del run_args[at:at + 2]
        at = next(i for i, a in enumerate(run_args) if a == "--mount" and run_args[i + 1].endswith("target=/output"))
        del run_args[at:at + 2]
    lines = ["#!/bin/sh", *(f"#SBATCH {d}" for d in directives), "",
             "# Generated by jupyter-containerize: the same image, runner and hardening as `--backend docker`.",
             "set -u",
             f"JC_DOCKER={q(docker)}",
             f"JC_IMAGE={q(image)}",
             'JC_CONTAINER="jc-slurm-${SLURM_JOB_ID:-$$}"' if portable else f"JC_CONTAINER={q(name)}",
             '# Pull only what the node\'s engine lacks (a digest names exactly one image).',
             '"$JC_DOCKER" image inspect "$JC_IMAGE" >/dev/null 2>&1 || "$JC_DOCKER" pull "$JC_IMAGE" || exit 125',
             f"set -- {shlex.join(run_args)}"]
    if portable:
        lines += ['JC_OUTPUT="${SLURM_SUBMIT_DIR:-$PWD}/output"',
                  'mkdir -p "$JC_OUTPUT"',
                  f'if [ "$(id -u)" = 0 ]; then chown {int(portable_uid or 0)}:{int(portable_uid or 0)} "$JC_OUTPUT"; fi',
                  'set -- "$@" --name "$JC_CONTAINER" --mount "type=bind,\\"source=$JC_OUTPUT\\",target=/output"']
    if spec.gpus.count > 0:
        lines += ['# The GPUs Slurm allocated to this job, not just any N of the node\'s.',
                  'if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then',
                  '  set -- "$@" --gpus "\\"device=$CUDA_VISIBLE_DEVICES\\""',
                  "else",
                  f"  set -- \"$@\" --gpus {q(str(spec.gpus.count))}",
                  "fi"]
    lines += [f"set -- \"$@\" {shlex.join(tail)}",
              '"$JC_DOCKER" "$@" &',
              "child=$!",
              "# scancel (and the time limit) send TERM: stop the container, which the runner records as cancelled.",
              f"trap '\"$JC_DOCKER\" stop --time {STOP_SECONDS} \"$JC_CONTAINER\" >/dev/null 2>&1' TERM INT",
              'while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done']
    if exit_file:
        lines.append(f"printf '%s\\n' \"$rc\" > {q(exit_file)}")
    lines += ['exit "$rc"', ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class ArrayTask:
    """One task of a job array: the job's own folder, its batch script and the file its output goes to."""

    directory: str
    script: str
    output: str


def array_directives(specs: Sequence[JobSpec], job_name: str) -> list[str]:
    """The ``#SBATCH`` options shared by every task of an array (Slurm gives all tasks the same resources).

    Raises:
        BackendError: the specs ask for different resources, which one array cannot give.
    """
    if not specs:
        raise BackendError("A Slurm job array needs at least one job", "Submit the jobs with --backend slurm.")
    directives = sbatch_directives(specs[0], job_name)
    for spec in specs[1:]:
        if sbatch_directives(spec, job_name) != directives:
            raise BackendError("The jobs of one Slurm job array must ask for the same resources (CPUs, memory, "
                               "time, partition, GPUs)", "Submit the jobs that differ separately.")
    return directives


def array_script(directives: Sequence[str], tasks: Sequence[ArrayTask], shell: str = "/bin/sh") -> str:
    """The batch script of a job array: task ``i`` runs ``tasks[i].script`` as that job alone would run.

    ``sbatch --array=0-<n-1>[%N]`` submits it. Task ``i`` changes to ``tasks[i].directory`` (as
    ``--chdir`` does for a job of its own) and replaces itself with the job's script, its stdout and
    stderr in ``tasks[i].output``: the job's output file, read as for a job submitted alone. The
    array's own output file gets only what fails before that (a folder gone, an unknown task id).

    Args:
        directives: the array's ``#SBATCH`` options (:func:`array_directives`); ``--array`` goes on
            the ``sbatch`` command line.
        tasks: one per array task, in task-id order.
        shell: the shell that runs each job's script (the scripts are POSIX ``sh``).
    """
    if not tasks:
        raise BackendError("A Slurm job array needs at least one job", "Submit the jobs with --backend slurm.")
    for d in directives:
        if "\n" in d or "\r" in d:
            raise BackendError(f"The Slurm option {d!r} has a line break", "Remove it.")
    for task in tasks:
        for path in (task.directory, task.script, task.output):
            if not path or "\x00" in path:
                raise BackendError(f"The Slurm job path {path!r} is empty or has a NUL byte", "Point JC_SLURM_DIR "
                                   "(the slurm_dir setting) at a plain folder.")
    q = shlex.quote
    lines = ["#!/bin/sh", *(f"#SBATCH {d}" for d in directives), "",
             "# Generated by jupyter-containerize: a sweep as one Slurm job array. Task N runs job N's own",
             "# batch script in that job's folder, with its output in that job's output file.",
             "set -u",
             'case "${SLURM_ARRAY_TASK_ID:-}" in']
    for index, task in enumerate(tasks):
        lines += [f"  {index:d})",
                  f"    JC_DIR={q(task.directory)}",
                  f"    JC_SCRIPT={q(task.script)}",
                  f"    JC_OUTPUT={q(task.output)}",
                  "    ;;"]
    lines += ["  *)",
              '    echo "jupyter-containerize: this job array has no task ${SLURM_ARRAY_TASK_ID:-(none)}" >&2',
              "    exit 2",
              "    ;;",
              "esac",
              'cd "$JC_DIR" || exit 125',
              f'exec {q(shell)} "$JC_SCRIPT" >"$JC_OUTPUT" 2>&1',
              ""]
    return "\n".join(lines)
