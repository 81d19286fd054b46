"""Bad input through the real CLI (a new process) and the API: one clear sentence, a non-zero
exit (or a ContainerizeError subclass), no traceback, nothing half-written, no orphan container.

Most cases stop before the engine; the few marked ``engine`` need it (base image, registry)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import docker
import nbformat
import pytest

from jupyter_containerize.errors import (
    BuildError,
    ContainerizeError,
    InterpreterError,
    JobNotFound,
    NotebookError,
    OptionError,
    RegistryError,
)
from jupyter_containerize.jobs.manager import JobManager, checked_spec, prepare
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.cli import assert_one_clear_error, cli, store_rows
from tests.support.engine import image_tags, labelled_containers
from tests.support.notebooks import write_notebook


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A folder with a good notebook, one with a parameters cell, and a data folder."""
    write_notebook(tmp_path / "ok.ipynb", "print('ok')")
    write_notebook(tmp_path / "params.ipynb", "print(a)", parameters="a = 1")
    (tmp_path / "data").mkdir()
    return tmp_path


def _no_leftovers(folder: Path, out: str) -> None:
    """``dockerfile -o OUT`` that failed wrote neither OUT nor a temp folder beside it."""
    assert not (folder / out).exists()
    assert not [p.name for p in folder.iterdir() if ".jc-tmp-" in p.name or p.name.startswith(f".{out}")]


# -- the notebook itself ------------------------------------------------------------------------------

BROKEN_FILES = {
    "truncated": '{"cells": [{"cell_type": "code", "source": "print(1)"',
    "not-json": "this is not a notebook",
    "json-list": "[]",
    "no-cells-key": '{"metadata": {}, "nbformat": 4}',
    "binary": "\x00\x01\x02\xff",
}


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_malformed_notebook_json(work: Path, kind: str) -> None:
    (work / "bad.ipynb").write_text(BROKEN_FILES[kind], encoding="latin-1")
    result = cli("dockerfile", "bad.ipynb", "-o", "ctx", cwd=work, store=work / "s.sqlite")
    assert_one_clear_error(result, "bad.ipynb", "not a valid notebook")
    _no_leftovers(work, "ctx")


def test_missing_notebook(work: Path) -> None:
    result = cli("run", "nope.ipynb", cwd=work, store=work / "s.sqlite")
    assert_one_clear_error(result, "nope.ipynb")
    assert store_rows(work / "s.sqlite") == []


def _markdown_only(path: Path, empty_code: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# only prose")]
    if empty_code:
        nb.cells.append(nbformat.v4.new_code_cell("   \n"))
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("command", ["dockerfile", "build", "run", "export"])
def test_notebook_without_code_cells_is_refused(work: Path, command: str) -> None:
    _markdown_only(work / "prose.ipynb")
    result = cli(command, "prose.ipynb", cwd=work, store=work / "s.sqlite")
    assert_one_clear_error(result, "no code cells")
    assert store_rows(work / "s.sqlite") == []  # no job recorded for a refused notebook
    assert not (work / "prose-container").exists() and not (work / "prose.jc-jobs").exists()


def test_notebook_with_only_blank_code_cells_is_refused_by_the_api(work: Path) -> None:
    nb = _markdown_only(work / "blank.ipynb", empty_code=True)
    spec = parse(["run", str(nb)]).spec
    assert spec is not None
    with pytest.raises(NotebookError, match="no code cells"):
        checked_spec(spec)
    with pytest.raises(NotebookError):
        JobManager(JobStore(work / "s.sqlite")).submit(spec)
    assert store_rows(work / "s.sqlite") == []


def test_unknown_kernelspec(work: Path) -> None:
    nb = write_notebook(work / "k.ipynb", "print(1)")
    data = json.loads(nb.read_text())
    data["metadata"]["kernelspec"]["name"] = "no-such-kernel-xyz"
    nb.write_text(json.dumps(data))
    result = cli("dockerfile", "k.ipynb", "-o", "ctx", cwd=work)
    assert_one_clear_error(result, "no-such-kernel-xyz", "not installed")
    _no_leftovers(work, "ctx")


def test_kernelspec_of_another_language(work: Path) -> None:
    kernels = work / "jupyter-path" / "kernels" / "rlang"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({"argv": ["R", "--slave"], "display_name": "R", "language": "R"}))
    nb = write_notebook(work / "r.ipynb", "print(1)")
    data = json.loads(nb.read_text())
    data["metadata"]["kernelspec"] = {"name": "rlang", "display_name": "R", "language": "R"}
    nb.write_text(json.dumps(data))
    result = cli("dockerfile", "r.ipynb", cwd=work, env={"JUPYTER_PATH": str(work / "jupyter-path")})
    assert_one_clear_error(result, "not Python")


