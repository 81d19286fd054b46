"""Shared fixtures: a real engine (never faked), a temp job store, the repo's paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that stop the shared dockerd run only when asked for, or in CI where nothing else runs."""
    wanted = ("daemon_restart" in (config.option.markexpr or "") or os.environ.get("JC_DAEMON_RESTART") == "1"
              or os.environ.get("CI") == "true")
    if wanted:
        return
    keep = [i for i in items if i.get_closest_marker("daemon_restart") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def start_or_fail(script: str, what: str) -> None:
    """Run ``scripts/<script>``, which starts ``what``; failing to start it fails the test, never a skip."""
    done = subprocess.run(["bash", str(REPO / "scripts" / script)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"scripts/{script} could not start {what}:\n{done.stdout}{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def engine() -> Iterator[object]:
    """A client for the real Docker engine. No engine is a failure, never a skip:
    the README's test command starts one (scripts/ensure-engine.sh)."""
    from jupyter_containerize.backends.engine import connect
    from jupyter_containerize.errors import EngineError

    try:
        client = connect(timeout=30)
    except EngineError as e:
        pytest.fail(f"{e} (run the tests with scripts/test.sh, which starts one)", pytrace=False)
    started, tags_before = time.time() - 5, _image_tags(client)
    yield client
    _remove_images_built_since(client, started, tags_before)
    client.close()


TEST_IMAGE_PREFIXES = ("jupyter-containerize/", "jc-test/", "jc-export/", "127.0.0.1:", "localhost:")
KEPT_IMAGES = ("jupyter-containerize/debian-minbase:",)  # the offline base, slow to rebuild


def _image_tags(client: object) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}  # type: ignore[attr-defined]


def _remove_images_built_since(client: object, started: float, tags_before: set[str]) -> None:
    """Untag what this session tagged and remove the untagged images it built (tens of GB over a few
    runs otherwise); tags that were there before, and the base images, stay."""
    import docker.errors

    for tag in sorted(_image_tags(client) - tags_before):
        if tag.startswith(TEST_IMAGE_PREFIXES) and not tag.startswith(KEPT_IMAGES):
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(tag)  # type: ignore[attr-defined]
    for image in client.images.list(filters={"dangling": True}):  # type: ignore[attr-defined]
        created = datetime.fromisoformat(image.attrs["Created"][:19]).replace(tzinfo=timezone.utc).timestamp()
        if created >= started:  # a classic build's untagged stages
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(image.id)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def base_image(engine: object) -> str:
    """The python:X.Y.Z-slim-bookworm base (built offline when it cannot be pulled)."""
    from jupyter_containerize.backends.baseimage import build_base_image

    return build_base_image(engine)  # type: ignore[arg-type]


@pytest.fixture()
def job_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private job store for one test (also seen by subprocesses through JC_STORE)."""
    path = tmp_path / "jobs.sqlite"
    monkeypatch.setenv("JC_STORE", str(path))
    return path


@pytest.fixture()
def quickstart(tmp_path: Path) -> Path:
    """A private copy of the quickstart notebook (outputs land beside it)."""
    dest = tmp_path / "nb"
    dest.mkdir()
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", dest / "quickstart.ipynb")
    return dest / "quickstart.ipynb"


def labelled_containers(client: object, job_id: str) -> list[object]:
    from jupyter_containerize.backends.engine import JOB_LABEL

    return list(client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}))  # type: ignore[attr-defined]
