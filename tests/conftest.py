"""Shared fixtures: a real engine (never faked), a temp job store, a copy of the quickstart (helpers: tests.support)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support import NOTEBOOKS
from tests.support.engine import image_tags, remove_images_built_since
from tests.support.runner import kernel_share


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


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """A client for the real Docker engine. No engine is a failure, never a skip:
    the README's test command starts one (scripts/ensure-engine.sh)."""
    from jupyter_containerize.backends.engine import connect
    from jupyter_containerize.errors import EngineError

    try:
        client = connect(timeout=30)
    except EngineError as e:
        pytest.fail(f"{e} (run the tests with scripts/test.sh, which starts one)", pytrace=False)
    started, tags_before = time.time() - 5, image_tags(client)
    yield client
    remove_images_built_since(client, started, tags_before)
    client.close()


@pytest.fixture(scope="session")
def base_image(engine: docker.DockerClient) -> str:
    """The python:X.Y.Z-slim-bookworm base (built offline when it cannot be pulled)."""
    from jupyter_containerize.backends.baseimage import build_base_image

    return build_base_image(engine)


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


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec ``python3`` like the image's: this interpreter plus the metrics shim."""
    return kernel_share(tmp_path_factory.mktemp("jc-share"))


@pytest.fixture()
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An IPython shell with the extension loaded and a job store of the test's own."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("JC_STORE", str(tmp_path / "jobs.sqlite"))
    monkeypatch.delenv("JC_JOB_ID", raising=False)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "jupyter_containerize")
    yield sh
    sh.run_line_magic("unload_ext", "jupyter_containerize")