# -- the interpreter --------------------------------------------------------------------------------

CRASHING = {
    "segfault": ("#!/bin/sh\nkill -SEGV $$\n", "SIGSEGV"),
    "exit-3": ("#!/bin/sh\necho 'something broke' >&2\nexit 3\n", "something broke"),
    "python-that-raises": ("#!/bin/sh\nexec python3 -c 'raise SystemExit(\"probe refused\")'\n", "probe refused"),
    "not-python": ("#!/bin/sh\nexec cat >/dev/null\n", "probe"),
}


@pytest.mark.parametrize("kind", sorted(CRASHING))
def test_interpreter_that_crashes(work: Path, kind: str) -> None:
    script, needle = CRASHING[kind]
    python = work / f"{kind}.sh"
    python.write_text(script)
    python.chmod(0o755)
    result = cli("dockerfile", "ok.ipynb", "--python", str(python), "-o", "ctx", cwd=work)
    assert_one_clear_error(result, needle, "--python")
    _no_leftovers(work, "ctx")


def test_interpreter_that_does_not_exist(work: Path) -> None:
    result = cli("build", "ok.ipynb", "--python", str(work / "missing-python"), cwd=work)
    assert_one_clear_error(result, "missing-python")


def test_crashing_interpreter_raises_interpreter_error_in_the_api(work: Path) -> None:
    python = work / "segv.sh"
    python.write_text("#!/bin/sh\nkill -SEGV $$\n")
    python.chmod(0o755)
    spec = parse(["run", str(work / "ok.ipynb"), "--python", str(python)]).spec
    assert spec is not None
    with pytest.raises(InterpreterError, match="SIGSEGV"):
        prepare(spec)


# -- flags and their values ------------------------------------------------------------------------

