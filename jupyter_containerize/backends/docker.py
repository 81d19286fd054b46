"""The local Docker engine as a run backend: one hardened, labelled container per job."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import docker
import docker.errors
from docker.types import DeviceRequest, Mount

from ..errors import EngineError, GpuError
from ..events import EVENT_PREFIX, Event, Log, event_from_dict
from ..jobspec import OUTPUT_DIR_IN_CONTAINER, WORK_DIR_IN_CONTAINER, JobSpec
from .base import EventSink, RunOutcome, RunRequest, job_environment
from .engine import JOB_LABEL, ROLE_LABEL, connect, engine_status

TMPFS_OPTIONS = "rw,nosuid,nodev,exec,size=2g"


def gpu_preflight(spec: JobSpec, cuda_needed: str | None = None) -> None:
    """Fail early when GPUs are asked of an engine without an NVIDIA runtime; warn on an old driver."""
    if not spec.gpus.wanted or spec.backend != "docker":
        return
    status = engine_status()
    if not status.gpu_runtime:
        raise GpuError(
            f"--gpus {spec.gpus.describe()} was requested but this Docker engine has no NVIDIA runtime",
            "Install the NVIDIA driver and the NVIDIA Container Toolkit on the host "
            "(nvidia-ctk runtime configure --runtime=docker, then restart dockerd), or run without --gpus.",
        )
    if cuda_needed and status.driver_cuda and _version_tuple(status.driver_cuda) < _version_tuple(cuda_needed):
        raise GpuError(
            f"The image needs CUDA {cuda_needed} but the host driver supports only CUDA {status.driver_cuda}",
            "Update the NVIDIA driver, or capture from an environment built for an older CUDA.",
        )


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


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
        "read_only": spec.hardening.read_only_root,
        "cap_drop": ["ALL"] if spec.hardening.cap_drop_all else None,
        "security_opt": ["no-new-privileges:true"] if spec.hardening.no_new_privileges else None,
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
            count=spec.gpus.count if not spec.gpus.device_ids else None,
            device_ids=list(spec.gpus.device_ids) or None,
            capabilities=[list(spec.gpus.capabilities)],
        )]
    return {k: v for k, v in options.items() if v is not None}


class DockerBackend:
    """Runs jobs as containers on the local (or DOCKER_HOST) engine."""

    name = "docker"
    host_paths = True

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def create(self, request: RunRequest) -> str:
        """Create (not start) the job's container; return its id."""
        request.output_dir.mkdir(parents=True, exist_ok=True)
        _give_output_to_container_user(self.client, request)
        try:
            container = self.client.containers.create(**container_options(request))
        except docker.errors.ImageNotFound:
            raise EngineError(f"The image {request.image.reference} is not on this engine",
                              "Build it again (jupyter containerize build).") from None
        except docker.errors.APIError as e:
            raise EngineError(f"The engine refused to create the job's container: {e.explanation or e}",
                              "Check the run options.") from None
        return str(container.id)

    def start(self, request: RunRequest) -> str:
        container_id = self.create(request)
        try:
            self.client.api.start(container_id)
        except docker.errors.APIError as e:
            self.client.api.remove_container(container_id, force=True, v=True)
            raise EngineError(f"The job's container could not start: {e.explanation or e}",
                              "Check the run options (volumes, GPUs, network).") from None
        return container_id

    def follow(self, job_id: str, ref: str, on_event: EventSink, since: str = "",
               stop: threading.Event | None = None) -> RunOutcome:
        """Stream the container's log as events until it exits; resume after the log time ``since``."""
        api = self.client.api
        last = since
        buffer = b""
        try:
            stream = api.logs(ref, stream=True, follow=True, timestamps=True)
        except docker.errors.NotFound:
            return RunOutcome(exit_code=None, last_log_time=last)
        for chunk in stream:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                stamp, _, text = raw.decode("utf-8", "replace").partition(" ")
                if since and stamp <= since:
                    continue
                last = stamp
                on_event(parse_log_line(text))
            if stop is not None and stop.is_set():
                return RunOutcome(exit_code=None, last_log_time=last)
        if buffer:
            stamp, _, text = buffer.decode("utf-8", "replace").partition(" ")
            if not since or stamp > since:
                last = stamp
                on_event(parse_log_line(text))
        try:
            result = api.wait(ref, timeout=60)
        except docker.errors.NotFound:
            return RunOutcome(exit_code=None, last_log_time=last)
        return RunOutcome(exit_code=int(result.get("StatusCode", -1)), last_log_time=last)

    def cancel(self, job_id: str, ref: str) -> None:
        for container in self._labelled(job_id):
            try:
                container.stop(timeout=10)
            except docker.errors.NotFound:
                pass

    def remove(self, job_id: str, ref: str) -> None:
        for container in self._labelled(job_id):
            try:
                container.remove(force=True, v=True)  # and its anonymous volumes
            except docker.errors.NotFound:
                pass

    def is_running(self, job_id: str, ref: str) -> bool:
        return any(c.status in ("created", "running", "restarting") for c in self._labelled(job_id))

    def _labelled(self, job_id: str) -> list[Any]:
        return list(self.client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}))

    def labelled_jobs(self) -> dict[str, str]:
        """job id → container status, for every container this tool created."""
        return {c.labels[JOB_LABEL]: c.status for c in self.client.containers.list(all=True, filters={"label": JOB_LABEL})}


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


def _give_output_to_container_user(client: docker.DockerClient, request: RunRequest) -> None:
    """A root host runs jobs as an unprivileged UID, which must be able to write the outputs."""
    if os.geteuid() != 0:
        return
    try:
        user = str(client.images.get(request.image.reference).attrs["Config"].get("User") or "")
    except docker.errors.DockerException:
        return
    head = user.split(":")[0]
    if head.isdigit() and int(head):
        os.chown(request.output_dir, int(head), int(head))
