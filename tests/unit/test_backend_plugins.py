"""Backends as plugins: the registry, a third-party backend through a real entry point, the config object."""

from __future__ import annotations

import ast
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomllib

import jupyter_containerize.backends as backends_package
from jupyter_containerize.backends.base import Backend, ImageRef
from jupyter_containerize.backends.config import Config
from jupyter_containerize.backends.plugins import GROUP, backend_names, load_backend
from jupyter_containerize.errors import BackendError, OptionError
from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import BuildOptions, JobSpec

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = Path(backends_package.__file__).parent
BUILT_IN = {"docker", "kubernetes", "slurm"}

# A third-party package, as pip would install it: a module and its dist-info with entry_points.txt.
PLUGIN = '''
"""A backend that runs the notebook's code cells with this interpreter, in a subprocess."""

import os
import subprocess
import sys

from jupyter_containerize.backends.base import Backend, ImageRef, RunOutcome, job_environment
from jupyter_containerize.backends.container import parse_log_line

RUNNER = r"""
import json, os, sys, time

def event(kind, **fields):
    print("@@jc-event " + json.dumps({"type": kind, "time": time.time(), **fields}), flush=True)

nb = json.load(open(sys.argv[1]))
cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
params = json.loads(os.environ.get("JC_PARAMETERS") or "{}")
ns = {}
for i, cell in enumerate(cells):
    source = "".join(cell["source"])
    event("CellStarted", index=i, total=len(cells), source_first_line=source.splitlines()[0])
    started = time.monotonic()
    exec(source, ns)
    if "parameters" in cell["metadata"].get("tags", []):
        ns.update(params)
    event("CellFinished", index=i, total=len(cells), duration=time.monotonic() - started)
event("Finished", status="succeeded", exit_code=0)
"""


class LocalPythonBackend(Backend):
    name = "local-python"
    host_paths = True
    instances = []

    def __init__(self, greeting=""):
        self.greeting = greeting
        self.preflighted = []
        self.built = []
        self.removed = []
        self._procs = {}
        LocalPythonBackend.instances.append(self)

    @classmethod
    def from_config(cls, config):
        return cls(greeting=config.backend_options.get("local-python", {}).get("greeting", ""))

    def preflight(self, spec, cuda_version=None):
        self.preflighted.append((spec.notebook.name, cuda_version))

    def build(self, context, spec, on_event, engine_build):
        # No engine: the job runs this interpreter; the rendered context's hash still names the "image".
        self.built.append(context.content_hash)
        return ImageRef(tag="local-python:" + context.content_hash[:12], image_id=sys.executable)

    def start(self, request):
        request.output_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **job_environment(request), "JC_OUTPUT_DIR": str(request.output_dir),
               "GREETING": self.greeting}
        proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(request.spec.notebook)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._procs[str(proc.pid)] = proc
        return str(proc.pid)

    def follow(self, job_id, ref, on_event, since="", stop=None):
        proc = self._procs[ref]
        for line in proc.stdout:
            on_event(parse_log_line(line.rstrip("\\n")))
        return RunOutcome(exit_code=proc.wait())

    def cancel(self, job_id, ref):
        if ref in self._procs:
            self._procs[ref].terminate()

    def remove(self, job_id, ref):
        self.removed.append(ref)

    def is_running(self, job_id, ref):
        return ref in self._procs and self._procs[ref].poll() is None


class Incomplete:
    """Meets the old, smaller protocol only: no preflight, no build."""

    name = "incomplete"
    host_paths = True

    def start(self, request): return ""
    def follow(self, job_id, ref, on_event, since="", stop=None): return None
    def cancel(self, job_id, ref): pass
    def remove(self, job_id, ref): pass
    def is_running(self, job_id, ref): return False
'''

ENTRY_POINTS = f"""\
[{GROUP}]
local-python = jc_local_python:LocalPythonBackend
incomplete = jc_local_python:Incomplete
"""


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The third-party package installed on sys.path (importlib.metadata reads its dist-info); its module."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "jc_local_python.py").write_text(PLUGIN)
    dist = site / "jc_local_python-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: jc-local-python\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    yield None
    module = sys.modules.pop("jc_local_python", None)
    for backend in module.LocalPythonBackend.instances if module else ():
        for proc in backend._procs.values():
            proc.kill()
            proc.wait()
            proc.stdout.close()


