"""The job's container as every backend starts it, and the log lines it writes.

One home for what the Docker, Slurm and Kubernetes backends share, so that no backend
imports another: the hardened container options (the Docker backend creates them, the
Slurm script turns them into ``docker run`` arguments), the runner's event lines read
back from any log, and the ownership of the output folder on a root host.
"""

from __future__ import annotations

import json
import os
from typing import Any

import docker
import docker.errors
from docker.types import DeviceRequest, Mount

from ..events import EVENT_PREFIX, Event, Log, event_from_dict
from ..jobspec import OUTPUT_DIR_IN_CONTAINER, WORK_DIR_IN_CONTAINER, Hardening
from .base import RunRequest, job_environment
from .engine import ENGINE_FAILURES, JOB_LABEL, ROLE_LABEL

TMPFS_OPTIONS = "rw,nosuid,nodev,exec,size=2g"


def hardening_options(hardening: Hardening) -> dict[str, Any]:
    """The one rule for a job's hardening, as ``docker run`` options (Compose's keys are the same).

    Kubernetes' security context, Slurm's ``docker run`` line and verify's throwaway container
    derive from this too: a read-only root, every capability dropped, no new privileges, unless
    ``--writable-root``, ``--keep-caps`` or ``--allow-new-privileges`` say otherwise.
    """
    return {
        "read_only": hardening.read_only_root,
        "cap_drop": ["ALL"] if hardening.cap_drop_all else None,
        "security_opt": ["no-new-privileges:true"] if hardening.no_new_privileges else None,
    }


def container_options(request: RunRequest) -> dict[str, Any]:
    """The keyword arguments for ``client.containers.create`` (pure: no engine needed)."""
    spec = request.spec
    env = job_environment(request)
    mounts = [Mount(target=OUTPUT_DIR_IN_CONTAINER, source=str(request.output_dir), type="bind"),
              # The working folder, writable with the root read-only: the engine seeds this anonymous
              # volume with the image's /work (owner included); the runner copies what changes to /output.
              Mount(target=WORK_DIR_IN_CONTAINER, source=None, type="volume")]
    for v in spec.volumes:
        mounts.append(Mount(target=v.target, source=v.source, type=v.kind, read_only=v.read_only))
    for host, target, ro in request.extra_mounts:
        mounts.append(Mount(target=target, source=host, type="bind", read_only=ro))
    options: dict[str, Any] = {
        "image": request.image.reference,
        "name": f"jc-{request.job_id}",
        "labels": {JOB_LABEL: request.job_id, ROLE_LABEL: "job"},
        "environment": env,
        "mounts": mounts,
        "detach": True,
        "tmpfs": {"/tmp": TMPFS_OPTIONS},
        **hardening_options(spec.hardening),
        "shm_size": spec.resources.shm_size,
        "mem_limit": spec.resources.memory,
        "nano_cpus": int(spec.resources.cpus * 1e9) if spec.resources.cpus else None,
        "network_mode": spec.network,
        "init": True,
    }
    if request.command:
        options["command"] = list(request.command)
    if spec.gpus.wanted:
        options["device_requests"] = [DeviceRequest(
            count=spec.gpus.count if not spec.gpus.device_ids else 0,  # docker-py's own default
            device_ids=list(spec.gpus.device_ids),
            capabilities=[list(spec.gpus.capabilities)],
        )]
    return {k: v for k, v in options.items() if v is not None}


def parse_log_line(text: str) -> Event:
    """A runner event line becomes its event; anything else is a log line."""
    text = text.rstrip("\r")
    if text.startswith(EVENT_PREFIX):
        try:
            data = json.loads(text[len(EVENT_PREFIX):])
            if isinstance(data, dict):
                return event_from_dict(data)
        except (ValueError, TypeError):
            pass
    return Log(text=text, stream="stdout")


def give_output_to_container_user(client: docker.DockerClient, request: RunRequest) -> None:
    """A root host runs jobs as an unprivileged UID, which must be able to write the outputs."""
    if os.geteuid() != 0:
        return
    try:
        user = str(client.images.get(request.image.reference).attrs["Config"].get("User") or "")
    except ENGINE_FAILURES:
        return  # what fails here fails again, and is said, where the container is created
    head = user.split(":")[0]
    if head.isdigit() and int(head):
        os.chown(request.output_dir, int(head), int(head))
