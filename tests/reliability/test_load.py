"""Load: 20 jobs through the REST API and 20 through the CLI, all at once, one store.

All recorded, none lost or duplicated, the store consistent afterwards. The notebook is one
``print`` cell and its image is built once up front, so the 40 containers are cheap; the CLI
jobs are started detached (20 processes following 20 jobs would only load the 2 cores) and
the test process then re-attaches them, which is what `jupyter containerize jobs` does."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import JobManager, prepare
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.cli import check_store_consistent, cli
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook

pytest_plugins = ("pytest_jupyter.jupyter_server",)
pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("base_image")]

N = 20
CLI_PARALLEL = 5  # CLI processes at once: each one imports the package (CPU) before it submits


@pytest.fixture
def jp_server_config(job_store: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


def _settle(store: JobStore, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(store.get(i).done for i in ids):
            return
        time.sleep(1)
    raise AssertionError({i: store.get(i).status for i in ids if not store.get(i).done})


async def test_forty_concurrent_jobs_through_rest_and_cli(jp_fetch: Any, jp_root_dir: Path, job_store: Path,
                                                          engine: docker.DockerClient) -> None:
    nb = write_notebook(jp_root_dir / "load.ipynb", "print('load ok')")
    spec = parse(["run", str(nb)]).spec
    assert spec is not None
    prepared = await asyncio.to_thread(prepare, spec)
    try:
        await asyncio.to_thread(build_image, prepared.context, lambda e: None)  # once; every job reuses it
    finally:
        prepared.cleanup()
    started = time.monotonic()

    async def post(i: int) -> dict[str, Any]:
        response = await jp_fetch("containerize", "jobs", method="POST",
                                  body=json.dumps({"path": "load.ipynb", "options": {"env": {"N": str(i)}}}))
        return json.loads(response.body)  # type: ignore[no-any-return]

    def run_cli(i: int) -> str:
        result = cli("run", "load.ipynb", "--detach", "-e", f"N=cli{i}", cwd=jp_root_dir, store=job_store,
                     timeout=600)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[1]  # "job <id>"

    with ThreadPoolExecutor(CLI_PARALLEL) as pool:
        cli_futures = [pool.submit(run_cli, i) for i in range(N)]
        rest_jobs = await asyncio.gather(*(post(i) for i in range(N)))
        cli_ids = await asyncio.to_thread(lambda: [f.result() for f in cli_futures])
    rest_ids = [j["id"] for j in rest_jobs]
    assert len(set(rest_ids)) == N and len(set(cli_ids)) == N and not set(rest_ids) & set(cli_ids)

    store = JobStore(job_store)
    manager = JobManager(store)  # a new owner for the detached CLI jobs
    await asyncio.to_thread(manager.reconcile)
    await asyncio.to_thread(_settle, store, rest_ids + cli_ids, 600)
    elapsed = time.monotonic() - started

    records = {r.id: r for r in store.list(limit=500)}
    assert set(records) == set(rest_ids) | set(cli_ids)  # all recorded, nothing extra
    assert {records[i].status for i in records} == {"succeeded"}, {i: (r.status, r.error) for i, r in records.items()
                                                                   if r.status != "succeeded"}
    assert sorted(r.spec["env"]["N"] for r in records.values()) == sorted(
        [str(i) for i in range(N)] + [f"cli{i}" for i in range(N)])  # each submission exactly once
    for job_id in records:
        logs = [e.text.strip() for _, e in store.events(job_id) if isinstance(e, Log)]
        assert logs.count("load ok") == 1, (job_id, logs)
        assert labelled_containers(engine, job_id) == []
    assert check_store_consistent(job_store) == []
    listed = await asyncio.to_thread(cli, "jobs", "--json", "-n", "100", cwd=jp_root_dir, store=job_store)
    assert listed.returncode == 0 and {j["id"] for j in json.loads(listed.stdout)} == set(records)
    print(f"40 jobs in {elapsed:.0f} s")
