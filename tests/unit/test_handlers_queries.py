"""Query arguments of the REST API: bad numbers are 400s with one sentence, ``path`` filters in the query,
and the server's shutdown closes the job manager (no engine needed: jobs are written to the store directly)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "jobs.sqlite"
    monkeypatch.setenv("JC_STORE", str(path))
    return path


@pytest.fixture
def jp_server_config(store_path: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


async def _get(jp_fetch: Any, *parts: str, **params: str) -> tuple[int, Any]:
    response = await jp_fetch("containerize", *parts, params=params, raise_error=False)
    return int(response.code), json.loads(response.body) if response.body else None


@pytest.mark.parametrize("parts, params", [
    (("jobs",), {"limit": "x"}),
    (("jobs",), {"limit": "1.5"}),
    (("jobs",), {"limit": "9" * 30}),
    (("jobs", "abc123", "events"), {"after": "x"}),
    (("jobs", "abc123", "events"), {"after": "9" * 30}),
])
async def test_bad_numbers_are_400_with_one_sentence(jp_fetch: Any, parts: tuple[str, ...],
                                                      params: dict[str, str]) -> None:
    code, body = await _get(jp_fetch, *parts, **params)
    assert code == 400, body
    error = body["error"]
    name = next(iter(params))
    # One sentence and what to send instead, like every other bad input answered there.
    assert error.startswith(f"The {name} parameter must be a whole number") and "\n" not in error
    assert error.endswith(f"Send ?{name}=<integer>.") and "Traceback" not in error


async def test_good_numbers_still_work(jp_fetch: Any, store_path: Path, jp_root_dir: Path) -> None:
    store = JobStore(store_path)
    job = store.create(str(jp_root_dir.resolve() / "a.ipynb"))
    assert (await _get(jp_fetch, "jobs", limit="0"))[0] == 200  # clamped to 1, as before
    code, body = await _get(jp_fetch, "jobs", limit=" 7 ")
    assert code == 200 and [j["id"] for j in body["jobs"]] == [job.id]
    response = await jp_fetch("containerize", "jobs", job.id, "events", params={"after": "0", "follow": "0"})
    assert response.code == 200 and b"event: end" in response.body


async def test_path_filter_is_applied_before_the_limit(jp_fetch: Any, store_path: Path, jp_root_dir: Path) -> None:
    root = jp_root_dir.resolve()
    (root / "sub").mkdir()
    store = JobStore(store_path)
    mine = [store.create(str(root / "sub" / "a.ipynb")) for _ in range(3)]
    time.sleep(0.01)
    for _ in range(5):  # newer jobs of other notebooks: with the filter after the LIMIT, they hid 'a'
        store.create(str(root / "b.ipynb"))
    store.create(str(root.parent / "outside.ipynb"))

    code, body = await _get(jp_fetch, "jobs", path="sub/a.ipynb", limit="2")
    assert code == 200
    assert [j["id"] for j in body["jobs"]] == [mine[2].id, mine[1].id]
    assert {j["path"] for j in body["jobs"]} == {"sub/a.ipynb"}
    code, body = await _get(jp_fetch, "jobs", path="sub/a.ipynb")
    assert [j["id"] for j in body["jobs"]] == [r.id for r in reversed(mine)]
    for outside in ("../outside.ipynb", "/etc/passwd", str(root.parent / "outside.ipynb")):
        code, body = await _get(jp_fetch, "jobs", path=outside)
        assert code == 200 and body["jobs"] == [], outside
    code, body = await _get(jp_fetch, "jobs", limit="3")
    assert len(body["jobs"]) == 3


async def test_server_shutdown_closes_the_job_manager(jp_serverapp: Any) -> None:
    app = jp_serverapp.extension_manager.extension_apps["jupyter_containerize"]
    (ext,) = app if isinstance(app, set) else [app]
    manager = ext.settings["containerize_manager"]
    assert isinstance(manager, JobManager) and not manager.closed
    await ext.stop_extension()  # what ExtensionManager.stop_all_extensions calls on the server's shutdown
    assert manager.closed and manager._live == set()
    assert ext._reconciler is not None and not ext._reconciler.is_alive()
