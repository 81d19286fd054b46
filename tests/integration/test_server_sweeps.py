"""``GET /containerize/sweeps/<id>``: a real sweep, started over REST on the real engine, compared (issue 16)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.notebooks import write_notebook
from tests.support.rest import call, refused

pytest_plugins = ("pytest_jupyter.jupyter_server",)
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


@pytest.fixture
def jp_server_config(job_store: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    write_notebook(jp_root_dir / "sweeps" / "train.ipynb",
                   "from jupyter_containerize import log_metric\nlog_metric('accuracy', 1 - lr)\n"
                   "log_metric('loss', 2 * lr)",
                   parameters="lr = 0.5")
    return jp_root_dir




async def _wait_all(fetch: Any, ids: list[str], timeout: float = 900) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [await call(fetch, "jobs", job_id) for job_id in ids]
        if all(j["done"] for j in jobs):
            return jobs
        await asyncio.sleep(1)
    raise AssertionError(f"jobs {ids} did not finish in {timeout} s")


async def test_a_sweep_started_over_rest_is_compared_with_its_plot(jp_fetch: Any, root: Path) -> None:
    created = await call(jp_fetch, "jobs", method="POST", body={
        "path": "sweeps/train.ipynb", "options": {"sweep": {"lr": [0.1, 0.3]}, "name": "rest study"},
    })
    jobs = created["jobs"]
    assert sorted(j["name"] for j in jobs) == ["rest study lr=0.1", "rest study lr=0.3"]  # named from the start
    assert sorted(j["parameters"]["lr"] for j in jobs) == [0.1, 0.3]
    sweep_id = jobs[0]["sweep_id"]
    assert sweep_id.startswith("sweep-") and {j["sweep_id"] for j in jobs} == {sweep_id}
    done = await _wait_all(jp_fetch, [j["id"] for j in jobs])
    assert all(j["status"] == "succeeded" for j in done), [j["error"] for j in done]
    by_lr = {j["parameters"]["lr"]: j for j in done}

    compared = await call(jp_fetch, "sweeps", sweep_id)
    assert compared["sweep_id"] == sweep_id and compared["metric"] == "accuracy"
    assert compared["direction"] == "maximize" and compared["best"] == by_lr[0.1]["id"]
    assert [r["job_id"] for r in compared["rows"]] == [by_lr[0.1]["id"], by_lr[0.3]["id"]]
    first = compared["rows"][0]
    assert first["best"] and first["rank"] == 1 and first["name"] == "rest study lr=0.1"
    assert first["metrics"] == pytest.approx({"accuracy": 0.9, "loss": 0.2}) and first["parameters"] == {"lr": 0.1}
    assert first["duration"] >= first["run_seconds"] > 0
    spec = compared["vega_lite"]
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert [(v["job"], v["p:lr"], v["best"]) for v in spec["data"]["values"]] == [
        (by_lr[0.1]["id"], 0.1, True), (by_lr[0.3]["id"], 0.3, False)]

    by_loss = await call(jp_fetch, "sweeps", sweep_id, params={"metric": "loss"})
    assert by_loss["direction"] == "minimize" and by_loss["best"] == by_lr[0.1]["id"]
    flipped = await call(jp_fetch, "sweeps", sweep_id[:9], params={"metric": "loss", "direction": "maximize"})
    assert flipped["best"] == by_lr[0.3]["id"]  # a unique prefix of the id will do

    named = await call(jp_fetch, "jobs", params={"name": "rest study"})
    assert sorted(j["id"] for j in named["jobs"]) == sorted(by_lr[lr]["id"] for lr in by_lr)
    assert len((await call(jp_fetch, "jobs", params={"sweep": sweep_id}))["jobs"]) == 2

    code, error = await refused(jp_fetch, "sweeps", sweep_id, params={"metric": "f1"})
    assert code == 400 and "has no metric 'f1'; its jobs recorded accuracy and loss" in error
    code, error = await refused(jp_fetch, "sweeps", sweep_id, params={"direction": "sideways"})
    assert code == 400 and "minimize or maximize" in error
    code, error = await refused(jp_fetch, "sweeps", "sweep-00000000")
    assert code == 404 and "No sweep 'sweep-00000000'" in error
