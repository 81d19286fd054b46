"""The REST API under /containerize/ against a real jupyter_server and the real engine (issue 5)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support import NOTEBOOKS
from tests.support.engine import labelled_containers
from tests.support.outputs import output_notebook
from tests.support.rest import call, refused

pytest_plugins = ("pytest_jupyter.jupyter_server",)
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "notebooks"


@pytest.fixture
def jp_server_config(job_store: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    (jp_root_dir / "nb").mkdir()
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", jp_root_dir / "nb" / "quickstart.ipynb")
    shutil.copy(FIXTURES / "long_running.ipynb", jp_root_dir / "long_running.ipynb")
    return jp_root_dir




async def _wait(fetch: Any, job_id: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await call(fetch, "jobs", job_id)
        if job["done"]:
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _sse(body: bytes) -> tuple[list[dict[str, Any]], list[int], str | None]:
    events, seqs, end = [], [], None
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if lines.get("event") == "end":
            end = json.loads(lines["data"])["status"]
        elif "data" in lines:
            events.append(json.loads(lines["data"]))
            seqs.append(int(lines["id"]))
    return events, seqs, end


async def test_engine_status(jp_fetch: Any) -> None:
    status = await call(jp_fetch, "engine")
    assert status["reachable"] is True and status["version"]
    assert isinstance(status["gpus"], list) and "gpu_runtime" in status


async def test_notebook_parameters(jp_fetch: Any, root: Path) -> None:
    data = await call(jp_fetch, "notebook-parameters", params={"path": "nb/quickstart.ipynb"})
    assert data["has_cell"] is True
    assert {p["name"]: p["value"] for p in data["parameters"]} == {"n_estimators": "30", "max_depth": "6", "seed": "0"}
    none = await call(jp_fetch, "notebook-parameters", params={"path": "long_running.ipynb"})
    assert none == {"has_cell": False, "parameters": []}


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "nb/../../x.ipynb", "missing.ipynb", ""])
async def test_paths_outside_the_root_are_refused(jp_fetch: Any, root: Path, path: str) -> None:
    code, error = await refused(jp_fetch, "jobs", method="POST", body={"path": path, "options": {}})
    assert code == 400 and error
    code, _ = await refused(jp_fetch, "notebook-parameters", params={"path": path})
    assert code == 400


async def test_bad_options_answer_400_with_the_parsers_sentence(jp_fetch: Any, root: Path) -> None:
    code, error = await refused(jp_fetch, "jobs", method="POST",
                               body={"path": "nb/quickstart.ipynb", "options": {"gpus": "lots"}})
    assert code == 400 and "--gpus" in error
    code, error = await refused(jp_fetch, "jobs", method="POST",
                               body={"path": "nb/quickstart.ipynb", "options": {"python": "/bin/sh"}})
    assert code == 400 and "python" in error
    for options, words in (({"parameters": {"n_estimator": 5}}, "did you mean n_estimators?"),
                           ({"parameters": {"n_estimators": "many"}}, "n_estimators is an int"),
                           ({"sweep": {"n_estimators": [3, "x"]}}, "n_estimators is an int")):
        code, error = await refused(jp_fetch, "jobs", method="POST", body={"path": "nb/quickstart.ipynb",
                                                                          "options": options})
        assert code == 400 and words in error
    assert (await call(jp_fetch, "jobs"))["jobs"] == []  # nothing recorded
    code, error = await refused(jp_fetch, "jobs", "nope", method="GET")
    assert code == 404 and "nope" in error


async def test_preview_renders_the_dockerfile(jp_fetch: Any, root: Path) -> None:
    preview = await call(jp_fetch, "preview", method="POST", body={
        "path": "nb/quickstart.ipynb", "options": {"parameter": ["n_estimators=9"], "env": ["A=1"]},  # run options too
    })
    assert "\nFROM " in preview["dockerfile"] and "Dockerfile" in preview["files"]
    assert "scikit-learn" in preview["lock"]
    assert preview["files"] and preview["content_hash"]


async def test_create_list_get_stream_and_open_the_output(jp_fetch: Any, root: Path) -> None:
    job = await call(jp_fetch, "jobs", method="POST", body={
        "path": "nb/quickstart.ipynb", "options": {"parameters": {"n_estimators": 7}, "env": {"JC_TEST": "1"}},
    })
    assert job["path"] == "nb/quickstart.ipynb" and job["parameters"] == {"n_estimators": 7}
    listed = await call(jp_fetch, "jobs", params={"path": "nb/quickstart.ipynb"})
    assert job["id"] in [j["id"] for j in listed["jobs"]]

    # Live stream while it runs: the first events come before the job ends.
    first = await jp_fetch("containerize", "jobs", job["id"], "events", params={"follow": "0"})
    early, early_seqs, _ = _sse(first.body)
    assert early and early[0]["type"] == "StatusChanged" and early_seqs == sorted(early_seqs)

    done = await _wait(jp_fetch, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["metrics"]["n_estimators"] == 7
    assert done["output_notebook"] == f"nb/quickstart.jc-jobs/{job['id']}/quickstart.{job['id']}.ipynb"
    assert (root / done["output_notebook"]) == output_notebook(root / "nb" / "quickstart.jc-jobs" / job["id"], job["id"])

    full = await jp_fetch("containerize", "jobs", job["id"], "events")
    events, seqs, end = _sse(full.body)
    assert end == "succeeded" and seqs == list(range(1, len(seqs) + 1))
    types = [e["type"] for e in events]
    assert "CellStarted" in types and types[-1] == "Finished"
    _, resumed_seqs, _ = _sse((await jp_fetch("containerize", "jobs", job["id"], "events",
                                                     params={"after": str(seqs[-3])})).body)
    assert resumed_seqs == seqs[-2:]


async def test_cancel_then_delete(jp_fetch: Any, root: Path, engine: docker.DockerClient) -> None:
    job = await call(jp_fetch, "jobs", method="POST", body={"path": "long_running.ipynb", "options": {}})
    deadline = time.monotonic() + 600
    while (await call(jp_fetch, "jobs", job["id"]))["status"] != "running":
        assert time.monotonic() < deadline, "the job never started running"
        await asyncio.sleep(1)
    cancelled = await call(jp_fetch, "jobs", job["id"], "cancel", method="POST", body="{}")
    assert cancelled["id"] == job["id"]
    done = await _wait(jp_fetch, job["id"], timeout=120)
    assert done["status"] == "cancelled"
    response = await jp_fetch("containerize", "jobs", job["id"], method="DELETE")
    assert response.code == 204
    code, _ = await refused(jp_fetch, "jobs", job["id"])
    assert code == 404
    assert labelled_containers(engine, job["id"]) == []


async def test_re_run_makes_a_new_job_of_the_same_spec(jp_fetch: Any, root: Path, engine: docker.DockerClient) -> None:
    """What the sidebar's Re-run and Cancel buttons call: a new job, the old one kept; unknown ids answer 404."""
    job = await call(jp_fetch, "jobs", method="POST", body={
        "path": "long_running.ipynb", "options": {"env": {"JC_TEST": "1"}, "memory": "1g"}})
    await call(jp_fetch, "jobs", job["id"], "cancel", method="POST", body="{}")
    assert (await _wait(jp_fetch, job["id"], timeout=600))["status"] == "cancelled"

    again = await call(jp_fetch, "jobs", job["id"], "rerun", method="POST", body="{}")
    assert again["id"] != job["id"] and again["path"] == "long_running.ipynb" and not again["done"]
    listed = [j["id"] for j in (await call(jp_fetch, "jobs", params={"path": "long_running.ipynb"}))["jobs"]]
    assert listed[:2] == [again["id"], job["id"]]
    deadline = time.monotonic() + 600
    while (await call(jp_fetch, "jobs", again["id"]))["status"] != "running":
        assert time.monotonic() < deadline, "the re-run never started running"
        await asyncio.sleep(0.5)
    containers = labelled_containers(engine, again["id"])
    assert [c.attrs["HostConfig"]["Memory"] for c in containers] == [1 << 30]  # the same options
    assert "JC_TEST=1" in containers[0].attrs["Config"]["Env"]
    await call(jp_fetch, "jobs", again["id"], "cancel", method="POST", body="{}")
    assert (await _wait(jp_fetch, again["id"], timeout=120))["status"] == "cancelled"
    assert (await call(jp_fetch, "jobs", job["id"]))["status"] == "cancelled"

    (root / "long_running.ipynb").unlink()
    code, error = await refused(jp_fetch, "jobs", job["id"], "rerun", method="POST", body="{}")
    assert code in (400, 404) and "long_running.ipynb" in error
    for action in ("rerun", "cancel"):
        code, error = await refused(jp_fetch, "jobs", "0123456789ab", action, method="POST", body="{}")
        assert code == 404 and "0123456789ab" in error


