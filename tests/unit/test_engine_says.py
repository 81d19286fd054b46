"""One translation of docker-py errors: the engine's own words, never the SDK's URL wrapper."""

from __future__ import annotations

from http.client import IncompleteRead
from pathlib import Path

import docker
import docker.errors
import pytest
import requests
from urllib3.exceptions import ProtocolError

from jupyter_containerize.backends.engine import STREAM_FAILURES, engine_says


def _api_error(explanation: str | None) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = 404
    response.url = "http+docker://localhost/v1.43/containers/create"
    response.reason = "Not Found"
    return docker.errors.APIError("404 Client Error", response=response, explanation=explanation)


def test_the_engines_explanation_not_the_sdk_wrapper() -> None:
    error = _api_error("network no-such-network-xyz not found")
    assert "http+docker" in str(error)
    assert engine_says(error) == "network no-such-network-xyz not found"


def test_a_multi_line_explanation_keeps_its_last_line_bounded() -> None:
    error = _api_error("Step 3/4 : RUN make\n\n  failed to solve: " + "x" * 500 + "\n")
    said = engine_says(error)
    assert said.startswith("failed to solve: ") and len(said) == 300


def test_without_an_explanation_the_error_itself_then_its_type() -> None:
    assert engine_says(docker.errors.DockerException("Error while fetching server API version")) == \
        "Error while fetching server API version"
    assert engine_says(docker.errors.DockerException()) == "DockerException"
    assert engine_says("  \n") == "no reason given"


def test_a_connection_dropped_mid_stream_says_the_engine_went_away() -> None:
    # What reading a build's stream raised when dockerd stopped under it (CI, test_daemon_restart):
    # urllib3's ProtocolError, which is neither a DockerException nor an OSError.
    error = ProtocolError("Connection broken: IncompleteRead(0 bytes read)", IncompleteRead(b""))
    assert isinstance(error, STREAM_FAILURES)
    assert engine_says(error) == "the Docker engine closed the connection (was it stopped or restarted?)"
    assert engine_says(requests.ConnectionError("Connection aborted.")) == engine_says(error)


def test_a_start_that_no_engine_answers_can_be_retried(tmp_path: Path) -> None:
    """A real client at a socket nobody listens on: the start is Unreachable (``--retries`` tries again),
    in the same words as any other call that finds no engine."""
    from jupyter_containerize.backends.base import ImageRef, RunRequest
    from jupyter_containerize.backends.docker import DockerBackend
    from jupyter_containerize.errors import EngineError, Unreachable
    from jupyter_containerize.jobspec import JobSpec

    backend = DockerBackend(docker.DockerClient(base_url=f"unix://{tmp_path}/docker.sock", version="1.41"))
    request = RunRequest(job_id="a1b2c3", image=ImageRef(tag="jc/nb:1", image_id="sha256:1"),
                         spec=JobSpec(notebook=tmp_path / "nb.ipynb"), output_dir=tmp_path / "out",
                         command=("/work/nb.ipynb",))
    with pytest.raises(EngineError) as info:
        backend.start(request)
    assert isinstance(info.value, Unreachable) and info.value.message.startswith("No Docker engine answers at")
