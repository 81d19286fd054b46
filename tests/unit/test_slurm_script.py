"""The Slurm batch script: directives, quoting (nothing a user gives may execute), docker run flags."""

from __future__ import annotations

import itertools
import shlex
import subprocess
from pathlib import Path

import pytest

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.slurm_script import batch_script, sbatch_directives
from jupyter_containerize.errors import BackendError, OptionError
from jupyter_containerize.validators import size_mib
from jupyter_containerize.jobspec import GpuRequest, JobSpec, Resources, VolumeMount

EVIL = "x'\"; $(touch /tmp/PWNED) `touch /tmp/PWNED2` \n echo hi; \\"


def request(tmp_path: Path, **spec_changes: object) -> RunRequest:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb").with_changes(**spec_changes)
    image = ImageRef(tag="jc/nb:abc", image_id="sha256:1", digest="127.0.0.1:5000/jc/nb@sha256:" + "a" * 64)
    return RunRequest(job_id="job1", image=image, spec=spec, output_dir=tmp_path / "out")


def directives(script: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_directives_from_spec(tmp_path: Path) -> None:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb", gpus=GpuRequest(count=2), partition="gpu-a100",
                   resources=Resources(cpus=3.5, memory="4g", time_limit="01:30:00"))
    opts = sbatch_directives(spec, "jc-job1")
    assert "--gres=gpu:2" in opts
    assert "--cpus-per-task=4" in opts
    assert "--mem=4096M" in opts
    assert "--time=91" in opts  # minutes: --timeout 01:30:00 plus the runner's minute to save the notebook
    assert "--partition=gpu-a100" in opts


@pytest.mark.parametrize("size, mib", [("512m", 512), ("4g", 4096), ("1.5g", 1536), ("1048576", 1), ("100k", 1),
                                       ("1T", 1048576)])
def test_memory_units(size: str, mib: int) -> None:
    assert size_mib(size) == mib


@pytest.mark.parametrize("changes", [
    {"partition": "debug\n#SBATCH --uid=0"}, {"partition": "a b"}, {"partition": "$(id)"},
    {"resources": Resources(time_limit="1:00; rm -rf /")}, {"resources": Resources(memory="4g\n#SBATCH -x")},
    {"gpus": GpuRequest(count=-1)}, {"gpus": GpuRequest(device_ids=("0",))},
])
def test_bad_values_are_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    with pytest.raises((BackendError, OptionError)):
        batch_script(request(tmp_path, **changes), "jc-job1")


def test_hostile_values_stay_literal(tmp_path: Path) -> None:
    """Env values, parameters and mount paths with quotes, newlines, $(…) and backticks never execute."""
    src = tmp_path / "data, \"odd\" $(x)"
    src.mkdir()
    req = request(tmp_path, env={"EVIL": EVIL}, parameters={"name": EVIL},
                  volumes=(VolumeMount(source=str(src), target="/data", read_only=True),))
    script = batch_script(req, "jc-job1", exit_file=str(tmp_path / "exit code $(x)"), docker="echo")
    assert subprocess.run(["sh", "-n"], check=False, input=script, text=True).returncode == 0
    # Run the script with `echo` as docker: it prints the argv it would have passed, and creates nothing.
    done = subprocess.run(["sh", "-c", script, "sh"], check=False, capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert not Path("/tmp/PWNED").exists() and not Path("/tmp/PWNED2").exists()
    assert f"EVIL={EVIL}" in done.stdout
    assert (tmp_path / "exit code $(x)").read_text() == "0\n"


def test_same_hardening_as_docker_backend(tmp_path: Path) -> None:
    req = request(tmp_path, resources=Resources(cpus=2, memory="1g", shm_size="2g"), network="none")
    script = batch_script(req, "jc-job1")
    run_line = next(line for line in script.splitlines() if line.startswith("set -- run"))
    argv = shlex.split(run_line)[2:]
    for flag in ("--read-only", "--init", "--rm"):
        assert flag in argv
    pairs = {(a, b) for a, b in itertools.pairwise(argv)}
    assert ("--cap-drop", "ALL") in pairs
    assert ("--security-opt", "no-new-privileges:true") in pairs
    assert ("--shm-size", "2g") in pairs and ("--memory", "1g") in pairs and ("--cpus", "2") in pairs
    assert ("--network", "none") in pairs
    assert ("--label", "org.jupyter-containerize.job=job1") in pairs
    assert ("--env", "JC_JOB_ID=job1") in pairs
    assert ("--mount", f"type=bind,source={tmp_path / 'out'},target=/output") in pairs
    assert ("--mount", "type=volume,target=/work") in pairs  # the writable working folder, as with docker
    image_line = next(line for line in script.splitlines() if line.startswith('set -- "$@"'))
    assert shlex.split(image_line)[-1] == "127.0.0.1:5000/jc/nb@sha256:" + "a" * 64  # by digest


def test_gpus_follow_slurm_allocation(tmp_path: Path) -> None:
    script = batch_script(request(tmp_path, gpus=GpuRequest(count=1)), "jc-job1", docker="echo")
    assert "#SBATCH --gres=gpu:1" in script
    done = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "2,3"})
    assert '--gpus "device=2,3"' in done.stdout
