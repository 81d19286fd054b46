"""Build and run notebooks as jobs on the real Docker engine (issue 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import nbformat
import pytest

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.backends.docker import DockerBackend
from jupyter_containerize.errors import GpuError
from jupyter_containerize.events import BuildFinished, BuildStep, CellFinished, CellStarted, Event, LayerCached
from jupyter_containerize.jobs.manager import Job, JobManager, prepare
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.papermill_record import find_output_notebook
from tests.support.cli import assert_one_clear_error, cli, store_rows
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook
from tests.support.outputs import output_notebook, read_output_notebook
from tests.support.specs import run_spec

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


def _events(job: Job) -> list[Event]:
    return [e for _, e in job.events()]


def test_quickstart_builds_runs_and_writes_outputs(quickstart: Path, job_store: Path, engine: docker.DockerClient) -> None:
    manager = JobManager(JobStore(job_store))
    job = manager.submit(run_spec(quickstart, "-p", "n_estimators=12"))
    record = job.wait(timeout=900)
    assert record.status == "succeeded", record.error
    out = Path(record.output_dir)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_estimators"] == 12 and 0.5 < metrics["accuracy"] <= 1.0
    assert record.metrics["accuracy"] == metrics["accuracy"]
    assert (out / "model.pkl").stat().st_size > 1000
    # The executed notebook is named for the job (JC_JOB_ID, as every backend sets it), never as the source.
    assert output_notebook(out, record.id).name == f"quickstart.{record.id}.ipynb"
    assert not (out / "quickstart.ipynb").exists()
    assert record.outputs and find_output_notebook(record.outputs, record.id) == str(out / f"quickstart.{record.id}.ipynb")
    executed = read_output_notebook(out, record.id)
    assert executed.metadata["papermill"]["output_path"] == f"/output/quickstart.{record.id}.ipynb"
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n_estimators = 12" in injected[0].source
    events = _events(job)
    starts = [e for e in events if isinstance(e, CellStarted)]
    assert starts and starts[-1].index == starts[-1].total - 1
    assert any(isinstance(e, BuildStep) for e in events) or any(isinstance(e, BuildFinished) for e in events)
    assert labelled_containers(engine, job.id) == []  # finished jobs leave no container behind
    user = engine.images.get(record.image_tag).attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root")


def test_unchanged_environment_is_never_rebuilt(quickstart: Path, engine: docker.DockerClient) -> None:
    prepared = prepare(run_spec(quickstart))
    try:
        build_image(prepared.context, lambda e: None)
        seen: list[Event] = []
        ref = build_image(prepared.context, seen.append)
    finally:
        prepared.cleanup()
    finished = [e for e in seen if isinstance(e, BuildFinished)]
    assert ref.cached and finished and finished[0].steps_run == 0
    assert not any(isinstance(e, BuildStep) for e in seen)


def _append_cell(notebook: Path, source: str) -> None:
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, str(notebook))


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_notebook_only_edit_rebuilds_only_the_last_layers(quickstart: Path, engine: docker.DockerClient, builder: str) -> None:
    _append_cell(quickstart, f"print('first version {time.time()}')")  # a new image, really built
    prepared = prepare(run_spec(quickstart, "--builder", builder))
    try:
        assert prepared.context.buildkit == (builder == "buildkit")
        build_image(prepared.context, lambda e: None)
        tag = prepared.context.image_tag
    finally:
        prepared.cleanup()
    if builder == "classic":
        assert engine.images.get(tag + "-stage0").id  # the builder stage is kept (a prune cannot drop its cache)
    _append_cell(quickstart, f"print('edited at {time.time()}')")
    seen: list[Event] = []
    prepared = prepare(run_spec(quickstart, "--builder", builder))
    try:
        ref = build_image(prepared.context, seen.append)
    finally:
        prepared.cleanup()
    steps = [e for e in seen if isinstance(e, BuildStep)]
    cached = {e.index for e in seen if isinstance(e, LayerCached)}
    install_steps = [s.index for s in steps if "pip install" in s.instruction or "precompile" in s.instruction]
    assert install_steps and set(install_steps) <= cached, "the lock install must come from the cache"
    finished = [e for e in seen if isinstance(e, BuildFinished)][0]
    # classic: COPY work/ and LABEL; BuildKit: COPY work/ (a LABEL only sets metadata)
    assert not ref.cached and finished.steps_run == (2 if builder == "classic" else 1)


def test_failing_cell_fails_the_job_with_its_index_and_a_partial_notebook(tmp_path: Path, job_store: Path) -> None:
    nb = write_notebook(tmp_path / "broken.ipynb", "x = 1\nprint('before')", "raise ValueError('boom')", "print('never')")
    job = JobManager(JobStore(job_store)).submit(run_spec(nb))
    record = job.wait(timeout=900)
    assert record.status == "failed" and record.failing_cell == 1
    assert "ValueError" in record.error or "boom" in record.error
    partial = read_output_notebook(record.output_dir, record.id)
    code = [c for c in partial.cells if c.cell_type == "code"]  # papermill's error markers are markdown
    assert "before" in json.dumps(code[0].outputs)
    assert "Execution using papermill encountered an exception here" in partial.cells[2].source
    finished_cells = [e for e in _events(job) if isinstance(e, CellFinished)]
    assert [c.index for c in finished_cells if c.ok] == [0]


def test_volumes_env_and_user_reach_the_container(tmp_path: Path, job_store: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("hello from the host")
    nb = write_notebook(
        tmp_path / "io.ipynb",
        "import os, json, pathlib\n"
        "text = pathlib.Path('/data/input.txt').read_text()\n"
        "pathlib.Path('/output/seen.json').write_text(json.dumps({'text': text, 'env': os.environ['GREETING'], 'uid': os.getuid()}))",
    )
    job = JobManager(JobStore(job_store)).submit(run_spec(nb, "-v", "./data:/data:ro", "-e", "GREETING=hi there"))
    record = job.wait(timeout=900)
    assert record.status == "succeeded", record.error
    seen = json.loads((Path(record.output_dir) / "seen.json").read_text())
    assert seen == {"text": "hello from the host", "env": "hi there", "uid": seen["uid"]}
    assert seen["uid"] != 0
    if os.geteuid() != 0:
        assert seen["uid"] == os.geteuid()  # outputs belong to the host user


def test_cancel_during_build_and_run_leaves_no_container(tmp_path: Path, job_store: Path, engine: docker.DockerClient) -> None:
    manager = JobManager(JobStore(job_store))
    nb = write_notebook(tmp_path / "slow.ipynb", "import time\nfor i in range(600):\n    time.sleep(0.5)")
    job = manager.submit(run_spec(nb, "--no-cache"))
    deadline = time.monotonic() + 300
    while not any(isinstance(e, BuildStep) for e in _events(job)) and time.monotonic() < deadline:
        time.sleep(0.2)
    job.cancel()
    record = job.wait(timeout=120)
    assert record.status == "cancelled"
    assert labelled_containers(engine, job.id) == []

    job = manager.submit(run_spec(nb))
    deadline = time.monotonic() + 600
    while not any(isinstance(e, CellStarted) for e in _events(job)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status == "running"
    job.cancel()
    record = job.wait(timeout=120)
    assert record.status == "cancelled"
    assert labelled_containers(engine, job.id) == []


def test_a_new_process_reattaches_to_a_running_job(tmp_path: Path, job_store: Path, engine: docker.DockerClient) -> None:
    nb = write_notebook(tmp_path / "steady.ipynb", *[f"import time\ntime.sleep(1.5)\nprint('tick {i}')" for i in range(6)])
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_containerize.cli", "run", str(nb), "--detach"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "JC_STORE": str(job_store)},
    )
    assert proc.returncode == 0, proc.stderr
    store = JobStore(job_store)
    record = store.list(limit=1)[0]
    assert record.status == "running" and labelled_containers(engine, record.id)
    manager = JobManager(store)  # a new owner: the process that started the job is gone
    job = manager.attach(record.id)
    record = job.wait(timeout=300)
    assert record.status == "succeeded", record.error
    texts = [e.text for e in _events(job) if hasattr(e, "text")]
    assert [f"tick {i}" for i in range(6)] == [t.strip() for t in texts if t.strip().startswith("tick")]
    starts = [e.index for e in _events(job) if isinstance(e, CellStarted)]
    assert starts == list(range(6))
    assert labelled_containers(engine, job.id) == []


def test_gpu_request_reaches_the_container_and_preflight_refuses_without_runtime(tmp_path: Path, engine: docker.DockerClient, base_image: str) -> None:
    nb = write_notebook(tmp_path / "gpu.ipynb", "print(1)")
    spec = run_spec(nb, "--gpus", "device=0,1", "--shm-size", "1g")
    image = engine.images.get(base_image)
    assert image.id is not None
    backend = DockerBackend(engine)
    request = RunRequest(job_id="gputest" + os.urandom(3).hex(), image=ImageRef(tag=image.id, image_id=image.id),
                         spec=spec, output_dir=tmp_path / "out")
    container_id = backend.create(request)
    try:
        host = engine.api.inspect_container(container_id)["HostConfig"]
        req = host["DeviceRequests"][0]
        assert req["DeviceIDs"] == ["0", "1"] and ["gpu", "utility", "compute"] in req["Capabilities"]
        assert host["ShmSize"] == 1024**3
        assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
        assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    finally:
        backend.remove(request.job_id, container_id)


def test_gpus_all_runs_where_the_engine_has_an_nvidia_runtime_and_is_refused_before_building_elsewhere(
        tmp_path: Path, engine: docker.DockerClient, base_image: str) -> None:
    """Either way the engine decides: with the NVIDIA runtime the job sees the GPUs (the toolkit mounts
    nvidia-smi into any image); without it the preflight refuses in one sentence, before any build."""
    from jupyter_containerize.backends.docker import gpu_preflight
    from jupyter_containerize.backends.engine import engine_status

    nb = write_notebook(tmp_path / "gpu.ipynb", "print(1)")
    spec = run_spec(nb, "--gpus", "all")
    if not engine_status().gpu_runtime:
        with pytest.raises(GpuError) as info:
            gpu_preflight(spec)
        assert "NVIDIA" in str(info.value) and "Traceback" not in str(info.value)
        store = tmp_path / "s.sqlite"  # through the CLI: refused at submit, nothing recorded or built
        assert_one_clear_error(cli("run", "gpu.ipynb", "--gpus", "all", cwd=tmp_path, store=store), "NVIDIA runtime")
        assert store_rows(store) == [] and not list(tmp_path.glob("*.jc-jobs"))
        return
    gpu_preflight(spec)
    image = engine.images.get(base_image)
    assert image.id is not None
    backend = DockerBackend(engine)
    request = RunRequest(job_id="gputest" + os.urandom(3).hex(), image=ImageRef(tag=image.id, image_id=image.id),
                         spec=spec, output_dir=tmp_path / "out", command=("nvidia-smi", "-L"))
    container_id = backend.start(request)
    try:
        assert engine.api.wait(container_id, timeout=120)["StatusCode"] == 0
        listed = engine.api.logs(container_id).decode()
        assert listed.startswith("GPU 0:"), listed
    finally:
        backend.remove(request.job_id, container_id)


DEBIAN_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="this machine has no Debian python3")
def test_a_kernel_on_debians_own_python_gets_its_base_built_offline(tmp_path: Path, job_store: Path) -> None:
    """Debian's python3 disables ensurepip and is PEP 668 'externally managed'; its base image must still build."""
    venv = tmp_path / "venv"
    made = subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)], check=False, capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, f"Debian's python3 cannot make venvs (apt-get install python3-venv): {made.stderr}"
    subprocess.run([str(Path(sys.executable).parent / "uv"), "pip", "install", "-q", "--python",
                    str(venv / "bin" / "python"), "ipykernel"], check=True, timeout=600)
    nb = write_notebook(tmp_path / "deb.ipynb", "import json, platform, pathlib\n"
                        "pathlib.Path('/output/v.json').write_text(json.dumps(platform.python_version()))")
    record = JobManager(JobStore(job_store)).submit(run_spec(nb, "--python", str(venv / "bin" / "python"))).wait(900)
    assert record.status == "succeeded", record.error
    version = subprocess.run([str(DEBIAN_PYTHON), "-c", "import platform; print(platform.python_version())"],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert json.loads((Path(record.output_dir) / "v.json").read_text()) == version
