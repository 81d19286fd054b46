"""Sweeps: one job per combination, one image for all of them, metrics side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_containerize.events import BuildFinished
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


def test_sweep_runs_every_combination_on_one_image(tmp_path: Path, job_store: Path) -> None:
    nb = write_notebook(
        tmp_path / "sweep.ipynb",
        "from jupyter_containerize import log_metric\nlog_metric('score', lr * batch)",
        parameters="lr = 0.5\nbatch = 1",
    )
    spec = parse(["run", str(nb), "--sweep", "lr=0.1,0.2", "batch=2,4", "--max-parallel", "2"]).spec
    assert spec is not None
    jobs = JobManager(JobStore(job_store)).submit_sweep(spec)
    assert len(jobs) == 4
    records = [j.wait(timeout=900) for j in jobs]
    assert all(r.status == "succeeded" for r in records), [r.error for r in records]
    assert len({r.sweep_id for r in records}) == 1 and len({r.image_id for r in records}) == 1
    got = sorted((r.parameters["lr"], r.parameters["batch"], round(r.metrics["score"], 6)) for r in records)
    assert got == [(0.1, 2, 0.2), (0.1, 4, 0.4), (0.2, 2, 0.4), (0.2, 4, 0.8)]
    builds = [e for j in jobs for _, e in j.events() if isinstance(e, BuildFinished)]
    assert len(builds) == 4 and len({(b.time, b.image_id) for b in builds}) == 1  # one build, shown on every job
