"""The local Docker engine as a run backend: one hardened, labelled container per job."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import docker
import docker.errors

from ..errors import EngineError, GpuError
from ..jobspec import Hardening, JobSpec
from .base import Backend, EventSink, RunOutcome, RunRequest
from .container import container_options, give_output_to_container_user, hardening_options, parse_log_line
from .engine import ENGINE_FAILURES, JOB_LABEL, STREAM_FAILURES, connect, engine_says, engine_status, no_engine, ping

LEFTOVER_WAIT_SECONDS = 30.0  # how long a job's start waits for the engine to let go of an earlier attempt's container


def gpu_preflight(spec: JobSpec, cuda_needed: str | None = None) -> None:
    """Fail early when GPUs are asked of an engine without an NVIDIA runtime; warn on an old driver."""
    if not spec.gpus.wanted:
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


class DockerBackend(Backend):
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

    def preflight(self, spec: JobSpec, cuda_version: str | None = None) -> None:
        """No engine answers; GPUs asked of an engine without an NVIDIA runtime, or of a driver too old
        for the image's CUDA."""
        ping(self.client)  # EngineError when no engine answers (the first use connects)
        gpu_preflight(spec, cuda_version)

    def create(self, request: RunRequest) -> str:
        """Create (not start) the job's container; return its id.

        The container is named after the job, so a container of an earlier attempt of the same job
        (``--retries``) that the engine still holds, e.g. one it was removing when it restarted, is
        removed first: only one attempt of a job runs at a time.
        """
        request.output_dir.mkdir(parents=True, exist_ok=True)
        give_output_to_container_user(self.client, request)
        deadline = time.monotonic() + LEFTOVER_WAIT_SECONDS
        while True:
            try:
                return str(self.client.containers.create(**container_options(request)).id)
            except docker.errors.ImageNotFound:
                raise EngineError(f"The image {request.image.reference} is not on this engine",
                                  "Build it again (jupyter containerize build).") from None
            except docker.errors.APIError as e:
                if e.status_code != 409 or time.monotonic() > deadline:
                    raise EngineError(f"The engine refused to create the job's container: {engine_says(e)}",
                                      "Check the run options.") from None
            except ENGINE_FAILURES as e:
                raise no_engine(e) from None
            with contextlib.suppress(EngineError):  # the engine may be removing it already
                self.remove(request.job_id, "")
            time.sleep(0.5)

    def start(self, request: RunRequest) -> str:
        container_id = self.create(request)
        try:
            self.client.api.start(container_id)
        except docker.errors.APIError as e:
            self.client.api.remove_container(container_id, force=True, v=True)
            raise EngineError(f"The job's container could not start: {engine_says(e)}",
                              "Check the run options (volumes, GPUs, network).") from None
        except ENGINE_FAILURES as e:  # a retry removes what the engine kept of it
            raise no_engine(e) from None
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
        try:
            with _closed_on(stop, stream):
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
                        break
        except EngineError as e:  # the engine went away under the stream
            return RunOutcome(exit_code=None, last_log_time=last, lost=e.message)
        if stop is not None and stop.is_set():  # the manager closes: the job runs on, unfollowed
            return RunOutcome(exit_code=None, last_log_time=last)
        if buffer:
            stamp, _, text = buffer.decode("utf-8", "replace").partition(" ")
            if not since or stamp > since:
                last = stamp
                on_event(parse_log_line(text))
        try:
            result = api.wait(ref, timeout=60)
            state = api.inspect_container(ref).get("State") or {}
        except docker.errors.NotFound:
            return RunOutcome(exit_code=None, last_log_time=last)
        except ENGINE_FAILURES as e:
            return RunOutcome(exit_code=None, last_log_time=last,
                              lost=f"the Docker engine stopped answering ({engine_says(e)})")
        return RunOutcome(exit_code=int(result.get("StatusCode", -1)), last_log_time=last,
                          out_of_memory=bool(state.get("OOMKilled")))

    def cancel(self, job_id: str, ref: str) -> None:
        for container in self._labelled(job_id):
            with contextlib.suppress(docker.errors.NotFound):
                container.stop(timeout=10)

    def remove(self, job_id: str, ref: str) -> None:
        for container in self._labelled(job_id):
            try:
                container.remove(force=True, v=True)  # and its anonymous volumes
            except docker.errors.NotFound:
                pass
            except ENGINE_FAILURES as e:  # e.g. 409: its removal is already in progress
                raise EngineError(f"The job's container {container.name} could not be removed: {engine_says(e)}",
                                  f"Remove it with `docker rm -f {container.name}`.") from None

    def is_running(self, job_id: str, ref: str) -> bool:
        return any(c.status in ("created", "running", "restarting") for c in self._labelled(job_id))

    def run_command(self, image: str, argv: Sequence[str], *, entrypoint: str | None = None) -> str:
        """Run ``argv`` once in a throwaway container of ``image`` (no network, read-only root, no
        capabilities, removed after) and return what it printed.

        Raises:
            EngineError: the image is missing, or the command failed or could not start.
        """
        try:
            raw = self.client.containers.run(image, list(argv), entrypoint=entrypoint, remove=True,
                                             network_mode="none", **hardening_options(Hardening()))
        except docker.errors.DockerException as e:
            raise EngineError(f"The image {image} could not run {' '.join([entrypoint or '', *argv]).strip()[:80]} "
                              f"({engine_says(e)})", "Build the image first (jupyter containerize build).") from None
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    def _labelled(self, job_id: str) -> list[Any]:
        try:
            return list(self.client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}))
        except ENGINE_FAILURES as e:
            raise no_engine(e) from None

    def labelled_jobs(self) -> dict[str, str]:
        """job id → container status, for every container this tool created."""
        return {c.labels[JOB_LABEL]: c.status for c in self.client.containers.list(all=True, filters={"label": JOB_LABEL})}


@contextlib.contextmanager
def _closed_on(stop: threading.Event | None, stream: Any) -> Iterator[None]:
    """Close the log ``stream`` as soon as ``stop`` is set, so a silent container's follow returns; a
    stream that breaks otherwise (the engine went away) is an EngineError.

    The watcher looks twice a second and is joined on the way out: no thread outlives the follow.
    """
    done = threading.Event()

    def watch(stop: threading.Event) -> None:
        while not done.is_set():
            if stop.wait(0.5):
                with contextlib.suppress(Exception):  # the stream may be closing on its own
                    stream.close()
                return

    watcher = None
    if stop is not None:
        watcher = threading.Thread(target=watch, args=(stop,), name="containerize-follow-stop", daemon=True)
        watcher.start()
    try:
        yield
    except STREAM_FAILURES as e:
        if stop is None or not stop.is_set():
            raise EngineError(f"lost the job's log stream: {engine_says(e)}") from e
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
