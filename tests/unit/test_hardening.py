"""One hardening rule: docker run, Compose, Kubernetes and Slurm's docker run line derive from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.container import container_options, hardening_options
from jupyter_containerize.backends.kubernetes import job_manifest
from jupyter_containerize.backends.slurm_script import docker_run_args
from jupyter_containerize.export import compose_yaml
from jupyter_containerize.jobspec import Hardening, JobSpec

DEFAULT = Hardening()
LOOSE = Hardening(cap_drop_all=False, no_new_privileges=False, read_only_root=False)


@pytest.mark.parametrize("hardening", [DEFAULT, LOOSE], ids=["default", "loosened"])
def test_every_place_a_job_runs_follows_the_one_rule(tmp_path: Path, hardening: Hardening) -> None:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb", hardening=hardening)
    request = RunRequest(job_id="a1b2c3", image=ImageRef(tag="jc/nb:1", image_id="sha256:1"), spec=spec,
                         output_dir=tmp_path / "out")
    rule = hardening_options(hardening)
    assert rule == ({"read_only": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"]}
                    if hardening == DEFAULT else {"read_only": False, "cap_drop": None, "security_opt": None})
    docker = container_options(request)
    assert {k: docker.get(k) for k in rule} == rule
    compose = yaml.safe_load(compose_yaml(spec, "jc/nb:1"))["services"]["job"]
    assert {k: compose.get(k) for k in rule} == rule
    context = job_manifest(request, uid=1000)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["readOnlyRootFilesystem"] is rule["read_only"]
    assert context["allowPrivilegeEscalation"] is (rule["security_opt"] is None)
    assert context["capabilities"]["drop"] == (rule["cap_drop"] or [])
    slurm = " ".join(docker_run_args(request)[0])
    assert ("--read-only" in slurm) is rule["read_only"]
    assert ("--cap-drop ALL" in slurm or "--cap-drop=ALL" in slurm) is bool(rule["cap_drop"])
    assert ("no-new-privileges" in slurm) is bool(rule["security_opt"])
