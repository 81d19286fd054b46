"""``jupyter containerize export NOTEBOOK DIR``: a self-contained, committable folder.

The folder is the rendered build context (Dockerfile, locks, ``.dockerignore``, the
notebook under ``work/``, the runner under ``jc/``) plus ``work/train.py`` (the notebook
as a script with argparse flags), ``compose.yaml``, ``job.sbatch``, ``k8s-job.yaml`` and
a README with the exact commands. ``docker build`` of the folder needs nothing of
jupyter-containerize: every file the Dockerfile copies is in it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .backends.base import ImageRef, RunRequest, job_environment
from .backends.container import hardening_options
from .backends.kubernetes import job_manifest
from .backends.slurm_script import batch_script, docker_run_args
from .errors import ContainerizeError
from .jobspec import OUTPUT_DIR_IN_CONTAINER, JobSpec

MARKER = ".jupyter-containerize-export"
EXPORT_JOB_ID = "export"
USER_VENV_PYTHON = "/opt/venv/bin/python"


class ExportError(ContainerizeError):
    """The export folder cannot be written."""


def export(spec: JobSpec, dest: Path) -> Path:
    """Capture the notebook's environment and write the export folder ``dest``; returns its path."""
    from .capture import capture
    from .jobs.pipeline import checked_spec, with_data_mounts
    from .render import render_context

    spec = checked_spec(spec)
    dest = Path(os.path.abspath(dest))
    _check_destination(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.jc-export-", dir=dest.parent if dest.parent.exists()
                                    else None))
    try:
        # local projects' wheels, and the kernel's wheels the index lacks, are copied in now
        snapshot = capture(spec.notebook, spec.build.python, freeze=spec.build.freeze, wheel_dir=staging / "wheels",
                           wheels_from_kernel=spec.build.wheels_from_kernel)
        # Classic unless asked: the folder must build with a plain `docker build` anywhere.
        context = render_context(snapshot, spec, staging / "folder", buildkit=spec.build.builder == "buildkit")
        spec = with_data_mounts(spec, snapshot)[0]  # compose.yaml and job.sbatch mount the data it reads
        write_extras(context, spec, staging / "folder")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging / "folder"), dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _check_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / MARKER).exists())):
        raise ExportError(f"{dest} exists and is not an earlier export", "Choose a new or empty folder.")


def image_name(context: Any) -> str:
    """The tag the README builds: the notebook's slug and the context's content hash."""
    repo = str(context.image_tag).split(":", 1)[0].rsplit("/", 1)[-1]
    return f"jc-export/{repo}:{str(context.content_hash)[:16]}"


def container_uid(dockerfile: str) -> int:
    """The UID the image's final ``USER`` names (1000 when it names none)."""
    users = re.findall(r"^USER\s+(\d+)", dockerfile, flags=re.MULTILINE)
    return int(users[-1]) if users else 1000


def write_extras(context: Any, spec: JobSpec, folder: Path) -> None:
    """Add train.py, compose.yaml, job.sbatch, k8s-job.yaml and README.md to a rendered context."""
    from .notebook_script import notebook_to_script

    tag = image_name(context)
    uid = container_uid(context.dockerfile)
    work = folder / Path(context.notebook_in_container).parent.relative_to("/")  # the notebook's folder
    (work / "train.py").write_text(notebook_to_script(spec.notebook, spec.parameters))
    request = RunRequest(job_id=EXPORT_JOB_ID, image=ImageRef(tag=tag, image_id=""), spec=spec,
                         output_dir=folder / "output")
    (folder / "compose.yaml").write_text(compose_yaml(spec, tag))
    sbatch = batch_script(request, job_name="jc-" + re.sub(r"[^A-Za-z0-9_.-]", "-", spec.notebook.stem)[:60],
                          portable_uid=uid)
    (folder / "job.sbatch").write_text(sbatch)
    (folder / "job.sbatch").chmod(0o755)
    manifest = job_manifest(request, uid=uid)
    manifest["metadata"].pop("namespace", None)
    (folder / "k8s-job.yaml").write_text(
        "# Push the image first and put its registry reference (ideally @sha256:digest) in `image:`.\n"
        + yaml.safe_dump(manifest, sort_keys=False))
    (folder / "README.md").write_text(readme(spec, tag, context.notebook_in_container, request, uid))
    (folder / MARKER).write_text("written by jupyter-containerize export; re-export replaces this folder\n")
    ignore = folder / ".dockerignore"
    ignore.write_text(ignore.read_text() + "output\n")