FLAG_CASES = {
    "unknown-flag": (["run", "ok.ipynb", "--frobnicate"], "unrecognized arguments"),
    "unknown-command": (["launch", "ok.ipynb"], "invalid choice"),
    "no-command": ([], "required"),
    "run-without-notebook": (["run"], "NOTEBOOK"),
    "gpus-word": (["run", "ok.ipynb", "--gpus", "lots"], "--gpus"),
    "gpus-empty-devices": (["run", "ok.ipynb", "--gpus", "device="], "--gpus"),
    "gpus-negative": (["run", "ok.ipynb", "--gpus=-1"], "--gpus"),
    "gpus-injection": (["run", "ok.ipynb", "--gpus", "device=0;rm -rf /"], "--gpus"),
    "volume-missing-source": (["run", "ok.ipynb", "-v", "./nowhere:/data"], "does not exist"),
    "volume-bad-mode": (["run", "ok.ipynb", "-v", "./data:/data:rx"], "mode"),
    "volume-no-target": (["run", "ok.ipynb", "-v", "./data"], "SRC:DST"),
    "volume-relative-target": (["run", "ok.ipynb", "-v", "./data:data"], "absolute"),
    "volume-reserved-target": (["run", "ok.ipynb", "-v", "./data:/output"], "reserved"),
    "volume-bad-name": (["run", "ok.ipynb", "-v", "bad$(id):/data"], "neither a path nor a volume name"),
    "env-without-equals": (["run", "ok.ipynb", "-e", "SEED"], "KEY=VALUE"),
    "env-bad-key": (["run", "ok.ipynb", "-e", "1X=2"], "KEY=VALUE"),
    "env-injection-key": (["run", "ok.ipynb", "-e", "A$(id)=1"], "KEY=VALUE"),
    "parameter-without-equals": (["run", "params.ipynb", "-p", "a"], "NAME=VALUE"),
    "parameter-keyword-name": (["run", "params.ipynb", "-p", "class=1"], "variable name"),
    "parameter-without-cell": (["run", "ok.ipynb", "-p", "a=1"], "parameters"),
    "parameter-typo": (["run", "params.ipynb", "-p", "aa=1"], "params.ipynb has no parameter aa: did you mean a?"),
    "parameter-wrong-type": (["run", "params.ipynb", "-p", "a", "abc"], "a is an int in params.ipynb's parameters cell"),
    "sweep-wrong-type": (["run", "params.ipynb", "--sweep", "a=1,x"], "a is an int"),
    "sweep-typo": (["run", "params.ipynb", "--sweep", "b=1,2"], "params.ipynb has no parameter b"),
    "notify-url-without-host": (["run", "ok.ipynb", "--notify", "https:///hook"], "--notify 'https:///hook' is a URL"),
    "notify-unclosed-quote": (["run", "ok.ipynb", "--notify", "notify-send 'done"], "cannot be split into a command"),
    "sweep-detached": (["run", "params.ipynb", "--sweep", "a=1,2", "--detach"], "--detach cannot leave a sweep"),
    "sweep-empty-list": (["run", "params.ipynb", "--sweep", "a="], "no values"),
    "sweep-only-commas": (["run", "params.ipynb", "--sweep", "a=,,"], "no values"),
    "sweep-without-cell": (["run", "ok.ipynb", "--sweep", "a=1,2"], "parameters"),
    "uid-root": (["run", "ok.ipynb", "--uid", "0"], "--uid"),
    "uid-negative": (["run", "ok.ipynb", "--uid=-5"], "--uid"),
    "uid-not-a-number": (["run", "ok.ipynb", "--uid", "root"], "--uid"),
    "base-image-malformed": (["dockerfile", "ok.ipynb", "--base-image", "Not An Image"], "--base-image"),
    "base-image-latest": (["dockerfile", "ok.ipynb", "--base-image", "python:latest"], "latest"),
    "base-image-untagged": (["dockerfile", "ok.ipynb", "--base-image", "python"], "no tag"),
    "push-injection": (["build", "ok.ipynb", "--push", "reg/x:1;touch /tmp/x"], "--push"),
    "cpus-zero": (["run", "ok.ipynb", "--cpus", "0"], "--cpus"),
    "memory-unit": (["run", "ok.ipynb", "--memory", "4x"], "--memory"),
    "time-format": (["run", "ok.ipynb", "--timeout", "soon"], "--timeout 'soon' is not a time limit"),
    "network-name": (["run", "ok.ipynb", "--network", "a b"], "--network"),
    "partition-newline": (["run", "ok.ipynb", "--backend", "slurm", "--partition", "a\n#SBATCH --uid=0"],
                          "--partition"),
    "max-parallel-zero": (["run", "params.ipynb", "--sweep", "a=1,2", "--max-parallel", "0"], "--max-parallel"),
    "backend-unknown": (["run", "ok.ipynb", "--backend", "nomad"], "No backend is called 'nomad'"),
    "docker-socket-mount": (["run", "ok.ipynb", "-v", "/var/run/docker.sock:/s"], "--allow-dangerous-mounts"),
    "root-mount": (["run", "ok.ipynb", "-v", "/:/host"], "--allow-dangerous-mounts"),
    "logs-unknown-job": (["logs", "0123456789ab"], "No job"),
    "stop-unknown-job": (["stop", "0123456789ab"], "No job"),
    "rm-unknown-job": (["rm", "0123456789ab"], "No job"),
    "logs-injection-id": (["logs", "x' OR '1'='1"], "No job"),
    "jobs-limit-word": (["jobs", "-n", "many"], "invalid int"),
    "prune-without-retention": (["prune", "--yes"], "--keep-last N"),
    "prune-older-than-word": (["prune", "--older-than", "soon"], "--older-than 'soon' is not an age"),
    "prune-keep-last-negative": (["prune", "--keep-last", "-1"], "--keep-last -1 is not a number of jobs"),
    "prune-keep-last-word": (["prune", "--keep-last", "two"], "invalid int"),
    "prune-build-cache-without-age": (["prune", "--keep-last", "1", "--build-cache"], "--older-than"),
}


@pytest.mark.parametrize("case", sorted(FLAG_CASES))
def test_bad_flag_through_the_cli(work: Path, case: str) -> None:
    argv, needle = FLAG_CASES[case]
    store = work / "s.sqlite"
    result = cli(*argv, cwd=work, store=store, timeout=120)
    assert_one_clear_error(result, needle)
    assert [s for _, s in store_rows(store)] == []  # nothing recorded
    assert not list(work.glob("*.jc-jobs"))  # no output folder