def _notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(textwrap.dedent("""\
            import os, pathlib
            pathlib.Path(os.environ["JC_OUTPUT_DIR"], "answer.txt").write_text(str(x * 2))
            print(os.environ["GREETING"], x * 2)""")),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_a_third_party_backend_registered_by_entry_point_runs_a_job(plugin: None, tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "double.ipynb")
    assert {"local-python", "incomplete"} | BUILT_IN <= set(backend_names())
    config = Config(backend_options={"local-python": {"greeting": "hello from the config"}})
    manager = JobManager(JobStore(tmp_path / "jobs.sqlite"), config=config)
    spec = JobSpec(notebook=nb, backend="local-python", parameters={"x": 21}, build=BuildOptions(builder="classic"))
    job = manager.submit(spec, in_process=True)
    record = job.wait(timeout=120)
    assert record.status == "succeeded", record.error
    assert record.exit_code == 0 and record.backend == "local-python"
    # The whole pipeline ran: capture and render, the backend's preflight and build, its run, its removal.
    backend = manager.backend("local-python")
    assert type(backend).__module__ == "jc_local_python"
    # at submit, then with the captured CUDA version (none here)
    assert backend.preflighted == [("double.ipynb", None), ("double.ipynb", None)]  # type: ignore[attr-defined]
    assert backend.built and record.image_tag == "local-python:" + backend.built[0][:12]  # type: ignore[attr-defined]
    assert backend.removed == [record.backend_ref]  # type: ignore[attr-defined]
    logs = [e.text for _, e in job.events() if isinstance(e, Log)]
    assert "hello from the config 42" in logs
    cells = [type(e).__name__ for _, e in job.events() if type(e).__name__.startswith("Cell")]
    assert cells == ["CellStarted", "CellFinished"] * 2
    answer = Path(record.output_dir) / "answer.txt"
    assert answer.read_text() == "42" and str(answer) in record.outputs
    assert manager.close(5) == []


def test_an_unknown_backend_is_one_sentence_naming_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        load_backend("nomad")
    assert str(caught.value) == "No backend is called 'nomad'; the registered backends are docker, kubernetes and slurm."
    # Through the manager: refused before any job is recorded.
    manager = JobManager(JobStore(tmp_path / "jobs.sqlite"))
    (tmp_path / "nb.ipynb").write_text("{}")
    with pytest.raises(BackendError, match="registered backends are docker, kubernetes and slurm"):
        manager.submit(JobSpec(notebook=tmp_path / "nb.ipynb", backend="nomad"), command=("true",),
                       image=ImageRef(tag="jc/nb:1", image_id="sha256:1"))
    assert manager.store.list() == []


def test_the_unknown_name_sentence_lists_third_party_backends_too(plugin: None) -> None:
    with pytest.raises(BackendError, match=r"^No backend is called 'x'; the registered backends are docker, "
                                           r"incomplete, kubernetes, local-python and slurm\.$"):
        load_backend("x")


def test_a_backend_without_the_protocols_capabilities_is_refused_by_name(plugin: None) -> None:
    with pytest.raises(BackendError) as caught:
        load_backend("incomplete")
    assert str(caught.value).startswith("The backend 'incomplete' (jc_local_python:Incomplete) lacks build, "
                                        "job_arrays, preflight and start_array. Subclass jupyter_containerize.backends.base.Backend")


def test_the_built_in_backends_register_in_pyproject_exactly_as_a_plugin_would() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][GROUP]
    assert set(declared) == BUILT_IN
    assert set(backend_names()) >= BUILT_IN  # installed (pip install -e . registers them)
    for name in BUILT_IN:
        backend = load_backend(name, Config())
        assert Backend in type(backend).__mro__ and backend.name == name
        assert f"{type(backend).__module__}:{type(backend).__name__}" == declared[name]


def test_the_manager_has_no_branch_on_a_backend_name() -> None:
    source = (ROOT / "jupyter_containerize" / "jobs" / "manager.py").read_text()
    names = {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)}
    assert not names & BUILT_IN


def _family(module: str, registered: set[str]) -> str | None:
    """The backend a module of backends/ belongs to (slurm_script is slurm's), or None for a shared one."""
    head = module.split("_")[0]
    return head if head in registered else None