async def test_a_sweep_creates_one_job_per_combination(jp_fetch: Any, root: Path) -> None:
    answer = await call(jp_fetch, "jobs", method="POST", body={
        "path": "nb/quickstart.ipynb", "options": {"sweep": {"n_estimators": [3, 4]}, "parameters": {"max_depth": 2}},
    })
    jobs = answer["jobs"]
    assert sorted(j["parameters"]["n_estimators"] for j in jobs) == [3, 4]
    finished = [await _wait(jp_fetch, j["id"]) for j in jobs]
    assert [j["status"] for j in finished] == ["succeeded", "succeeded"]
    assert all(j["parameters"]["max_depth"] == 2 and j["metrics"]["n_estimators"] in (3, 4) for j in finished)


async def test_delete_with_outputs_removes_only_the_jobs_own_folder(jp_fetch: Any, root: Path, job_store: Path,
                                                                     tmp_path: Path) -> None:
    """The sidebar's "Delete job and its outputs": ``DELETE …?outputs=1`` removes the job's own folder
    (``<stem>.jc-jobs/<id>/`` beside the notebook) with the job; a folder given with --output stays; a job
    still running, an own folder outside the Jupyter root and a bad ``outputs`` value are refused."""
    from jupyter_containerize.jobs.store import JobStore

    own = await call(jp_fetch, "jobs", method="POST", body={"path": "nb/quickstart.ipynb",
                                                             "options": {"parameters": {"n_estimators": 3}}})
    code, error = await refused(jp_fetch, "jobs", own["id"], method="DELETE", params={"outputs": "1"})
    assert code == 400 and "has not finished" in error, error  # its outputs are still being written
    mine = root / "mine"
    theirs = await call(jp_fetch, "jobs", method="POST", body={"path": "nb/quickstart.ipynb",
                                                                "options": {"output": str(mine)}})
    done = {j["id"]: await _wait(jp_fetch, j["id"]) for j in (own, theirs)}
    assert [j["status"] for j in done.values()] == ["succeeded", "succeeded"], [j["error"] for j in done.values()]
    folder = root / "nb" / "quickstart.jc-jobs" / own["id"]
    assert folder.is_dir() and done[own["id"]]["own_output_folder"] == f"nb/quickstart.jc-jobs/{own['id']}"
    assert done[theirs["id"]]["own_output_folder"] is None and output_notebook(mine, theirs["id"]).is_file()

    code, error = await refused(jp_fetch, "jobs", own["id"], method="DELETE", params={"outputs": "yes please"})
    assert code == 400 and "outputs" in error
    removed = await call(jp_fetch, "jobs", own["id"], method="DELETE", params={"outputs": "1"})
    assert removed == {"id": own["id"], "folder_removed": f"nb/quickstart.jc-jobs/{own['id']}", "folder_kept": None}
    assert not folder.exists() and not folder.parent.exists()  # the emptied .jc-jobs folder goes too
    assert (root / "nb" / "quickstart.ipynb").is_file()
    assert (await refused(jp_fetch, "jobs", own["id"]))[0] == 404
    kept = await call(jp_fetch, "jobs", theirs["id"], method="DELETE", params={"outputs": "1"})
    assert kept == {"id": theirs["id"], "folder_removed": None, "folder_kept": "mine"}
    assert output_notebook(mine, theirs["id"]).is_file()  # the user's folder stays
    assert (await refused(jp_fetch, "jobs", theirs["id"]))[0] == 404

    # A job of a notebook outside the root (run from a terminal): its own folder is not the server's to remove.
    outside = tmp_path / "elsewhere" / "x.jc-jobs" / "0123456789ab"
    outside.mkdir(parents=True)
    JobStore(job_store).create(str(tmp_path / "elsewhere" / "x.ipynb"), status="succeeded", job_id="0123456789ab",
                               output_dir=str(outside))
    code, error = await refused(jp_fetch, "jobs", "0123456789ab", method="DELETE", params={"outputs": "1"})
    assert code == 400 and "outside the Jupyter root" in error, error
    assert outside.is_dir() and (await call(jp_fetch, "jobs", "0123456789ab"))["status"] == "succeeded"
    code, _ = await refused(jp_fetch, "jobs", "fedcba987654", method="DELETE", params={"outputs": "1"})
    assert code == 404