UNRECEIVABLE_VALUES = {  # flags -> the value's type, named in the sentence
    "complex-literal": (["-p", "a=1+2j"], "complex"),
    "set-literal": (["-p", "a={1, 2}"], "set"),
    "bytes-literal": (["-p", "a=b'hi'"], "bytes"),
    "yaml-set": (["-y", "{a: !!set {1, 2}}"], "set"),
    "yaml-bytes": (["-y", "a: !!binary aGk="], "bytes"),
    "yaml-file-set": (["-f", "set.yaml"], "set"),
}


@pytest.mark.engine
@pytest.mark.parametrize("case", sorted(UNRECEIVABLE_VALUES))
def test_a_value_no_cell_can_receive_is_refused_before_any_build(work: Path, engine: docker.DockerClient,
                                                                  case: str) -> None:
    """Values no injected cell can write (papermill crashes on or garbles them: see
    tests/integration/test_papermill_compat.py): exit 2, one sentence, no job, no output folder, no image,
    no container. The parameters cell's default is None, so no type of the cell refuses them first."""
    flags, kind = UNRECEIVABLE_VALUES[case]
    name = f"odd-{uuid.uuid4().hex[:12]}"  # an image or a container of this notebook can only be this run's
    write_notebook(work / f"{name}.ipynb", "print(a)", parameters="a = None")
    (work / "set.yaml").write_text("a: !!set {1, 2}\n")
    store = work / "s.sqlite"
    result = cli("run", f"{name}.ipynb", *flags, cwd=work, store=store, timeout=120)
    assert_one_clear_error(result, f"is a {kind}", "cannot be passed to the notebook")
    assert store_rows(store) == []
    assert not list(work.glob("*.jc-jobs"))
    assert not [tag for tag in image_tags(engine) if name in tag]
    assert not [c.id for c in engine.containers.list(all=True) if name in str(c.attrs["Config"]["Image"])]


def test_unknown_job_id_raises_job_not_found(job_store: Path) -> None:
    manager = JobManager(JobStore(job_store))
    for call in (manager.attach, manager.cancel, manager.remove, manager.store.get):
        with pytest.raises(JobNotFound):
            call("doesnotexist")


def test_magic_line_with_an_unclosed_quote() -> None:
    with pytest.raises(OptionError, match="quote"):
        parse("run nb.ipynb -e 'A=unterminated")


def test_dockerfile_into_a_foreign_folder_leaves_it_untouched(work: Path) -> None:
    (work / "mine").mkdir()
    (work / "mine" / "precious.txt").write_text("keep me")
    result = cli("dockerfile", "ok.ipynb", "-o", "mine", cwd=work)
    assert_one_clear_error(result, "not empty")
    assert [p.name for p in (work / "mine").iterdir()] == ["precious.txt"]
    assert (work / "mine" / "precious.txt").read_text() == "keep me"


