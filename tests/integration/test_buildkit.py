"""BuildKit builds through the engine API: what the image holds, what it leaves out, how it fails (issue 3)."""

from __future__ import annotations

import dataclasses
import sys
import uuid
from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.backends.engine import engine_has_buildkit
from jupyter_containerize.errors import BuildError
from jupyter_containerize.events import BuildFinished, BuildStep, Event, PackagesProgress
from jupyter_containerize.jobs.pipeline import prepare
from tests.support.specs import build_spec

PY = f"{sys.version_info.major}.{sys.version_info.minor}"  # the kernel is this interpreter

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


def _sh(engine: docker.DockerClient, image: str, script: str) -> str:
    out = engine.containers.run(image, ["-c", script], entrypoint="sh", remove=True, user="0")
    return str(out.decode())


def test_auto_builds_with_buildkit_and_the_image_holds_only_the_venvs(quickstart: Path, engine: docker.DockerClient) -> None:
    assert engine_has_buildkit()  # Debian's 20.10 engine: API 1.41
    prepared = prepare(build_spec(quickstart))
    try:
        assert prepared.context.buildkit and "--mount=type=cache" in prepared.context.dockerfile
        seen: list[Event] = []
        ref = build_image(prepared.context, seen.append)
    finally:
        prepared.cleanup()
    finished = [e for e in seen if isinstance(e, BuildFinished)]
    assert finished and (finished[0].steps_run == 0 or any(isinstance(e, BuildStep) for e in seen))
    report = _sh(engine, ref.tag, (
        "command -v uv || echo no-uv; "
        "find / -xdev \\( -name 'uv' -o -name 'requirements.lock' -o -name 'runner.lock' -o -name 'ca.crt' \\) -not -path '/proc/*' 2>/dev/null "
        "| grep -v '^/tmp/jc-build/uv$' || true; "
        "echo cache=$(ls -A /tmp/jc-build/cache | wc -l) root-cache=$(ls -A /root/.cache 2>/dev/null | wc -l); "
        f"ls /opt/venv/lib/python{PY}/site-packages/sklearn/ensemble/__pycache__ | grep -c pyc; "
        f"ls /opt/venv/lib/python{PY}/site-packages/ipykernel/__pycache__ | grep -c kernelapp; "
        f"ls /opt/jc-runner/lib/python{PY}/site-packages/nbclient/__pycache__ | grep -c pyc"))
    lines = report.split("\n")
    assert lines[0] == "no-uv"  # the installer was a mount, never a layer
    assert lines[1] == "cache=0 root-cache=0", report  # neither uv's nor pip's cache is in the image
    pyc_ensemble, pyc_kernelapp, pyc_nbclient = (int(x) for x in lines[2:5])
    assert pyc_ensemble > 5 and pyc_kernelapp == 1 and pyc_nbclient > 3  # bytecode for what jobs import
    unused = _sh(engine, ref.tag, f"ls /opt/venv/lib/python{PY}/site-packages/sklearn/gaussian_process/__pycache__ "
                                  "2>/dev/null | wc -l")
    assert int(unused.strip()) == 0  # a module nobody imports is not compiled


def test_a_failing_install_names_the_step_and_shows_the_installers_lines(quickstart: Path, engine: docker.DockerClient) -> None:
    prepared = prepare(build_spec(quickstart))
    try:
        context = prepared.context
        (context.path / "requirements.lock").write_text("jc-no-such-distribution-anywhere==1.0.0\n")
        tag = f"jc-test/buildkit-fail:{uuid.uuid4().hex[:12]}"
        seen: list[Event] = []
        with pytest.raises(BuildError) as info:
            build_image(dataclasses.replace(context, image_tag=tag), seen.append)
    finally:
        prepared.cleanup()
    error = info.value
    assert "requirements.lock" in (error.step or "") and "exited with code" in error.message
    assert any("jc-no-such-distribution-anywhere" in line for line in error.log_tail), error.log_tail
    assert not engine.images.list(filters={"reference": tag})  # nothing half-tagged
    assert any(isinstance(e, BuildStep) for e in seen) and not any(
        isinstance(e, PackagesProgress) and e.phase == "installed" and e.count > 0 for e in seen)
