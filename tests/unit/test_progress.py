"""The one fold of events into job progress, and the same progress through every front end.

The event streams are labextension/src/__tests__/fixtures/job-events.json: the sidebar's
jest test (progress.spec.ts) folds the same streams and checks the same ``expect``.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest

from jupyter_containerize.events import (
    CellFinished,
    CellStarted,
    Event,
    Finished,
    Log,
    MetricLogged,
    PackagesProgress,
    StatusChanged,
    event_from_dict,
)
from jupyter_containerize.progress import JobProgress, fold, fold_all
from jupyter_containerize.textview import TextProgress
from jupyter_containerize.widgets import TextJobView
from tests.support import REPO

FIXTURE = REPO / "labextension" / "src" / "__tests__" / "fixtures" / "job-events.json"


def _jobs() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["jobs"]
    return jobs


def _events(job: dict[str, Any]) -> list[Event]:
    return [event_from_dict(d) for d in job["events"]]


def _shown(p: JobProgress) -> dict[str, Any]:
    """What the fixture's ``expect`` names, as the Python views show it (the bars' value and maximum)."""
    build_total = max(p.build_total, 1) if p.build_done or p.build_total else 0
    return {"status": p.status, "error": p.error, "build": [min(p.build_step, build_total), build_total],
            "cells": [p.cells_done, p.cell_total], "metrics": dict(p.metrics)}


def test_the_fixture_is_the_current_wire_form_of_the_events() -> None:
    for job in _jobs():
        for d in job["events"]:
            wire = json.loads(json.dumps(event_from_dict(d).to_dict()))
            assert wire == d, f"{FIXTURE.name}: {d} is not what events.py writes now"


def test_fold_is_pure() -> None:
    start = JobProgress()
    after = fold(start, MetricLogged(name="loss", value=0.5, time=1.0))
    after = fold(after, PackagesProgress(phase="installed", count=3, time=2.0))
    after = fold(after, Log(text="a\nb\n", time=3.0))
    assert start == JobProgress() and start.metrics == {} and start.packages == {} and start.log == ()
    assert after.metrics == {"loss": 0.5} and after.packages == {"installed": 3} and after.log == ("a", "b")
    again = fold(after, MetricLogged(name="loss", value=0.25, time=4.0))
    assert after.metrics == {"loss": 0.5} and again.metrics == {"loss": 0.25}
    assert (after.created, after.events_seen) == (1.0, 3)


def test_a_realistic_job_step_by_step() -> None:
    events = _events(_jobs()[0])
    seen = []
    p = JobProgress()
    for event in events:
        p = fold(p, event)
        seen.append((p.status, p.build_text(), p.run_text()))
    assert seen[1] == ("building", "capturing the environment…", "")
    assert seen[3] == ("building", "step 1/4: base image python:3.11.9-slim-bookworm", "")
    assert seen[9] == ("building", "step 3/4: install packages (uv) · 0/23 packages", "")
    assert seen[11] == ("building", "step 3/4: install packages (uv) · 23/23 packages", "")
    assert seen[13] == ("building", "built in 6.4 s", "")
    assert seen[16] == ("running", "built in 6.4 s", "0 of 3 cells done")
    assert seen[19] == ("running", "built in 6.4 s", "cell 2 of 3: for epoch in range(epochs):")
    assert p.done and p.summary("ab12cd34") == "job ab12cd34 succeeded · 3/3 cells · loss=0.33, accuracy=0.93"
    assert p.log == ("Installed 23 packages in 310ms", "epoch 1 loss 0.91", "epoch 2 loss 0.54", "epoch 3 loss 0.33")
    assert p.image_tag == "jc/quickstart:3f2a9c1b" and p.layers_cached == 2
    assert p.output_notebook() == "/home/u/quickstart.jc-jobs/ab12cd34/quickstart.ipynb"
    assert p.elapsed() == pytest.approx(12.0) and p.elapsed_text() == "0:00:12"
    assert p == fold_all(events)


def test_a_cached_image_is_up_to_date_and_a_failing_cell_is_not_done() -> None:
    p = fold_all(_events(_jobs()[1]))
    assert p.build_text() == "environment reused: 0 build steps"
    assert (p.status, p.failing_cell, p.exit_code, p.cells_done, p.running_cell) == ("failed", 1, 1, 1, None)
    assert p.traceback.endswith("ZeroDivisionError: division by zero")
    assert p.summary() == "failed · 1/3 cells · cell 2 raised ZeroDivisionError: division by zero"


def test_a_finished_job_is_never_revived_and_late_events_still_count() -> None:
    p = fold_all([CellStarted(index=0, total=2, source_first_line="x"), Finished(status="cancelled")])
    later = fold(p, StatusChanged(status="running"))
    assert later.status == "cancelled" and later.events_seen == p.events_seen + 1
    assert p.running_cell is None


def test_failed_cells_do_not_count_as_done() -> None:
    p = fold_all([CellFinished(index=0, total=2, duration=0.1), CellFinished(index=1, total=2, duration=0.1, ok=False)])
    assert p.cells_done == 1


def test_the_log_keeps_the_latest_lines() -> None:
    p = fold_all((Log(text=f"{i}\n") for i in range(10)), JobProgress(max_log_lines=3))
    assert p.log == ("7", "8", "9") and p.log_lines_total == 10
    assert fold(replace(p, max_log_lines=0), Log(text="x")).log == ()


@pytest.mark.parametrize("job", _jobs(), ids=lambda j: j["name"])
def test_the_text_view_and_the_widget_show_the_same_progress(job: dict[str, Any]) -> None:
    pytest.importorskip("ipywidgets")
    from jupyter_containerize.widgets import JobView

    events = _events(job)
    out = io.StringIO()
    text, widget = TextJobView(out=out), JobView()
    for event in events:
        text.feed(event)
        widget.feed(event)
    expected = fold_all(events)
    assert text.model == widget.model == expected
    assert _shown(expected) == job["expect"]
    # ... and each draws it: the widget's bars and labels, the text view's last line.
    assert [widget.build_bar.value, widget.build_bar.max] == job["expect"]["build"]
    assert [widget.run_bar.value, widget.run_bar.max] == job["expect"]["cells"]
    assert widget.build_label.value == expected.build_text() and widget.run_label.value == expected.run_text()
    assert job["expect"]["status"] in widget.header.value
    last = out.getvalue().rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith(f"job {job['expect']['status']}") and job["expect"]["error"] in last


def test_the_cli_text_progress_folds_the_same_way() -> None:
    events = _events(_jobs()[0])
    progress = TextProgress(io.StringIO())
    for event in events:
        progress(event)
    assert progress.progress == fold_all(events)
