"""`jupyter containerize export`: the folder builds with plain `docker build` (no jupyter-containerize
involved), train.py takes the parameters as flags, and job.sbatch runs on a real Slurm cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import yaml

from jupyter_containerize.backends.kubernetes import validate_manifest
from tests.support.engine import start_or_fail

pytestmark = pytest.mark.engine
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "notebooks"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient, base_image: str) -> Path:
    """An export of the parameters fixture, moved away from where it was written (as a commit would)."""
    work = tmp_path_factory.mktemp("export")
    shutil.copy(FIXTURES / "parameters.ipynb", work / "parameters.ipynb")
    (work / "secrets.key").write_text("do not ship\n")
    done = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", "export", str(work / "parameters.ipynb"),
                           str(work / "out")], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    moved = tmp_path_factory.mktemp("checkout") / "job"
    shutil.move(str(work / "out"), moved)
    return moved


@pytest.fixture(scope="module")
def built(exported: Path) -> str:
    """`docker build` by the docker CLI, in a process that cannot import jupyter_containerize."""
    tag = yaml.safe_load((exported / "compose.yaml").read_text())["services"]["job"]["image"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    started = time.monotonic()
    done = subprocess.run(["docker", "build", "-q", "-t", tag, "."], check=False, cwd=exported, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"docker build of the export: {time.monotonic() - started:.1f} s")
    return str(tag)


def test_folder_contents(exported: Path) -> None:
    for name in ("Dockerfile", "requirements.lock", ".dockerignore", "work/parameters.ipynb", "work/train.py",
                 "compose.yaml", "job.sbatch", "k8s-job.yaml", "README.md"):
        assert (exported / name).is_file(), name
    assert not list(exported.rglob("secrets.key"))
    readme = (exported / "README.md").read_text()
    tag = yaml.safe_load((exported / "compose.yaml").read_text())["services"]["job"]["image"]
    assert f"docker build -t {tag} ." in readme and "sbatch job.sbatch" in readme
    assert "kubectl apply -f k8s-job.yaml" in readme
    validate_manifest(yaml.safe_load((exported / "k8s-job.yaml").read_text()))


def test_train_py_flags_in_the_built_image(built: str, engine: docker.DockerClient) -> None:
    out = engine.containers.run(built, ["/work/train.py", "--alpha", "0.5", "--name", "lr-sweep", "--epochs", "3"],
                                entrypoint="/opt/venv/bin/python", remove=True, read_only=True,
                                tmpfs={"/tmp": ""}, cap_drop=["ALL"])
    assert out.decode().strip().endswith("alpha=0.5 name='lr-sweep' epochs=3")
    default = engine.containers.run(built, ["/work/train.py"], entrypoint="/opt/venv/bin/python", remove=True)
    assert default.decode().strip().endswith("alpha=0.1 name='default' epochs=1")


def test_the_image_runs_the_notebook(built: str, engine: docker.DockerClient) -> None:
    out = engine.containers.run(built, remove=True, read_only=True, tmpfs={"/tmp": ""}, cap_drop=["ALL"],
                                environment={"JC_PARAMETERS": '{"alpha": 0.7}'}).decode()
    assert "alpha=0.7 name='default' epochs=1" in out and '"status": "succeeded"' in out


def test_job_sbatch_runs_on_slurm(built: str, exported: Path) -> None:
    start_or_fail("start-slurm.sh", "Slurm")
    done = subprocess.run(["sbatch", "--wait", "--output=slurm-%j.out", "job.sbatch"], check=False, cwd=exported,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (log,) = exported.glob("slurm-*.out")
    text = log.read_text()
    assert "alpha=0.1 name='default' epochs=1" in text and '"status": "succeeded"' in text
    assert (exported / "output").is_dir()