def _imported_backend_modules(path: Path) -> set[str]:
    """The modules of jupyter_containerize.backends that ``path`` imports, however it spells them."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:  # from .docker import x / from . import docker
                parts = [module.split(".")[0]] if module else [a.name for a in node.names]
            elif node.level == 2 and module.startswith("backends"):  # from ..backends.docker import x
                rest = module.split(".")[1:]
                parts = rest[:1] if rest else [a.name for a in node.names]
            elif module.startswith("jupyter_containerize.backends"):
                rest = module.split(".")[2:]
                parts = rest[:1] if rest else [a.name for a in node.names]
            else:
                parts = []
            found.update(parts)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("jupyter_containerize.backends."):
                    found.add(alias.name.split(".")[2])
    return found


def test_no_backend_module_imports_another_backend() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][GROUP]
    registered = {target.split(":")[0].rsplit(".", 1)[-1] for target in declared.values()}
    assert registered == BUILT_IN
    modules = sorted(p.stem for p in BACKENDS.glob("*.py"))
    assert {"container", "plugins", "config", "base", "slurm_script"} <= set(modules)
    crossings = []
    for module in modules:
        mine = _family(module, registered)
        for imported in sorted(_imported_backend_modules(BACKENDS / f"{module}.py")):
            theirs = _family(imported, registered)
            if theirs is not None and theirs != mine:
                crossings.append(f"{module} imports {imported}")
    assert crossings == []
    # The parser sees what it must: the Slurm backend imports its own script module and the shared ones.
    assert {"slurm_script", "container", "config", "base"} <= _imported_backend_modules(BACKENDS / "slurm.py")


def test_config_reads_the_environment_and_takes_overrides_on_top(tmp_path: Path) -> None:
    env = {"JC_SLURM_DIR": str(tmp_path / "s"), "JC_SLURM_POLL": "0.5", "JC_K8S_NAMESPACE": "ml", "JC_K8S_TTL": "60",
           "JC_STORE": str(tmp_path / "jobs.sqlite"), "JC_K8S_OUTPUT_PVC": ""}
    config = Config.from_env(env, k8s_namespace="research", slurm_docker="", k8s_poll=None)
    assert config.slurm_dir == tmp_path / "s" and config.slurm_poll == 0.5 and config.k8s_ttl == 60
    assert config.k8s_namespace == "research"  # an override wins over the variable
    assert config.slurm_docker == "docker" and config.k8s_poll == 2.0 and config.k8s_output_pvc is None  # unset
    assert config.store_path == tmp_path / "jobs.sqlite"
    assert Config.from_env({}) == Config()
    with pytest.raises(OptionError, match=r"^JC_SLURM_POLL='soon' is not a number of seconds"):
        Config.from_env({"JC_SLURM_POLL": "soon"})
    with pytest.raises(OptionError, match="Unknown setting 'slurm_pol'"):
        Config.from_env({}, slurm_pol=1)


def test_the_manager_gives_its_config_to_the_backends_it_loads(tmp_path: Path) -> None:
    config = Config(slurm_dir=tmp_path / "slurm", slurm_poll=0.25, slurm_unknown_grace=5, k8s_namespace="ml",
                    k8s_poll=0.5, k8s_ttl=60, k8s_backoff_limit=2, k8s_output_pvc="results")
    manager = JobManager(JobStore(tmp_path / "jobs.sqlite"), config=config)
    slurm: Any = manager.backend("slurm")
    assert (slurm.workdir, slurm.poll, slurm.unknown_grace, slurm.docker) == (tmp_path / "slurm", 0.25, 5, "docker")
    k8s: Any = manager.backend("kubernetes")
    assert (k8s.namespace, k8s.poll, k8s.ttl_seconds, k8s.backoff_limit, k8s.output_claim) == ("ml", 0.5, 60, 2,
                                                                                                "results")
    assert manager.backend("slurm") is slurm  # loaded once


def test_the_server_traits_fill_the_same_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_containerize.server.app import ContainerizeApp

    monkeypatch.setenv("JC_K8S_POLL", "7")
    monkeypatch.setenv("JC_SLURM_POLL", "3")
    app = ContainerizeApp()
    app.slurm_poll = 0.5
    app.k8s_namespace = "ml"
    app.store_path = str(tmp_path / "jobs.sqlite")
    app.backend_options = {"local-python": {"greeting": "hi"}}
    config = app.job_config()
    assert (config.slurm_poll, config.k8s_poll, config.k8s_namespace) == (0.5, 7.0, "ml")  # traits, else env
    assert config.store_path == tmp_path / "jobs.sqlite"
    assert config.backend_options == {"local-python": {"greeting": "hi"}}