def test_include_path_outside_the_notebook_folder(work: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("x")
    result = cli("dockerfile", "ok.ipynb", "--include", str(outside), "-o", "ctx", cwd=work)
    assert_one_clear_error(result)
    _no_leftovers(work, "ctx")


def test_every_api_failure_is_a_containerize_error(work: Path) -> None:
    """The API raises subclasses of the one root, never a bare exception, for predictable input."""
    bad = work / "bad.ipynb"
    bad.write_text("{")
    spec = parse(["run", str(bad)]).spec
    assert spec is not None
    with pytest.raises(ContainerizeError):
        prepare(spec)
    for argv in (["run", "x.ipynb", "--gpus", "x"], ["run", "x.ipynb", "-e", "noeq"], ["nope"],
                 ["run", "x.ipynb", "--base-image", "python:latest"]):  # refused by the parser, before capture
        with pytest.raises(OptionError):
            parse(argv)


# -- on the engine: base image and registry ----------------------------------------------------------


@pytest.mark.engine
def test_base_image_that_does_not_exist(work: Path, engine: docker.DockerClient, base_image: str) -> None:
    before = {c.id for c in engine.containers.list(all=True)}
    result = cli("build", "ok.ipynb", "--base-image", "nosuch/image:1", cwd=work, store=work / "s.sqlite")
    line = assert_one_clear_error(result, "nosuch/image:1", "could not be pulled")
    assert "http+docker" not in line  # the engine's reason, not the SDK's URL
    assert {c.id for c in engine.containers.list(all=True)} <= before
    # Through the API: the job is recorded as failed with the same sentence, no container left.
    spec = parse(["run", str(work / "ok.ipynb"), "--base-image", "nosuch/image:1"]).spec
    assert spec is not None
    job = JobManager(JobStore(work / "s.sqlite")).submit(spec)
    record = job.wait(timeout=300)
    assert record.status == "failed" and "nosuch/image:1" in record.error
    assert labelled_containers(engine, job.id) == []
    with pytest.raises(BuildError):
        from jupyter_containerize.backends.builder import build_image

        prepared = prepare(spec)
        try:
            build_image(prepared.context, lambda e: None)
        finally:
            prepared.cleanup()


@pytest.mark.engine
def test_unreachable_registry(work: Path, engine: docker.DockerClient, base_image: str) -> None:
    result = cli("build", "ok.ipynb", "--push", "127.0.0.1:1/x/y:1", cwd=work, timeout=900)
    assert_one_clear_error(result, "127.0.0.1:1", "cannot be reached")
    from jupyter_containerize.backends.base import ImageRef
    from jupyter_containerize.backends.registry import push_image

    image = engine.images.get(base_image)
    assert image.id is not None
    with pytest.raises(RegistryError):
        push_image(ImageRef(tag=base_image, image_id=image.id), "127.0.0.1:1/x/y:1", lambda e: None)


@pytest.mark.engine
def test_run_that_fails_before_the_container_gives_exit_1_and_one_sentence(work: Path, engine: docker.DockerClient) -> None:
    """A job that is recorded, then fails while preparing, ends with 'job failed: <sentence>'."""
    nb = write_notebook(work / "k.ipynb", "print(1)")
    data = json.loads(nb.read_text())
    data["metadata"]["kernelspec"]["name"] = "no-such-kernel-xyz"
    nb.write_text(json.dumps(data))
    store = work / "s.sqlite"
    result = cli("run", "k.ipynb", cwd=work, store=store)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("job failed: ") and "no-such-kernel-xyz" in last
    assert [s for _, s in store_rows(store)] == ["failed"]
    job_id = store_rows(store)[0][0]
    assert labelled_containers(engine, job_id) == []
    assert os.path.exists(store)


@pytest.mark.engine
def test_container_the_engine_refuses_is_one_sentence_in_the_engines_words(work: Path, engine: docker.DockerClient,
                                                                           base_image: str) -> None:
    """A network the engine does not have: its own reason, once, no SDK URL, no container left."""
    store = work / "s.sqlite"
    result = cli("run", "ok.ipynb", "--network", "no-such-network-xyz", cwd=work, store=store, timeout=900)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("job failed: ") and "no-such-network-xyz" in last and "not found" in last
    assert "http+docker" not in result.stdout + result.stderr and "Server Error" not in last
    job_id = store_rows(store)[0][0]
    assert labelled_containers(engine, job_id) == []


# -- a backend that cannot run: refused at submit, before anything is captured, built or recorded ------------


def _refused_at_submit(work: Path, argv: list[str], env: dict[str, str], *needles: str) -> None:
    store = work / "s.sqlite"
    result = cli(*argv, cwd=work, store=store, env=env, timeout=120)
    assert_one_clear_error(result, *needles)
    assert store_rows(store) == [] and not list(work.glob("*.jc-jobs"))


def test_slurm_without_its_client_tools(work: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    _refused_at_submit(work, ["run", "ok.ipynb", "--backend", "slurm"], {"PATH": str(empty)},
                       "--backend slurm needs sbatch, which is not on PATH", "slurm-client")


def test_kubernetes_without_its_client_library(work: Path, tmp_path: Path) -> None:
    """The package installed without its [kubernetes] extra: the import fails as it would for a missing package."""
    shadow = tmp_path / "shadow" / "kubernetes"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'kubernetes'\", name='kubernetes')\n")
    _refused_at_submit(work, ["run", "ok.ipynb", "--backend", "kubernetes"],
                       {"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))},
                       "needs the kubernetes client library", "jupyter-containerize[kubernetes]")


def test_kubernetes_without_a_configured_cluster(work: Path, tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""}
    _refused_at_submit(work, ["run", "ok.ipynb", "--backend", "kubernetes"], env,
                       "No Kubernetes cluster is configured", "KUBECONFIG")
    _refused_at_submit(work, ["run", "ok.ipynb", "--backend", "kubernetes", "--gpus", "all"], env,
                       "cannot be asked of Kubernetes")
