"""Schedules on a real jupyter_server with the extension and the real engine (issue 17 item 3).

The server's scheduler thread starts each due occurrence as an ordinary job linked to its schedule:
a schedule due every minute runs twice in about two minutes, its twin paused all along never, and
neither runs again once paused; a schedule saved
before the server started, whose last run was three hours ago, is caught up once. The CLI saves,
lists, pauses, resumes and removes schedules, and refuses a bad one in one sentence.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.jobs import commands
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.cli import assert_one_clear_error, cli
from tests.support.notebooks import write_notebook
from tests.support.rest import call, refused

pytest_plugins = ("pytest_jupyter.jupyter_server",)
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

RUNS_WITHIN_S = 150  # two occurrences of '* * * * *' come within 120 s of creating the schedule


def _tiny(folder: Path) -> Path:
    return write_notebook(folder / "tiny.ipynb", "print('x is', x)", parameters="x = 1")


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    _tiny(jp_root_dir)
    return jp_root_dir


@pytest.fixture
def missed(root: Path, job_store: Path) -> dict[str, Any]:
    """A daily schedule saved before the server started, three days ago: the server was down since, so
    three of its times passed. Its hour is twelve hours from now, so no time of it comes during the test."""
    hour = (time.gmtime().tm_hour + 12) % 24
    cmd = parse(["schedule", str(root / "tiny.ipynb"), "--cron", f"0 {hour} * * *", f"--python={sys.executable}",
                 "-p", "x", "3"])
    assert cmd.spec is not None
    view = commands.schedule(JobManager(), cmd.spec, cmd.args["rule"], now=time.time() - 3 * 86400)
    assert view.schedule.next_run < time.time() - 86400
    return view.schedule.to_dict()


@pytest.fixture
def jp_server_config(job_store: Path, missed: dict[str, Any]) -> dict[str, Any]:
    # The scheduler looks every second (default: at least once a minute and at each due time).
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}},
            "ContainerizeApp": {"schedule_poll": 1.0}}




async def _runs(fetch: Any, schedule_id: str) -> list[dict[str, Any]]:
    """The jobs a schedule started, oldest first (as the sidebar lists jobs)."""
    jobs = (await call(fetch, "jobs", params={"limit": "500"}))["jobs"]
    return sorted((j for j in jobs if j["schedule_id"] == schedule_id), key=lambda j: j["created"])


async def _until(what: str, check: Any, deadline: float) -> Any:
    while time.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} did not happen in time")


async def test_a_minutely_schedule_runs_twice_its_paused_twin_never_and_a_missed_one_once(
        jp_fetch: Any, root: Path, missed: dict[str, Any]) -> None:
    # A bad schedule is refused in one sentence, before anything is saved.
    for body, words in (({"path": "tiny.ipynb", "cron": "0 3 * *"}, "five fields"),
                        ({"path": "tiny.ipynb", "cron": "0 3 * * *", "tz": "Nowhere/City"}, "not a time zone"),
                        ({"path": "tiny.ipynb", "cron": "0 3 * * *", "options": {"parameters": {"y": 1}}},
                         "has no parameter y"),
                        ({"path": "tiny.ipynb", "options": {}}, "needs --cron"),
                        ({"path": "../tiny.ipynb", "cron": "0 3 * * *"}, "")):
        code, error = await refused(jp_fetch, "schedules", method="POST", body=body)
        assert code == 400 and words in error, (body, error)
    assert [s["id"] for s in (await call(jp_fetch, "schedules"))["schedules"]] == [missed["id"]]

    if 60 - time.time() % 60 < 3:  # not at a minute's turn: the paused twin must be paused before its first time
        await asyncio.sleep(4)
    t0 = time.time()
    twin = await call(jp_fetch, "schedules", method="POST", body={"path": "tiny.ipynb", "cron": "* * * * *"})
    twin = await call(jp_fetch, "schedules", twin["id"], "pause", method="POST", body="{}")
    assert twin["paused"] is True and time.time() < twin["next_run"]
    created = await call(jp_fetch, "schedules", method="POST", body={
        "path": "tiny.ipynb", "cron": "* * * * *", "options": {"parameters": {"x": 2}, "name": "minutely"}})
    sid = created["id"]
    assert created["path"] == "tiny.ipynb" and created["tz"] == "UTC" and created["paused"] is False
    assert t0 < created["next_run"] <= t0 + 61 and created["next_run"] % 60 == 0
    assert created["parameters"] == {"x": 2} and created["next_run_text"].endswith(" UTC")

    async def two_runs() -> list[dict[str, Any]] | None:
        runs = await _runs(jp_fetch, sid)
        return runs if len(runs) >= 2 else None

    runs = await _until("two runs of the minutely schedule", two_runs, t0 + RUNS_WITHIN_S)
    paused = await call(jp_fetch, "schedules", sid, "pause", method="POST", body="{}")
    assert paused["paused"] is True and len(runs) == 2
    # The times of the two runs were a minute apart, and the schedule now waits for the third.
    third = paused["next_run"]
    assert paused["last_run"] == third - 60 and third - 60 > t0
    # The twin, paused all along, let the same two times pass without a run.
    assert await _runs(jp_fetch, twin["id"]) == []

    async def linked() -> bool:  # the scheduler records the job right after submitting it
        return bool((await call(jp_fetch, "schedules", sid))["last_job_id"] == runs[1]["id"])

    await _until("the second run recorded on the schedule", linked, time.time() + 10)

    # Both runs are ordinary jobs: they succeed on the engine with the schedule's parameters.
    for run in runs:
        done = await _until(f"job {run['id']}", lambda r=run: _done(jp_fetch, r["id"]), time.time() + 300)
        assert done["status"] == "succeeded", done["error"]
        assert done["parameters"] == {"x": 2} and done["name"] == "minutely" and done["output_notebook"]

    # The missed daily schedule: caught up once when the server started, not once per missed day.
    caught_up = await _runs(jp_fetch, missed["id"])
    assert len(caught_up) == 1
    done = await _until("the catch-up run", lambda: _done(jp_fetch, caught_up[0]["id"]), time.time() + 300)
    assert done["status"] == "succeeded" and done["parameters"] == {"x": 3}
    daily = await call(jp_fetch, "schedules", missed["id"])
    assert daily["last_run"] == missed["next_run"] and daily["last_status"] == "succeeded"
    assert t0 < daily["next_run"] <= t0 + 86400 and daily["next_run"] % 3600 == 0

    # Paused: no run since (its third time may have come meanwhile), the twin never ran.
    assert [r["id"] for r in await _runs(jp_fetch, sid)] == [r["id"] for r in runs]
    assert await _runs(jp_fetch, twin["id"]) == []
    listed = {s["id"]: s for s in (await call(jp_fetch, "schedules"))["schedules"]}
    assert listed[sid]["paused"] is True and listed[sid]["last_status"] == "succeeded"
    assert listed[twin["id"]]["last_run"] is None and listed[twin["id"]]["last_status"] == ""

    resumed = await call(jp_fetch, "schedules", twin["id"], "resume", method="POST", body="{}")
    assert resumed["paused"] is False and resumed["next_run"] > time.time()  # from now on: nothing missed is run

    for schedule_id in (sid, twin["id"], missed["id"]):
        response = await jp_fetch("containerize", "schedules", schedule_id, method="DELETE")
        assert response.code == 204
    assert (await call(jp_fetch, "schedules"))["schedules"] == []
    code, error = await refused(jp_fetch, "schedules", sid)
    assert code == 404 and sid in error
    assert len(await _runs(jp_fetch, sid)) == 2  # its runs stay


async def _done(fetch: Any, job_id: str) -> dict[str, Any] | None:
    job = await call(fetch, "jobs", job_id)
    return job if job["done"] else None


def test_the_cli_saves_lists_pauses_resumes_and_removes_a_schedule(tmp_path: Path, job_store: Path) -> None:
    nb = _tiny(tmp_path)
    saved = cli("schedule", nb.name, "--cron", "30 4 * * 1-5", "--tz", "Europe/Berlin", "-p", "x", "5", cwd=tmp_path,
                store=job_store)
    assert saved.returncode == 0, saved.stderr
    first = saved.stdout.splitlines()[0]
    assert first.startswith("schedule sched-") and "tiny.ipynb at '30 4 * * 1-5' (Europe/Berlin); next run " in first
    record = JobStore(job_store).schedules()[0]
    assert record.notebook == str(nb.resolve()) and record.spec["parameters"] == {"x": 5}
    assert time.strftime("%M", time.gmtime(record.next_run)) == "30"
    listed = cli("schedules", cwd=tmp_path, store=job_store)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["SCHEDULE", "NOTEBOOK", "CRON", "TZ", "NEXT", "RUN", "LAST", "RUN", "LAST", "JOB",
                              "STATUS", "PAUSED"]
    assert row.startswith(record.id) and "04:30 CE" in row and row.endswith("no")
    as_json = json.loads(cli("schedules", "--json", cwd=tmp_path, store=job_store).stdout)
    assert as_json[0]["id"] == record.id and as_json[0]["next_run"] == record.next_run
    short = record.id[len("sched-"):][:4]
    assert cli("pause", short, cwd=tmp_path, store=job_store).stdout.strip().endswith("; paused")
    resumed = cli("resume", short, cwd=tmp_path, store=job_store)
    assert "next run" in resumed.stdout and not JobStore(job_store).schedule(record.id).paused
    assert cli("unschedule", record.id, cwd=tmp_path, store=job_store).stdout.strip() == f"removed schedule {record.id}"
    assert JobStore(job_store).schedules() == []
    # A bad option is refused as `run` refuses it, before anything is saved.
    assert_one_clear_error(cli("schedule", nb.name, "--cron", "@daily", "-v", "./nowhere:/data", cwd=tmp_path,
                               store=job_store), "does not exist")
    assert JobStore(job_store).schedules() == []
