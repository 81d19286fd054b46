"""Render: Dockerfile checklist, quoting, context contents, determinism (no engine)."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from jupyter_containerize.capture.snapshot import (
    EnvironmentSnapshot,
    GpuInfo,
    PinnedDistribution,
    PipConfig,
)
from jupyter_containerize.errors import ContainerizeError, NotebookError, OptionError
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.render import BuildContext, ContextError, render_context, render_dockerfile
from jupyter_containerize.render.context import content_hash, slug
from tests.support.render import RUNNER_PINS, logical_lines, make_snapshot, spec_for, stages

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
SECRET = "s3cr3t-t0ken-value"
INSTRUCTIONS = {"FROM", "RUN", "COPY", "ENV", "ARG", "VOLUME", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "LABEL"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.ipynb").write_bytes((FIXTURES / "parameters.ipynb").read_bytes())
    (folder / "helpers.py").write_text("def f():\n    return 1\n")
    pkg = folder / "mypkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "weights.pt").write_bytes(b"\0" * 10)
    (pkg / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (folder / "data.csv").write_text("a,b\n1,2\n")
    return folder


def render(snap: EnvironmentSnapshot, out: Path, spec: JobSpec | None = None) -> BuildContext:
    return render_context(snap, spec or spec_for(snap.notebook, uid=1234), out, runner_pins=RUNNER_PINS)


def index_of(lines: list[str], prefix: str) -> int:
    return next(i for i, ln in enumerate(lines) if ln.startswith(prefix))


# -- the Dockerfile checklist ---------------------------------------------------------------


def test_dockerfile_checklist(project: Path) -> None:
    df = render_dockerfile(make_snapshot(project / "train.ipynb"), spec_for(project / "train.ipynb", uid=1234))
    assert "# syntax" not in df and "--mount" not in df and "<<" not in df  # classic builder
    builder, final = stages(df)
    assert all(ln.split()[0] in INSTRUCTIONS for ln in builder + final)
    assert builder[0] == "FROM python:3.11.7-slim-bookworm AS builder"
    assert final[0] == "FROM python:3.11.7-slim-bookworm"
    assert "latest" not in df
    # builder: uv pinned, installs from the lock, no caches
    assert any(re.search(r"pip install --no-cache-dir --target /opt/jc-build/uv uv==\d+\.\d+\.\d+", ln) for ln in builder)
    assert any("UV_NO_CACHE=1" in ln for ln in builder)
    install = index_of(builder, "RUN uv venv /opt/venv")
    assert index_of(builder, "COPY requirements.lock") < install
    assert "--no-deps -r /opt/jc-build/requirements.lock" in builder[install]
    assert any("/opt/jc-runner" in ln and "runner.lock" in ln for ln in builder)
    # final: OS packages first, user, venvs, then the notebook, exec form, labels last
    assert final[1].startswith("RUN apt-get update") and "libgomp1" in final[1]
    assert "rm -rf /var/lib/apt/lists/*" in final[1]
    assert "uv" not in " ".join(ln for ln in final if ln.startswith("RUN"))
    assert index_of(final, "COPY --from=builder /opt/venv") < index_of(final, "COPY --chown=1234:1234 work/")
    assert "useradd --uid 1234" in final[index_of(final, "RUN groupadd")]
    assert index_of(final, "COPY --chown") > index_of(final, "ENV ")  # code copied after everything slow
    env = final[index_of(final, "ENV ")]
    for item in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PATH=/opt/venv/bin:$PATH", "HOME=/tmp",
                 "JUPYTER_PATH=/opt/jc/share", "MPLCONFIGDIR=/tmp/matplotlib"):
        assert item in env
    assert 'VOLUME ["/output"]' in final
    assert "WORKDIR /work" in final
    assert "USER 1234:1234" in final
    assert 'ENTRYPOINT ["/opt/jc-runner/bin/python", "/opt/jc/runner.py"]' in final
    assert 'CMD ["/work/train.ipynb"]' in final
    assert final[-1].startswith("LABEL ")
    for label in ("lock-hash=", "notebook=", "version=", "python=3.11.7"):
        assert f"org.jupyter-containerize.{label}" in final[-1]
    assert "NVIDIA_VISIBLE_DEVICES" not in df


def test_no_system_packages_means_no_apt(project: Path) -> None:
    df = render_dockerfile(make_snapshot(project / "train.ipynb", system_packages=()))
    assert "apt-get" not in df


def test_uid_default_is_host_uid_but_never_root(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = make_snapshot(project / "train.ipynb")
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert "USER 1000:1000" in render_dockerfile(snap)
    monkeypatch.setattr(os, "getuid", lambda: 4242)
    assert "USER 4242:4242" in render_dockerfile(snap, spec_for(snap.notebook))
    with pytest.raises(OptionError, match="UID"):
        render_dockerfile(snap, spec_for(snap.notebook, uid=0))


@pytest.mark.parametrize(
    "image", ["python", "python:latest", "ubuntu", "Bad/Image:1", "python:3.11\nRUN rm -rf /", "x:1 AS y", "a:$(id)"]
)
def test_unpinned_or_malformed_base_images_are_refused(project: Path, image: str) -> None:
    with pytest.raises(OptionError):
        render_dockerfile(make_snapshot(project / "train.ipynb"), spec_for(project / "train.ipynb", base_image=image))


def test_custom_base_image(project: Path) -> None:
    ref = "registry.example.com:5000/team/py@sha256:" + "a" * 64
    df = render_dockerfile(make_snapshot(project / "train.ipynb"), spec_for(project / "train.ipynb", base_image=ref))
    builder, final = stages(df)
    assert builder[0] == f"FROM {ref} AS builder" and final[0] == f"FROM {ref}"
    assert "--python python3" in " ".join(builder)


@pytest.mark.parametrize("pkg", ["libgomp1; rm -rf /", "Lib", "a", "$(id)", "x\ny"])
def test_bad_debian_package_names_are_refused(project: Path, pkg: str) -> None:
    with pytest.raises(OptionError):
        render_dockerfile(make_snapshot(project / "train.ipynb", system_packages=(pkg,)))


@pytest.mark.parametrize(
    "name",
    ['evil"\nRUN touch pwned\n".ipynb', "a$(touch x)`id`'q'.ipynb", "spa ce\\$HOME\u00e9.ipynb", "a*b?[c].ipynb"],
)
def test_hostile_notebook_names_cannot_inject_instructions(tmp_path: Path, name: str) -> None:
    nb = tmp_path / name
    nb.write_bytes((FIXTURES / "simple.ipynb").read_bytes())
    ctx = render(make_snapshot(nb), tmp_path / "ctx")
    lines = logical_lines(ctx.dockerfile)
    assert all(ln.split()[0] in INSTRUCTIONS for ln in lines)
    assert not any(ln.startswith("RUN touch") for ln in ctx.dockerfile.splitlines())
    _builder, final = stages(ctx.dockerfile)
    assert len(final) == len(stages(render_dockerfile(make_snapshot(FIXTURES / "simple.ipynb")))[1])
    cmd = next(ln for ln in final if ln.startswith("CMD "))
    assert json.loads(cmd[4:]) == [f"/work/{name}"]
    assert ctx.notebook_in_container == f"/work/{name}"
    label = final[-1]
    assert "\\$" in label or "$" not in name  # Docker would expand a bare $ in LABEL
    assert (ctx.path / "work" / name).is_file()
    assert ctx.image_tag.startswith("jupyter-containerize/")
    assert re.fullmatch(r"jupyter-containerize/[a-z0-9]+(-[a-z0-9]+)*:[0-9a-f]{16}", ctx.image_tag)


def test_slug() -> None:
    assert slug("My Notebook (v2)") == "my-notebook-v2"
    assert slug("___") == "notebook"


# -- pip configuration, secrets, certificates -----------------------------------------------


def secret_snapshot(nb: Path) -> EnvironmentSnapshot:
    return make_snapshot(
        nb,
        pip_config=PipConfig(
            index_url="https://pypi.corp.example/simple",
            extra_index_urls=("https://public.example/simple", "https://private.example/simple"),
            trusted_hosts=("pypi.corp.example",),
            cert_file=ROOT / "pyproject.toml",  # any readable file stands in for a CA bundle
            secret_build_args=("JC_INDEX_URL", "JC_EXTRA_INDEX_URL_1"),
            secret_values={
                "JC_INDEX_URL": f"https://user:{SECRET}@pypi.corp.example/simple",
                "JC_EXTRA_INDEX_URL_1": f"https://tok:{SECRET}@private.example/simple",
            },
        ),
    )


def test_secrets_stay_out_of_the_context_and_the_final_stage(project: Path) -> None:
    ctx = render(secret_snapshot(project / "train.ipynb"), project.parent / "ctx")
    assert ctx.build_args == {
        "JC_INDEX_URL": f"https://user:{SECRET}@pypi.corp.example/simple",
        "JC_EXTRA_INDEX_URL_1": f"https://tok:{SECRET}@private.example/simple",
    }
    for file in ctx.path.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    assert SECRET not in repr(ctx)
    builder, final = stages(ctx.dockerfile)
    assert "ARG JC_INDEX_URL" in builder and "ARG JC_EXTRA_INDEX_URL_1" in builder
    final_text = "\n".join(final)
    for word in ("ARG", "JC_INDEX_URL", "UV_INDEX_URL", "SSL_CERT_FILE", "PIP_CERT", "certs/", "trusted"):
        assert word not in final_text
    uv_run = next(ln for ln in builder if "--no-deps" in ln)
    assert 'UV_INDEX_URL="${JC_INDEX_URL}"' in uv_run
    assert 'UV_EXTRA_INDEX_URL="https://public.example/simple ${JC_EXTRA_INDEX_URL_1}"' in uv_run
    assert any('UV_INSECURE_HOST="pypi.corp.example"' in ln for ln in builder)
    assert (ctx.path / "certs" / "ca.crt").read_bytes() == (ROOT / "pyproject.toml").read_bytes()
    assert any("SSL_CERT_FILE=/opt/jc-build/ca.crt" in ln for ln in builder)
    pip_run = next(i for i, ln in enumerate(builder) if "python3 -m pip install" in ln)
    assert index_of(builder, "COPY certs/ca.crt") < pip_run
    assert 'PIP_INDEX_URL="${JC_INDEX_URL}"' in builder[pip_run]


def test_a_secret_that_leaks_into_a_file_is_refused(project: Path) -> None:
    (project / "helpers.py").write_text(f"TOKEN = '{SECRET}'\n")
    snap = replace(secret_snapshot(project / "train.ipynb"), local_modules=("helpers.py",))
    with pytest.raises(ContextError, match="credential"):
        render(snap, project.parent / "ctx")
    assert not (project.parent / "ctx").exists()


def test_public_index_urls_are_env_in_the_builder(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", pip_config=PipConfig(index_url="https://mirror.example/simple"))
    builder, final = stages(render_dockerfile(snap))
    assert any('UV_INDEX_URL="https://mirror.example/simple"' in ln for ln in builder)
    assert "mirror.example" not in "\n".join(final)


def test_unsafe_index_url_is_refused(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", pip_config=PipConfig(index_url='https://x.example/"$(id)"'))
    with pytest.raises(OptionError, match="index URL"):
        render_dockerfile(snap)


# -- GPU ------------------------------------------------------------------------------------


def test_gpu_wheels_keep_slim_base_and_add_the_torch_index(project: Path) -> None:
    gpu = GpuInfo(frameworks=("torch",), cuda_version="12.1", extra_index_urls=("https://download.pytorch.org/whl/cu121",))
    snap = make_snapshot(project / "train.ipynb", gpu=gpu,
                         distributions=(PinnedDistribution("torch", "2.4.0+cu121", "torch==2.4.0+cu121"),))
    builder, final = stages(render_dockerfile(snap))
    assert final[0] == "FROM python:3.11.7-slim-bookworm"
    assert any("https://download.pytorch.org/whl/cu121" in ln and "UV_EXTRA_INDEX_URL" in ln for ln in builder)
    env = final[index_of(final, "ENV ")]
    assert "NVIDIA_VISIBLE_DEVICES=all" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env
    assert "JC_CUDA_VERSION=12.1" in env
    assert "org.jupyter-containerize.cuda=12.1" in final[-1]


def test_a_carried_framework_build_needs_no_framework_index(project: Path, tmp_path: Path) -> None:
    """torch 2.13.0+cpu found as the kernel's wheel installs from the context: PyTorch's index is neither
    written nor (by the pre-build check) reached; numpy still comes from the kernel's index."""
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"")
    gpu = GpuInfo(frameworks=(), extra_index_urls=("https://download.pytorch.org/whl/cpu",))
    torch = PinnedDistribution("torch", "2.13.0+cpu", f"torch @ file:///wheels/{wheel.name}", source="local-wheel",
                               wheel_path=wheel)
    snap = make_snapshot(project / "train.ipynb", gpu=gpu,
                         distributions=(PinnedDistribution("numpy", "2.1.0", "numpy==2.1.0"), torch))
    assert "download.pytorch.org" not in render_dockerfile(snap)


