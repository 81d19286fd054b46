"""An air-gapped build on the real engine: the kernel's own wheels, no index, no network (issue 13, class 5)."""

from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_containerize.jobs.manager import JobManager, prepare
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.notebooks import write_notebook
from tests.support.venvs import make_project, make_venv, uv

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_local_version_wheel_builds_and_runs_without_the_kernels_index(
        tmp_path: Path, job_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    links = tmp_path / "links"
    # the kernel's whole environment as wheels in its find-links folder: ipykernel's closure and a +cpu build
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-cache-dir", "--only-binary=:all:",
                    "-d", str(links), f"ipykernel=={importlib.metadata.version('ipykernel')}",
                    f"nbclient=={importlib.metadata.version('nbclient')}",
                    f"nbformat=={importlib.metadata.version('nbformat')}"], check=True)
    project = make_project(tmp_path / "src", "cpuonly", [], version="1.0+cpu")
    uv("build", "-q", "--wheel", "--out-dir", str(links), str(project))
    python = make_venv(tmp_path / "kernel")
    uv("pip", "install", "-q", "--python", str(python), "--no-index", "--find-links", str(links),
       "ipykernel", "nbclient", "nbformat", "cpuonly==1.0+cpu")
    # the kernel's pip configuration: that folder, and an index nothing answers on
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_closed_port()}/simple")
    nb = write_notebook(tmp_path / "nb" / "local.ipynb",
                        "import json, cpuonly, importlib.metadata as md\n"
                        "json.dump({'version': md.version('cpuonly'), 'value': cpuonly.VALUE}, "
                        "open('/output/result.json', 'w'))")
    spec = parse(["run", str(nb), "--python", str(python), "--wheels-from-kernel"]).spec
    assert spec is not None and spec.build.wheels_from_kernel
    prepared = prepare(spec)
    try:
        # air-gapped: uv is this machine's, the runner the kernel's wheels, and the build has no network at all
        assert prepared.context.offline and "tools/uv" in prepared.context.files
        job = JobManager(JobStore(job_store)).submit(spec, prepared=prepared)
        record = job.wait(timeout=900)
    finally:
        prepared.cleanup()
    assert record.status == "succeeded", record.error
    assert json.loads((Path(record.output_dir) / "result.json").read_text()) == {"version": "1.0+cpu", "value": 1}