def compose_yaml(spec: JobSpec, tag: str) -> str:
    """Docker Compose for the job: same hardening, GPU reservation, volumes and shared memory."""
    service: dict[str, Any] = {"build": ".", "image": tag, "init": True, "tmpfs": ["/tmp:rw,nosuid,nodev,exec,size=2g"],
                               **{k: v for k, v in hardening_options(spec.hardening).items() if v is not None}}
    # What every backend gives the runner (the job id names the output notebook, the time limits stop it).
    env = job_environment(RunRequest(job_id=EXPORT_JOB_ID, image=ImageRef(tag=tag, image_id=""), spec=spec,
                                     output_dir=Path("output")))
    service["environment"] = dict(sorted(env.items()))
    volumes = [f"./output:{OUTPUT_DIR_IN_CONTAINER}"]
    named: dict[str, Any] = {}
    for v in spec.volumes:
        volumes.append(v.describe())
        if v.kind == "volume":
            named[v.source] = {}
    service["volumes"] = volumes
    if spec.resources.shm_size:
        service["shm_size"] = spec.resources.shm_size
    if spec.network:
        service["network_mode"] = spec.network
    resources = _compose_resources(spec)
    if resources:
        service["deploy"] = {"resources": resources}
    doc: dict[str, Any] = {"services": {"job": service}}
    if named:
        doc["volumes"] = named
    return "# The notebook as a job: docker compose up --build\n" + str(yaml.safe_dump(doc, sort_keys=False))


def _compose_resources(spec: JobSpec) -> dict[str, Any]:
    """The service's ``deploy.resources``: CPU and memory limits, the GPU reservation (empty: none)."""
    resources: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if spec.resources.cpus:
        limits["cpus"] = str(spec.resources.cpus)
    if spec.resources.memory:
        limits["memory"] = spec.resources.memory
    if limits:
        resources["limits"] = limits
    if spec.gpus.wanted:
        device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
        if spec.gpus.device_ids:
            device["device_ids"] = list(spec.gpus.device_ids)
        else:
            device["count"] = "all" if spec.gpus.count == -1 else spec.gpus.count
        resources["reservations"] = {"devices": [device]}
    return resources


def readme(spec: JobSpec, tag: str, notebook_in_container: str, request: RunRequest, uid: int) -> str:
    """The README: what is in the folder and the exact commands."""
    run_args, tail = docker_run_args(request)
    at = run_args.index("--mount")
    run_args[at + 1] = "type=bind,source=OUTPUT_DIR,target=/output"
    at = run_args.index("--name")
    del run_args[at:at + 2]
    run = shlex.join(["docker", *run_args, *tail]).replace("source=OUTPUT_DIR", 'source="$PWD/output"')
    flags = " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in spec.parameters.items()) or "--help"
    train = shlex.join(["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--entrypoint", USER_VENV_PYTHON,
                        "-v", "OUTPUT", tag, str(PurePosixPath(notebook_in_container).with_name("train.py"))]).replace("OUTPUT", '"$PWD/output:/output"')
    notebook_name = PurePosixPath(notebook_in_container).name
    return f"""# {notebook_name} as a container job

Written by `jupyter containerize export`. Everything `docker build` needs is in this folder;
jupyter-containerize does not have to be installed to build or run it.

| File | What it is |
|---|---|
| `Dockerfile`, `requirements.lock`, `runner.lock`, `.dockerignore` | the image: pinned base, the captured packages, the notebook runner |
| `{PurePosixPath(notebook_in_container).relative_to("/")}` | the notebook (outputs cleared) |
| `work/train.py` | the notebook as a script; the `parameters` cell became command-line flags |
| `jc/` | the runner that executes the notebook and reports progress |
| `compose.yaml` | the job for Docker Compose (GPU reservation, volumes, shared memory) |
| `job.sbatch` | the job for Slurm (`docker run` of the image on the node) |
| `k8s-job.yaml` | the job for Kubernetes (a `batch/v1` Job) |

## Build

```sh
docker build -t {tag} .
```

## Run the notebook (outputs in ./output)

```sh
mkdir -p output && chown {uid}:{uid} output 2>/dev/null || chmod 777 output
{run}
```

## Run the script with other parameters

```sh
{train} {flags}
```

## Docker Compose

```sh
mkdir -p output && docker compose up --build
```

## Slurm

The node's Docker engine must have the image (build it there, or push it and edit `JC_IMAGE` in the script).

```sh
sbatch job.sbatch
```

## Kubernetes

Push the image to a registry the cluster can pull from, put that reference in `k8s-job.yaml`, then:

```sh
docker tag {tag} REGISTRY/REPO:TAG && docker push REGISTRY/REPO:TAG
kubectl apply -f k8s-job.yaml
```
"""