def test_system_cuda_base_uses_a_managed_python(project: Path) -> None:
    base = "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"
    gpu = GpuInfo(frameworks=("cupy",), cuda_version="12.1", needs_system_cuda=True, cuda_base_image=base)
    builder, final = stages(render_dockerfile(make_snapshot(project / "train.ipynb", gpu=gpu)))
    assert builder[0] == "FROM python:3.11.7-slim-bookworm AS builder"
    assert final[0] == f"FROM {base}"
    assert "RUN uv python install 3.11.7" in builder
    assert any("UV_PYTHON_PREFERENCE=only-managed" in ln for ln in builder)
    assert "COPY --from=builder /opt/python /opt/python" in final


# -- context contents -----------------------------------------------------------------------


def test_context_files(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", local_modules=("helpers.py", "mypkg"))
    ctx = render(snap, project.parent / "ctx")
    assert set(ctx.files) == {
        ".dockerignore", "Dockerfile", "requirements.lock", "kernel.lock", "runner.lock", "jc/runner.py",
        "jc/parameters_cell.py", "jc/papermill_record.py",
        "jc/shim/jupyter_containerize/__init__.py", "jc/shim/jupyter_containerize/metrics.py",
        "jc/shim/jupyter_containerize/injob.py", "jc/shim/jupyter_containerize/injob_pip.py",
        "jc/share/kernels/python3/kernel.json",
        "work/train.ipynb", "work/helpers.py", "work/mypkg/__init__.py",
    }
    assert sorted(str(p.relative_to(ctx.path)) for p in ctx.path.rglob("*") if p.is_file()) == sorted(ctx.files)
    assert any("weights.pt" in w and "data or model" in w for w in ctx.warnings)
    src = ROOT / "jupyter_containerize"
    assert (ctx.path / "jc/runner.py").read_bytes() == (src / "runner" / "main.py").read_bytes()
    assert (ctx.path / "jc/shim/jupyter_containerize/metrics.py").read_bytes() == (src / "metrics.py").read_bytes()
    assert (ctx.path / "jc/shim/jupyter_containerize/injob.py").read_bytes() == (src / "injob.py").read_bytes()
    kernel = json.loads((ctx.path / "jc/share/kernels/python3/kernel.json").read_text())
    assert kernel["argv"][:3] == ["/opt/venv/bin/python", "-m", "ipykernel_launcher"]
    assert kernel["env"] == {"PYTHONPATH": "/opt/jc/shim"}
    assert (ctx.path / "Dockerfile").read_text() == ctx.dockerfile
    assert ctx.base_image == "python:3.11.7-slim-bookworm"
    assert ctx.image_tag == f"jupyter-containerize/train:{ctx.content_hash[:16]}"


def test_lock_files(project: Path) -> None:
    ctx = render(make_snapshot(project / "train.ipynb"), project.parent / "ctx")
    lock = (ctx.path / "requirements.lock").read_text().splitlines()
    body = [ln for ln in lock if not ln.startswith("#")]
    assert body == ["joblib==1.4.0", "numpy==1.26.4", "scikit-learn==1.4.2"]
    header = "\n".join(ln for ln in lock if ln.startswith("#"))
    assert "python 3.11.7" in header and "train.ipynb" not in header
    # Another notebook with the same environment writes the same lock: its install step is a cache hit.
    (project / "other.ipynb").write_bytes((project / "train.ipynb").read_bytes())
    other = render(make_snapshot(project / "other.ipynb"), project.parent / "ctx-other")
    assert (other.path / "requirements.lock").read_bytes() == (ctx.path / "requirements.lock").read_bytes()
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", header)
    assert (ctx.path / "kernel.lock").read_text().splitlines()[-1] == "ipykernel==6.29.5"
    assert "-r /opt/jc-build/kernel.lock -c /opt/jc-build/requirements.lock" in ctx.dockerfile
    assert (ctx.path / "runner.lock").read_text().splitlines()[1:] == ["nbclient==0.11.0", "nbformat==5.11.1"]


def test_no_kernel_lock_when_the_user_pins_ipykernel(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", distributions=(PinnedDistribution("ipykernel", "6.29.5", "ipykernel==6.29.5"),))
    ctx = render(snap, project.parent / "ctx")
    assert "kernel.lock" not in ctx.files and "kernel.lock" not in ctx.dockerfile


def test_local_wheels_and_vcs_pins(project: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "mylib-0.1-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    snap = make_snapshot(project / "train.ipynb", distributions=(
        PinnedDistribution("mylib", "0.1", "mylib @ file:///wheels/mylib-0.1-py3-none-any.whl", "local-wheel", wheel),
        PinnedDistribution("tool", "1.0", "tool @ git+https://github.com/o/tool@" + "a" * 40, "vcs"),
    ))
    ctx = render(snap, project.parent / "ctx")
    assert (ctx.path / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    builder, final = stages(ctx.dockerfile)
    assert index_of(builder, "COPY wheels/ /wheels/") < index_of(builder, "RUN uv venv /opt/venv")
    assert any("install -y --no-install-recommends git" in ln for ln in builder)
    assert "git" not in " ".join(ln for ln in final if ln.startswith("RUN"))


def test_missing_wheel_fails_and_writes_nothing(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", distributions=(
        PinnedDistribution("mylib", "0.1", "mylib @ file:///wheels/x.whl", "local-wheel", project / "nope.whl"),))
    with pytest.raises(ContextError, match="mylib"):
        render(snap, project.parent / "ctx")
    assert sorted(p.name for p in project.parent.iterdir()) == ["project"]


def test_include_and_dockerignore(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb")
    ctx = render(snap, project.parent / "ctx", spec_for(snap.notebook, uid=1234, include=("data.csv",)))
    assert (ctx.path / "work" / "data.csv").read_text() == "a,b\n1,2\n"
    ignore = (ctx.path / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1].startswith("!")
    for pattern in ("**/.git", "**/.env", "**/*.csv", "**/*.pt", "**/*.safetensors", "**/.ipynb_checkpoints",
                    "**/__pycache__", "!certs/ca.crt", "!work", "!Dockerfile", "!requirements.lock"):
        assert pattern in ignore
    assert ignore[-1] == "!work/data.csv"  # last match wins: the explicit include beats *.csv
    assert "**/*.crt" not in ignore


def test_include_outside_the_notebook_folder_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    snap = make_snapshot(project / "train.ipynb")
    with pytest.raises(OptionError, match="outside"):
        render(snap, tmp_path / "ctx", spec_for(snap.notebook, uid=1234, include=(str(outside),)))
    with pytest.raises(OptionError, match="outside"):
        render(snap, tmp_path / "ctx", spec_for(snap.notebook, uid=1234, include=("../secret.txt",)))
    assert not (tmp_path / "ctx").exists()


def test_unreadable_notebook(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(NotebookError):
        render(make_snapshot(bad), tmp_path / "ctx")
    with pytest.raises(NotebookError):
        render(make_snapshot(tmp_path / "missing.ipynb"), tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


# -- determinism and atomic writes ----------------------------------------------------------


def _tree(path: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else b"", stat.S_IMODE(p.stat().st_mode))
        for p in sorted(path.rglob("*"))
    }


def test_two_renders_are_byte_identical(project: Path) -> None:
    snap = secret_snapshot(project / "train.ipynb")
    snap = replace(snap, local_modules=("helpers.py", "mypkg"))
    a = render(snap, project.parent / "a")
    b = render(snap, project.parent / "b")
    assert a.content_hash == b.content_hash and a.image_tag == b.image_tag
    assert _tree(a.path) == _tree(b.path)
    modes = {mode for _, mode in _tree(a.path).values()}
    assert modes == {0o644, 0o755}
    assert content_hash(a.base_image, {f: (a.path / f).read_bytes() for f in a.files}) == a.content_hash


def test_hash_ignores_outputs_but_not_code_or_base(project: Path) -> None:
    nb_path = project / "train.ipynb"
    first = render(make_snapshot(nb_path), project.parent / "ctx")
    nb = json.loads(nb_path.read_text())
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran locally\n"}]
    nb["cells"][1]["execution_count"] = 7
    nb_path.write_text(json.dumps(nb))  # also a different JSON layout
    assert render(make_snapshot(nb_path), project.parent / "ctx").content_hash == first.content_hash
    nb["cells"][1]["source"] = "alpha = 0.2\n"
    nb_path.write_text(json.dumps(nb))
    edited = render(make_snapshot(nb_path), project.parent / "ctx")
    assert edited.content_hash != first.content_hash
    other_base = render(make_snapshot(nb_path), project.parent / "ctx",
                        spec_for(nb_path, uid=1234, base_image="python:3.11.7-slim-bookworm@sha256:" + "b" * 64))
    assert other_base.content_hash != edited.content_hash


def test_rerender_replaces_a_previous_context_but_not_foreign_folders(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", local_modules=("helpers.py",))
    out = project.parent / "ctx"
    render(snap, out)
    (out / "stale.txt").write_text("old")
    render(replace(snap, local_modules=()), out)
    assert not (out / "stale.txt").exists() and not (out / "work" / "helpers.py").exists()
    foreign = project.parent / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ContextError, match="not empty"):
        render(snap, foreign)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    empty = project.parent / "empty"
    empty.mkdir()
    assert render(snap, empty).path == empty
    assert sorted(p.name for p in project.parent.iterdir()) == ["ctx", "empty", "foreign", "project"]


def test_errors_share_the_root() -> None:
    assert issubclass(ContextError, ContainerizeError)


# -- BuildKit layout ---------------------------------------------------------------------------


def test_buildkit_layout_installs_in_the_final_stage_with_everything_else_mounted(project: Path) -> None:
    snap = make_snapshot(project / "train.ipynb", modules=("sklearn.ensemble", "numpy", "bad name; rm -rf /"))
    ctx = render_context(snap, spec_for(snap.notebook, uid=1234), project.parent / "ctx", runner_pins=RUNNER_PINS,
                         buildkit=True)
    text = ctx.dockerfile
    assert ctx.buildkit and "Needs BuildKit" in text
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages == ["FROM python:3.11.7-slim-bookworm AS uv", "FROM python:3.11.7-slim-bookworm"]
    final = text.split("FROM python:3.11.7-slim-bookworm\n", 1)[1]
    assert "COPY --from" not in final and "UV_NO_CACHE" not in text  # nothing copied out of a builder
    runs = final.split("\nRUN ")
    runner = next(i for i, part in enumerate(runs) if "-r /tmp/jc-build/runner.lock" in part)
    install = next(i for i, part in enumerate(runs) if "-r /tmp/jc-build/requirements.lock" in part)
    assert runner < install  # the runner's venv, the same for every notebook, is cached across environments
    for mount in ("type=cache,id=jupyter-containerize-uv", "from=uv,source=/opt/jc-build/uv"):
        assert mount in runs[runner] and mount in runs[install]
    assert "source=requirements.lock" in runs[install] and "requirements.lock" not in runs[runner]
    # uv, its cache and the locks are mounts under /tmp: nothing of them is written to a layer
    assert "COPY requirements.lock" not in text and "COPY certs" not in text
    assert text.index("-r /tmp/jc-build/requirements.lock") < text.index("/tmp/jc-build/modules.txt") < text.index(
        "COPY --chown=1234:1234 work/")
    assert text.rstrip().splitlines()[-1].lstrip().startswith("org.jupyter-containerize.python=")
    modules = (ctx.path / "build" / "modules.txt").read_text().split()
    assert modules == ["sklearn.ensemble", "numpy", ":kernel"]  # unsafe name dropped
    assert (ctx.path / "build" / "precompile.py").is_file() and "!build" in (ctx.path / ".dockerignore").read_text()
    classic = render(snap, project.parent / "classic")
    assert classic.content_hash != ctx.content_hash and not (classic.path / "build").exists()


def test_buildkit_keeps_the_builder_stage_where_it_cannot_do_without(project: Path) -> None:
    """Credentials (BuildKit secrets need a client session), git and uv-managed Pythons keep the classic layout."""
    vcs = PinnedDistribution("tool", "1.0", "tool @ git+https://example.org/tool@abc123", source="vcs")
    for snap in (secret_snapshot(project / "train.ipynb"),
                 make_snapshot(project / "train.ipynb", distributions=(vcs,))):
        ctx = render_context(snap, spec_for(snap.notebook, uid=1234), project.parent / f"ctx-{snap.pip_config.index_url}",
                             runner_pins=RUNNER_PINS, buildkit=True)
        assert not ctx.buildkit and "FROM python:3.11.7-slim-bookworm AS builder" in ctx.dockerfile
