"""Connecting to the Docker engine, with one clear error when none answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests
import urllib3.exceptions

if TYPE_CHECKING:
    from requests import Response

from ..errors import EngineError, EngineUnreachable

#: What a call to the engine can raise when the engine fails or goes away mid-stream: docker-py's
#: own errors, the HTTP client's (a dropped connection while streaming a build or logs raises
#: urllib3's ``ProtocolError``, which is not an ``OSError``), and the socket's.
ENGINE_FAILURES: tuple[type[BaseException], ...] = (
    docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError, OSError,
)
#: The same, for a stream being read: closing it under the reader (to cancel) raises these too.
STREAM_FAILURES: tuple[type[BaseException], ...] = (*ENGINE_FAILURES, ValueError, AttributeError)

JOB_LABEL = "org.jupyter-containerize.job"
ROLE_LABEL = "org.jupyter-containerize.role"


class EngineAPI(docker.APIClient):
    """The one place that uses docker-py's private API (``_post``, ``_url``, ``_stream_helper``).

    Why: docker-py has no way to cancel a classic build (the engine cancels one when its
    client hangs up, so this keeps the last streaming response for another thread to close)
    and no flag for BuildKit builds through the engine's API (``POST /build?version=2``).
    Everything else goes through docker-py's public API.
    """

    last_stream: Any = None

    if TYPE_CHECKING:  # docker-py's private methods, which its stubs (types-docker) leave out
        def _url(self, pathfmt: str, *args: str, versioned_api: bool = True) -> str: ...
        def _raise_for_status(self, response: Response) -> None: ...
        def _stream_helper(self, response: Response, decode: bool = False) -> Iterator[Any]: ...

    def _post(self, url: str, **kwargs: Any) -> Any:
        response = super()._post(url, **kwargs)  # type: ignore[misc]  # private: not in types-docker
        if kwargs.get("stream"):
            self.last_stream = response
        return response

    def build_v2(self, body: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """``POST /build?version=2`` with a gzipped tar context as the body; the decoded progress stream."""
        response = self._post(self._url("/build"), data=body, params={**params, "version": "2"}, stream=True,
                              headers={"Content-Type": "application/x-tar"}, timeout=None)
        self._raise_for_status(response)
        yield from self._stream_helper(response, decode=True)


def engine_address() -> str:
    """Where the engine is: DOCKER_HOST, else the local socket."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine at DOCKER_HOST (default: the local socket), checked with a ping."""
    base_url = engine_address()
    try:
        client = docker.DockerClient(base_url=base_url, timeout=timeout)
        client.api = EngineAPI(base_url=base_url, timeout=timeout, version="auto")
        client.ping()
    except ENGINE_FAILURES as e:
        raise no_engine(e) from None
    return client


def ping(client: docker.DockerClient) -> None:
    """Whether the engine of a connected ``client`` still answers: EngineError when not."""
    try:
        client.ping()
    except ENGINE_FAILURES as e:
        raise no_engine(e) from None


def no_engine(e: BaseException) -> EngineUnreachable:
    """The error for an engine that does not answer (any more)."""
    return EngineUnreachable(
        f"No Docker engine answers at {engine_address()} ({engine_says(e)})",
        "Start one (as root: `dockerd &`, from Debian's docker.io package), or point DOCKER_HOST at a running engine.",
    )


BUILDKIT_MIN_API = (1, 39)  # Docker 18.09: BuildKit behind POST /build?version=2


_buildkit_by_host: dict[str, bool] = {}  # per engine address; an engine that did not answer is asked again


def engine_has_buildkit(timeout: int = 10) -> bool:
    """Whether the engine builds with BuildKit through its API (a Linux engine, Docker 18.09+).

    Asked once per engine address and process (every job's prepare step needs it). False
    when no engine answers: the build will report that itself.
    """
    base_url = engine_address()
    if base_url in _buildkit_by_host:
        return _buildkit_by_host[base_url]
    try:
        client = connect(timeout=timeout)
    except EngineError:
        return False
    try:
        version = client.version()
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()
    try:
        api = tuple(int(part) for part in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    except ValueError:
        api = (0, 0)
    answer = _buildkit_by_host[base_url] = str(version.get("Os", "linux")) == "linux" and api >= BUILDKIT_MIN_API
    return answer


def new_api_client(timeout: int = 600) -> EngineAPI:
    """A separate low-level client (one per build, so cancel closes only that build)."""
    base_url = engine_address()
    return EngineAPI(base_url=base_url, timeout=timeout, version="auto")


@dataclass(frozen=True)
class EngineStatus:
    """What the sidebar and pre-flight checks need to know about the engine."""

    reachable: bool
    version: str = ""
    api_version: str = ""
    gpu_runtime: bool = False
    gpus: tuple[str, ...] = ()
    driver_cuda: str | None = None
    error: str = ""
    runtimes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable, "version": self.version, "api_version": self.api_version,
            "gpu_runtime": self.gpu_runtime, "gpus": list(self.gpus), "driver_cuda": self.driver_cuda,
            "error": self.error, "runtimes": list(self.runtimes),
        }


def engine_status() -> EngineStatus:
    """Probe the engine and the host's NVIDIA driver without raising."""
    try:
        client = connect(timeout=10)
    except EngineError as e:
        return EngineStatus(reachable=False, error=str(e))
    try:
        version = client.version()
        info = client.info()
    except docker.errors.DockerException as e:
        return EngineStatus(reachable=False, error=engine_says(e))
    finally:
        client.close()
    runtimes = tuple(sorted((info.get("Runtimes") or {}).keys()))
    gpus, driver_cuda = _nvidia_smi()
    gpu_runtime = "nvidia" in runtimes or shutil.which("nvidia-container-cli") is not None
    return EngineStatus(
        reachable=True,
        version=str(version.get("Version", "")),
        api_version=str(version.get("ApiVersion", "")),
        gpu_runtime=gpu_runtime,
        gpus=gpus,
        driver_cuda=driver_cuda,
        runtimes=runtimes,
    )


def _nvidia_smi() -> tuple[tuple[str, ...], str | None]:
    """GPU names and the driver's CUDA version, from nvidia-smi when present."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return (), None
    try:
        names = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=10, check=True).stdout.split("\n")
        header = subprocess.run([exe], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return (), None
    cuda = None
    marker = "CUDA Version:"
    if marker in header:
        cuda = header.split(marker, 1)[1].split()[0]
    return tuple(n.strip() for n in names if n.strip()), cuda


def engine_says(e: BaseException | str) -> str:
    """The one translation of a docker-py error into the sentence a user reads.

    The engine's own explanation (not the SDK's ``NNN Server Error for http+docker://…``
    wrapper), its last non-empty line, at most 300 characters. Every handler that turns a
    docker-py error into a project error words it through this.
    """
    if isinstance(e, (urllib3.exceptions.ProtocolError, requests.ConnectionError)):
        return "the Docker engine closed the connection (was it stopped or restarted?)"
    text = e if isinstance(e, str) else str(getattr(e, "explanation", None) or e)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        return lines[-1][:300]
    return "no reason given" if isinstance(e, str) else type(e).__name__
