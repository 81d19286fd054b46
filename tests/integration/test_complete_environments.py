"""Every notebook that runs in its kernel runs in its job, on the real engine.

Class 1: a distribution the notebook uses only through another's extra (never imported by it) is in
the image, with its reason in the lock; ``--freeze imports-only`` leaves it out.
Class 2: a requirement the kernel lacks is resolved for the image's platform and installed there.
Class 6: a module the kernel does not have is refused before anything is built.

The kernel is a real venv; its packages are tiny wheels written here into a find-links folder of
the kernel's pip configuration (no index has them), so they cost neither network nor a build backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_containerize.backends.engine import JOB_LABEL
from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.pipeline import prepare
from jupyter_containerize.jobs.store import JobRecord, JobStore
from jupyter_containerize.options import parse
from tests.support import REPO
from tests.support.notebooks import write_notebook
from tests.support.venvs import make_venv, site_packages, uv

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

NOTEBOOK_LABEL = "org.jupyter-containerize.notebook"
RESOLVED = re.compile(r"^# jcxreqdep: needed by jcxneeds; resolved for linux/\S+, not installed in the kernel$")
OPTIONAL = "# jcxpretty: optional for jcxfancy[fancy], installed in the kernel"

# the packages of the kernel: jcxfancy names jcxpretty under its extra "fancy" and imports it only when
# show() is called; jcxneeds requires jcxreqdep (absent from the kernel) and copes with its absence
Project = tuple[str, list[str], list[str], str]  # name, requirements, extras, the module's code
FANCY: Project = ("jcxfancy", ['jcxpretty; extra == "fancy"'], ["fancy"],
         ("def show(x):\n    import jcxpretty  # an optional dependency, imported at call time\n\n"
          "    return jcxpretty.pretty(x)\n"))
PRETTY: Project = ("jcxpretty", [], [], "def pretty(x):\n    return f'<<{x}>>'\n")
NEEDS: Project = ("jcxneeds", ["jcxreqdep>=0.1"], [],
         ("try:\n    import jcxreqdep as _dep\nexcept ImportError:  # a broken venv\n    _dep = None\n\n\n"
          "def value():\n    return None if _dep is None else _dep.VALUE\n"))
REQDEP: Project = ("jcxreqdep", [], [], "VALUE = 42\n")

USES_THE_EXTRA = ("import json, importlib.metadata as md, jcxfancy\n"
                  "json.dump({'shown': jcxfancy.show(3), 'version': md.version('jcxpretty')}, "
                  "open('result.json', 'w'))")
NEEDS_THE_ABSENT = ("import json, importlib.metadata as md, jcxneeds\n"
                    "try:\n    version = md.version('jcxreqdep')\nexcept md.PackageNotFoundError:\n    version = None\n"
                    "json.dump({'value': jcxneeds.value(), 'version': version}, open('result.json', 'w'))")


def write_wheel(folder: Path, name: str, requires: list[str], extras: list[str], code: str,
                version: str = "0.1.0") -> Path:
    """A pure-Python wheel of one module package, its RECORD hashed as installers expect."""
    info = f"{name}-{version}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Provides-Extra: {e}\n" for e in extras), *(f"Requires-Dist: {r}\n" for r in requires)])
    files = {f"{name}/__init__.py": code, f"{info}/METADATA": metadata,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: jc-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real kernel venv: ipykernel, jcxfancy with jcxpretty, and jcxneeds without its jcxreqdep.

    All four wheels lie in ``links``; jcxreqdep is there, only not installed.
    """
    root = tmp_path_factory.mktemp("complete")
    links = root / "links"
    for name, requires, extras, code in (FANCY, PRETTY, NEEDS, REQDEP):
        write_wheel(links, name, requires, extras, code)
    python = make_venv(root / "kernel")
    uv("pip", "install", "-q", "--python", str(python), "--find-links", str(links), "ipykernel", "jcxfancy",
       "jcxpretty")
    uv("pip", "install", "-q", "--python", str(python), "--no-index", "--find-links", str(links), "--no-deps",
       "jcxneeds")
    installed = {p.name.split("-")[0] for p in site_packages(python).glob("*.dist-info")}
    assert {"jcxfancy", "jcxpretty", "jcxneeds", "ipykernel"} <= installed and "jcxreqdep" not in installed
    return {"python": python, "links": links, "root": root}


