"""Sweeps: one job per combination, one image for all of them, metrics side by side."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from jupyter_containerize.events import BuildFinished
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.options import parse
from tests.support.cli import assert_one_clear_error, cli
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


def test_the_cli_runs_a_named_sweep_and_compares_it(tmp_path: Path, job_store: Path) -> None:
    """``run --sweep --name``, then ``jobs --sweep ID`` as text, CSV and JSON, ``--metric``; errors in one sentence."""
    nb = write_notebook(
        tmp_path / "train.ipynb",
        "from jupyter_containerize import log_metric\nlog_metric('accuracy', 1 - lr)\nlog_metric('loss', 2 * lr)",
        parameters="lr = 0.5",
    )
    run = cli("run", str(nb), "--sweep", "lr=0.1,0.3", "--name", "lr study", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = re.search(r"^sweep (sweep-[0-9a-f]+) of 2 jobs: (\w+) (\w+)$", run.stdout, re.M)
    assert found, run.stdout
    sweep_id, first, second = found.groups()
    assert "metric accuracy, higher is better" in run.stdout and f"jobs --sweep {sweep_id}" in run.stdout

    records = {r.parameters["lr"]: r for r in JobStore(job_store).sweep(sweep_id)}
    assert {r.id for r in records.values()} == {first, second}
    assert records[0.1].name == "lr study lr=0.1" and records[0.3].name == "lr study lr=0.3"
    best, other = records[0.1], records[0.3]  # accuracy 1 - lr: the smaller lr wins

    text = cli("jobs", "--sweep", sweep_id, cwd=tmp_path)
    assert text.returncode == 0 and text.stderr == "", text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"sweep {sweep_id}: 2 jobs (2 succeeded); metric accuracy, higher is better; "
                               f"best: job {best.id} (lr study lr=0.1) accuracy=0.9")
    assert lines[2].split() == ["RANK", "JOB", "NAME", "STATUS", "lr", "accuracy", "loss", "DURATION"]
    assert lines[3].split()[:6] == ["*", "1", best.id, "lr", "study", "lr=0.1"]
    assert lines[4].split()[:3] == ["2", other.id, "lr"]
    assert re.search(r"\d+\.\ds$", lines[3])  # build + run seconds

    rows = list(csv.DictReader(io.StringIO(cli("jobs", "--sweep", sweep_id[:10], "--csv", cwd=tmp_path).stdout)))
    assert [(r["job_id"], r["rank"], r["best"], r["params.lr"], r["name"]) for r in rows] == [
        (best.id, "1", "true", "0.1", "lr study lr=0.1"), (other.id, "2", "false", "0.3", "lr study lr=0.3")]
    assert [float(r["metrics.accuracy"]) for r in rows] == pytest.approx([0.9, 0.7])
    assert all(float(r["duration_seconds"]) >= float(r["run_seconds"]) > 0 for r in rows)
    assert all(float(r["build_seconds"]) >= 0 for r in rows)

    data = json.loads(cli("jobs", "--sweep", sweep_id, "--metric", "loss", "--json", cwd=tmp_path).stdout)
    assert data["metric"] == "loss" and data["direction"] == "minimize" and data["direction_inferred"]
    assert data["best"] == best.id and [r["job_id"] for r in data["rows"]] == [best.id, other.id]
    points = data["vega_lite"]["data"]["values"]
    assert [(p["job"], p["p:lr"], p["best"]) for p in points] == [(best.id, 0.1, True), (other.id, 0.3, False)]
    assert [p["value"] for p in points] == pytest.approx([0.2, 0.6])
    flipped = json.loads(cli("jobs", "--sweep", sweep_id, "--metric", "loss", "--maximize", "--json",
                             cwd=tmp_path).stdout)
    assert flipped["best"] == other.id and not flipped["direction_inferred"]

    listed = cli("jobs", "--name", "lr study", "--status", "succeeded", cwd=tmp_path).stdout
    assert "lr study lr=0.1" in listed and "lr study lr=0.3" in listed and sweep_id in listed
    assert cli("jobs", "--name", "lr study", "--status", "failed", cwd=tmp_path).stdout.count("\n") == 1  # header only
    assert best.id in cli("jobs", "--notebook", str(nb), cwd=tmp_path).stdout

    assert_one_clear_error(cli("jobs", "--sweep", sweep_id, "--metric", "f1", cwd=tmp_path),
                           "has no metric 'f1'", "recorded accuracy and loss", "--metric")
    assert_one_clear_error(cli("jobs", "--sweep", "sweep-00000000", cwd=tmp_path), "No sweep 'sweep-00000000'")
    assert_one_clear_error(cli("jobs", "--metric", "loss", cwd=tmp_path), "--metric compares the jobs of a sweep")