@pytest.fixture
def kernel_pip(kernel: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The kernel's pip configuration gains the wheels' folder (its own find-links and index stay)."""
    monkeypatch.setenv("PIP_FIND_LINKS", " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"),
                                                              str(kernel["links"])])))
    return kernel


def runs_in_the_kernel(python: Path, source: str, folder: Path) -> Any:
    """The cell's result when run by the kernel's own interpreter (the precondition of every class)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python), "-c", source], check=True, cwd=folder, capture_output=True, text=True)
    return json.loads((folder / "result.json").read_text())


def _log(job: Any) -> str:
    return "".join(e.text for _, e in job.events() if isinstance(e, Log))


def run_job(notebook: Path, python: Path, store: Path, *flags: str) -> tuple[JobRecord, str, str]:
    """Capture and render (keeping the build context's lock), then build and run the job with no network."""
    spec = parse(["run", str(notebook), "--python", str(python), "--network", "none", *flags]).spec
    assert spec is not None
    prepared = prepare(spec)
    try:
        lock = (Path(prepared.context.path) / "requirements.lock").read_text()
        job = JobManager(JobStore(store)).submit(spec, prepared=prepared)
        record = job.wait(timeout=900)
        return record, lock, _log(job)
    finally:
        prepared.cleanup()


def lock_lines(lock: str) -> tuple[list[str], list[str]]:
    lines = lock.splitlines()
    return [ln for ln in lines if ln.startswith("#")], [ln for ln in lines if ln and not ln.startswith("#")]


def pin_of(pins: list[str], name: str) -> str | None:
    """The lock's line for ``name`` at 0.1.0 (an index pin or a wheel the context carries), else None."""
    pattern = re.compile(rf"^{name}(==0\.1\.0| @ file:///wheels/{name}-0\.1\.0-py3-none-any\.whl)$")
    return next((ln for ln in pins if pattern.match(ln)), None)


# -- class 1: used but not imported ------------------------------------------------------------------

def test_an_optional_dependency_used_only_through_its_user_is_in_the_job(
        kernel_pip: dict[str, Path], tmp_path: Path, job_store: Path) -> None:
    python = kernel_pip["python"]
    assert runs_in_the_kernel(python, USES_THE_EXTRA, tmp_path / "kernel-run") == {
        "shown": "<<3>>", "version": "0.1.0"}
    nb = write_notebook(tmp_path / "nb" / "uses_the_extra.ipynb", USES_THE_EXTRA)
    record, lock, log = run_job(nb, python, job_store)
    assert record.status == "succeeded", record.error + log
    assert json.loads((Path(record.output_dir) / "result.json").read_text()) == {"shown": "<<3>>", "version": "0.1.0"}
    header, pins = lock_lines(lock)
    assert pin_of(pins, "jcxpretty") is not None, lock
    assert pin_of(pins, "jcxfancy") is not None, lock
    assert OPTIONAL in header, lock
    assert not any(ln.startswith("# jcxfancy:") for ln in header)  # what the notebook imports needs no reason


def test_freeze_imports_only_leaves_the_optional_dependency_out(kernel_pip: dict[str, Path], tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "nb" / "uses_the_extra.ipynb", USES_THE_EXTRA)
    spec = parse(["run", str(nb), "--python", str(kernel_pip["python"]), "--freeze", "imports-only"]).spec
    assert spec is not None
    prepared = prepare(spec)
    try:
        lock = (Path(prepared.context.path) / "requirements.lock").read_text()
    finally:
        prepared.cleanup()
    header, pins = lock_lines(lock)
    assert pin_of(pins, "jcxfancy") is not None, lock
    assert pin_of(pins, "jcxpretty") is None and "jcxpretty" not in lock, lock
    assert "freeze imports-only" in header[1]
    assert not any("optional for" in ln for ln in header), lock


# -- class 2: missing from the kernel ----------------------------------------------------------------

def test_a_requirement_the_kernel_lacks_is_resolved_and_installed_in_the_job(
        kernel_pip: dict[str, Path], tmp_path: Path, job_store: Path) -> None:
    python = kernel_pip["python"]
    assert runs_in_the_kernel(python, NEEDS_THE_ABSENT, tmp_path / "kernel-run") == {"value": None, "version": None}
    nb = write_notebook(tmp_path / "nb" / "needs_the_absent.ipynb", NEEDS_THE_ABSENT)
    record, lock, log = run_job(nb, python, job_store)
    header, pins = lock_lines(lock)
    assert pin_of(pins, "jcxreqdep") is not None, lock
    assert pin_of(pins, "jcxneeds") is not None, lock
    assert any(RESOLVED.match(ln) for ln in header), lock
    assert "so resolved for the image: jcxreqdep==0.1.0" in log  # the capture's warning reaches the job's log
    assert record.status == "succeeded", record.error + log
    assert json.loads((Path(record.output_dir) / "result.json").read_text()) == {"value": 42, "version": "0.1.0"}


# -- class 6: a module the kernel does not have --------------------------------------------------------

def _jc_images(client: docker.DockerClient, notebook: str) -> set[str]:
    return {i.id for i in client.images.list(all=True)
            if i.id is not None and (i.labels or {}).get(NOTEBOOK_LABEL) == notebook}


def _jc_containers(client: docker.DockerClient, notebook: str, job_ids: set[str]) -> set[str]:
    return {c.id for c in client.containers.list(all=True) if c.id is not None
            and ((c.labels or {}).get(NOTEBOOK_LABEL) == notebook or (c.labels or {}).get(JOB_LABEL) in job_ids)}


@pytest.fixture
def engine_state(engine: docker.DockerClient) -> Iterator[dict[str, set[str]]]:
    yield {"images": {i.id for i in engine.images.list(all=True) if i.id is not None},
           "containers": {c.id for c in engine.containers.list(all=True) if c.id is not None}}


def test_a_module_the_kernel_lacks_is_refused_before_building(
        kernel_pip: dict[str, Path], tmp_path: Path, job_store: Path, engine: docker.DockerClient,
        engine_state: dict[str, set[str]]) -> None:
    name = "imports_what_the_kernel_lacks.ipynb"
    nb = write_notebook(tmp_path / "nb" / name, "import jcxfancy\nimport sklearn\n\nprint(jcxfancy.show(1))")
    cli = Path(sys.executable).parent / "jupyter-containerize"
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "jupyter_containerize.cli"]
    done = subprocess.run([*command, "run", str(nb), "--python", str(kernel_pip["python"])],
                          check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    ended = [ln for ln in done.stdout.splitlines() if ln.startswith("job failed: ")]  # said once, as the job's end
    assert len(ended) == 1 and "error:" not in done.stderr, done.stdout + done.stderr
    error = ended[0].removeprefix("job failed: ")
    message, _, hint = error.partition(". ")
    assert "sklearn" in message and str(kernel_pip["python"]) in message, error  # the module and the kernel
    assert "jcxfancy" not in error  # only what is missing is named
    assert "pip install scikit-learn" in hint, error  # the pip name, not the import name
    # nothing was built and nothing ran
    records = JobStore(job_store).list()
    new_images = {i.id for i in engine.images.list(all=True)} - engine_state["images"]
    new_containers = {c.id for c in engine.containers.list(all=True)} - engine_state["containers"]
    assert not new_images & _jc_images(engine, name), new_images  # other sessions' builds are not ours
    assert not new_containers & _jc_containers(engine, name, {r.id for r in records}), new_containers
    assert [r.status for r in records] == ["failed"]
    assert records[0].image_tag == "" and records[0].image_id == "" and records[0].lock_hash == ""
    assert records[0].error == error
