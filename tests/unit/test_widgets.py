"""The job view model and widgets, fed by events alone (no engine, no front end)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.events import (
    BuildFinished,
    BuildLog,
    BuildStarted,
    BuildStep,
    CellFinished,
    CellStarted,
    Event,
    Finished,
    LayerCached,
    Log,
    MetricLogged,
    NotebookStarted,
    PackagesProgress,
    StatusChanged,
)
from jupyter_containerize.progress import JobProgress, fold
from jupyter_containerize.widgets import TextJobView, follow, jobs_html, links_html, widgets_available


def _job_events() -> list[Event]:
    t = 1000.0
    return [
        StatusChanged(status="queued", time=t),
        StatusChanged(status="building", time=t + 1),
        BuildStarted(tag="jc/x:abc", total_steps=3, time=t + 2),
        BuildStep(index=1, total=3, instruction="FROM python", time=t + 3),
        LayerCached(index=1, time=t + 3.5),
        BuildStep(index=2, total=3, instruction="RUN uv pip install", time=t + 4),
        PackagesProgress(phase="installed", count=12, time=t + 5),
        BuildLog(line="Installed 12 packages", time=t + 5.5),
        BuildFinished(image_id="sha256:1", tag="jc/x:abc", cached=False, steps_run=2, seconds=4.0, time=t + 6),
        StatusChanged(status="running", time=t + 7),
        NotebookStarted(total_cells=2, time=t + 8),
        CellStarted(index=0, total=2, source_first_line="import sklearn", time=t + 9),
        Log(text="hello\nworld\n", time=t + 9.5),
        CellFinished(index=0, total=2, duration=1.0, time=t + 10),
        CellStarted(index=1, total=2, source_first_line="model.fit(X, y)", time=t + 11),
        MetricLogged(name="accuracy", value=0.93, time=t + 12),
        CellFinished(index=1, total=2, duration=1.0, time=t + 13),
        Finished(status="succeeded", exit_code=0, outputs=("/o/quickstart.ipynb", "/o/model.pkl"), time=t + 20),
    ]


def test_model_follows_a_whole_job() -> None:
    m = JobProgress()
    events = _job_events()
    for e in events[:4]:
        m = fold(m, e)
    assert m.status == "building" and m.image_tag == "jc/x:abc"
    assert m.build_text() == "step 1/3: FROM python"
    for e in events[4:12]:
        m = fold(m, e)
    assert m.build_done and m.build_step == m.build_total == 3
    assert m.run_text() == "cell 1 of 2: import sklearn"
    for e in events[12:]:
        m = fold(m, e)
    assert m.done and m.status == "succeeded"
    assert m.cells_done == 2 and m.cell_total == 2 and m.running_cell is None
    assert list(m.log) == ["Installed 12 packages", "hello", "world"]
    assert m.metrics == {"accuracy": 0.93}
    assert m.output_notebook() == "/o/quickstart.ipynb"
    assert m.elapsed() == 20.0 and m.elapsed_text() == "0:00:20"
    assert m.summary("abc") == "job abc succeeded · 2/2 cells · accuracy=0.93"


def test_model_keeps_a_bounded_log_and_counts_all_lines() -> None:
    m = JobProgress(max_log_lines=5)
    for i in range(50):
        m = fold(m, Log(text=f"line {i}\n"))
    assert list(m.log) == [f"line {i}" for i in range(45, 50)]
    assert m.log_lines_total == 50


def test_model_failure_keeps_error_cell_and_traceback() -> None:
    m = JobProgress()
    for e in [NotebookStarted(total_cells=3),
              CellStarted(index=0, total=3, source_first_line="x = 1"),
              CellFinished(index=0, total=3, duration=0.1),
              CellStarted(index=1, total=3, source_first_line="1/0"),
              CellFinished(index=1, total=3, duration=0.1, ok=False),
              Finished(status="failed", exit_code=1, error="ZeroDivisionError: division by zero", failing_cell=1,
                       traceback="Traceback ...\nZeroDivisionError")]:
        m = fold(m, e)
    assert (m.status, m.failing_cell, m.cells_done) == ("failed", 1, 1)
    assert "ZeroDivisionError" in m.summary()
    # A late StatusChanged never revives a finished job.
    assert fold(m, StatusChanged(status="running")).status == "failed"


def test_links_are_relative_to_the_kernel_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    m = fold(JobProgress(), Finished(status="succeeded", outputs=(str(tmp_path / "nb.jc-jobs/abc/a_report.ipynb"),
                                                                  str(tmp_path / "nb.jc-jobs/abc/model.pkl"),
                                                                  str(tmp_path / "nb.jc-jobs/abc/nb.abc.ipynb"))))
    text = links_html(m.outputs, job_id="abc")
    assert 'href="nb.jc-jobs/abc/nb.abc.ipynb"' in text and 'href="nb.jc-jobs/abc/model.pkl"' in text
    # the job's own notebook (<stem>.<job id>.ipynb) is the output notebook; one the notebook wrote is an artifact
    notebook, artifacts = text.split("<br>")[:2]
    assert "nb.abc.ipynb" in notebook and "a_report.ipynb" in artifacts
    assert m.output_notebook("abc") == str(tmp_path / "nb.jc-jobs/abc/nb.abc.ipynb")


class _Anchors(HTMLParser):
    """The links in an HTML text: each ``<a>``'s attributes and text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append((dict(attrs), ""))

    def handle_data(self, data: str) -> None:
        if self.links and not self.links[-1][1]:
            self.links[-1] = (self.links[-1][0], data)


def test_output_links_are_relative_to_the_notebook_and_open_in_the_same_jupyterlab(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JupyterLab resolves a relative href in an output against the showing notebook's folder and opens it in
    a tab; an absolute path, or target="_blank", would open a second JupyterLab in a new browser tab."""
    notebook = tmp_path / "nb" / "analysis.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))  # as jupyter_server starts the notebook's kernel
    monkeypatch.chdir(tmp_path)  # the kernel changed its folder: links still follow the notebook's
    jobs = tmp_path / "nb" / "analysis.jc-jobs" / "abc"
    outputs = (str(jobs / "analysis.abc.ipynb"), str(jobs / "my plot#1.png"), str(tmp_path / "data" / "out.csv"))
    links = _Anchors(links_html(outputs, "/elsewhere/out", job_id="abc")).links
    assert [(a["href"], text) for a, text in links] == [
        ("analysis.jc-jobs/abc/analysis.abc.ipynb", "analysis.abc.ipynb"),
        ("analysis.jc-jobs/abc/my%20plot%231.png", "my plot#1.png"),  # quoted: '#' is no fragment
        ("../data/out.csv", "out.csv"),  # outside the notebook's folder, still under the server root
    ]
    assert all("target" not in a and a["class"] == "jc-output-link" for a, _ in links)
    # Without a session (a plain kernel), the kernel's folder.
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert _Anchors(links_html(outputs[:1], job_id="abc")).links[0][0]["href"] == "nb/analysis.jc-jobs/abc/analysis.abc.ipynb"


def test_widget_links_are_an_output_that_jupyterlab_renders() -> None:
    """The view's links are HTML displayed in an ipywidgets Output (rendered by JupyterLab's rendermime, whose
    link handler opens files in the docmanager), set once, not again at every tick."""
    pytest.importorskip("ipywidgets")
    import ipywidgets as w

    from jupyter_containerize.widgets import JobView

    view = JobView(None, title="links")
    assert isinstance(view.links, w.Output) and view.links.outputs == ()
    view.link_base = "/o"
    view.feed(Finished(status="succeeded", outputs=("/o/a.jc-jobs/x/a.x.ipynb",), time=1.0))
    (shown,) = view.links.outputs
    assert shown["output_type"] == "display_data"
    assert 'href="a.jc-jobs/x/a.x.ipynb"' in shown["data"]["text/html"] == view.links_shown
    view.render(force=True)
    assert view.links.outputs[0] is shown


class FakeJob:
    """Just enough of jobs.manager.Job for ``follow``: a store backlog plus live subscribers."""

    def __init__(self, backlog: list[Event]) -> None:
        self.id = "fake"
        self.backlog = backlog
        self.subscribers: list[Callable[[Event], None]] = []
        self.cancelled = False
        self.on_events: Callable[[], None] = lambda: None

    def subscribe(self, cb: Callable[[Event], None]) -> Callable[[], None]:
        self.subscribers.append(cb)
        return lambda: self.subscribers.remove(cb)

    def events(self, after: int = 0) -> Iterator[tuple[int, Event]]:
        self.on_events()  # a live event may arrive while the backlog is read
        return iter(list(enumerate(self.backlog, 1)))

    def emit(self, event: Event) -> None:
        self.backlog.append(event)
        for cb in list(self.subscribers):
            cb(event)

    def cancel(self) -> None:
        self.cancelled = True


def test_follow_replays_backlog_then_live_events_once_each_in_order() -> None:
    events = _job_events()
    job = FakeJob(events[:3])
    seen: list[Event] = []
    # An event recorded (and published) while the backlog is being read is delivered exactly once.
    job.on_events = lambda: job.emit(events[3])
    unsubscribe = follow(job, seen.append)  # type: ignore[arg-type]
    job.on_events = lambda: None
    for e in events[4:]:
        job.emit(e)
    assert seen == events
    unsubscribe()
    assert job.subscribers == []


def test_text_view_prints_the_cli_lines() -> None:
    out = io.StringIO()
    job = FakeJob([])
    view = TextJobView(job, out=out)  # type: ignore[arg-type]
    for e in _job_events():
        job.emit(e)
    text = out.getvalue()
    assert "[building]" in text and "step 2/3: RUN uv pip install" in text
    assert "cell 2/2: model.fit(X, y)" in text and "metric accuracy = 0.93" in text
    assert text.rstrip().endswith("job succeeded (exit code 0)")
    assert "Installed 12 packages" not in text  # build log lines only when verbose
    assert view.wait(0) and job.subscribers == []


def test_text_view_rate_limits_package_chatter() -> None:
    out = io.StringIO()
    job = FakeJob([])
    TextJobView(job, out=out)  # type: ignore[arg-type]
    for i in range(200):
        job.emit(PackagesProgress(phase="downloading", count=i))
    assert out.getvalue().count("\n") <= 2


def test_widgets_only_with_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    class Shell:
        kernel = object()

    monkeypatch.delenv("JC_NO_WIDGETS", raising=False)
    assert widgets_available(Shell())
    assert not widgets_available(Shell(), text=True)
    assert not widgets_available(object())  # terminal IPython: no kernel
    monkeypatch.setenv("JC_NO_WIDGETS", "1")
    assert not widgets_available(Shell())


def test_widget_view_shows_the_final_progress_and_cancels() -> None:
    pytest.importorskip("ipywidgets")
    from jupyter_containerize.widgets import JobView

    job = FakeJob([])
    view = JobView(job)  # type: ignore[arg-type]
    events = _job_events()
    for e in events[:12]:
        job.emit(e)
    view.render(force=True)
    assert "cell 1 of 2" in view.run_label.value and view.build_bar.value == view.build_bar.max == 3
    assert not view.cancel_button.disabled
    view.cancel_button.click()
    assert job.cancelled and view.cancel_button.disabled
    for e in events[12:]:
        job.emit(e)
    assert view.wait(0)
    assert view.run_bar.value == view.run_bar.max == 2 and view.run_bar.bar_style == "success"
    assert "succeeded" in view.header.value and "accuracy" in view.metrics.value
    assert "quickstart.ipynb" in view.links_shown
    assert "hello" in view.log.value
    view.log_button.click()
    assert "full log" in view.full_log.value


def test_widget_updates_from_another_thread() -> None:
    pytest.importorskip("ipywidgets")
    from jupyter_containerize.widgets import JobView

    job = FakeJob([])
    view = JobView(job)  # type: ignore[arg-type]

    def emit_all() -> None:
        for e in _job_events():
            job.emit(e)

    worker = threading.Thread(target=emit_all)
    worker.start()
    worker.join(10)
    assert view.wait(5) and "succeeded" in view.header.value


def test_jobs_html_lists_status_parameters_and_metrics() -> None:
    from jupyter_containerize.jobs.store import JobRecord

    r = JobRecord(id="abc", notebook="/x/q.ipynb", created=1.0, updated=2.0, status="succeeded",
                  parameters={"lr": 0.1}, metrics={"accuracy": 0.91234}, started=1.0, finished=3.5)
    text = jobs_html([r])
    assert "abc" in text and "succeeded" in text and "lr=0.1" in text and "accuracy=0.9123" in text
    assert "2.5 s" in text


@pytest.fixture()
def closing_widgets() -> Iterator[None]:
    """Close the test's widgets when it ends (closed at interpreter exit instead, they print tracebacks)."""
    w = pytest.importorskip("ipywidgets")
    yield
    w.Widget.close_all()


class EndingJob(FakeJob):
    """A FakeJob whose ``wait`` returns once its Finished event was emitted (as the store's record would)."""

    def __init__(self, job_id: str) -> None:
        super().__init__([])
        self.id = job_id
        self.ended = threading.Event()

    def emit(self, event: Event) -> None:
        super().emit(event)
        if isinstance(event, Finished):
            self.ended.set()

    def wait(self, timeout: float | None = None) -> None:
        self.ended.wait(timeout)


def _sweep_records() -> list[Any]:
    from jupyter_containerize.jobs.store import JobRecord

    return [JobRecord(id=job_id, notebook="/nb/t.ipynb", created=t, updated=t, status="succeeded", sweep_id="sweep-9",
                      name=f"study lr={lr}", parameters={"lr": lr}, metrics={"accuracy": acc}, started=t, finished=t + 2)
            for job_id, t, lr, acc in (("j1", 1.0, 0.1, 0.7), ("j2", 2.0, 0.01, 0.8))]


def test_sweep_view_shows_the_comparison_once_every_job_ended(closing_widgets: None) -> None:
    from jupyter_containerize.comparison import VEGA_LITE_MIME, compare
    from jupyter_containerize.widgets import SweepView

    jobs = [EndingJob("j1"), EndingJob("j2")]
    view = SweepView(jobs, lambda: compare(_sweep_records()), title="sweep sweep-9 of 2 jobs",  # type: ignore[arg-type]
                     names={"j1": "study lr=0.1", "j2": "study lr=0.01"})
    assert "study lr=0.01" in view.views[1].header.value and "sweep-9" in view.header.value
    jobs[0].emit(Finished(status="succeeded"))
    assert not view.wait(0.3)  # one job still runs: no comparison yet
    assert view.comparison is None and view.plot.outputs == () and "when the 2 jobs have ended" in view.table.value
    jobs[1].emit(Finished(status="succeeded"))
    assert view.wait(10) and view.error == ""
    assert view.comparison is not None and view.comparison.best is not None and view.comparison.best.job_id == "j2"
    table = view.table.value
    assert table.count("jc-best") == 1 and "★" in table and table.index("j2") < table.index("j1")
    assert "metric accuracy, higher is better" in table
    (output,) = view.plot.outputs
    assert output["output_type"] == "display_data"
    spec = output["data"][VEGA_LITE_MIME]
    assert [(v["job"], v["value"], v["best"]) for v in spec["data"]["values"]] == [("j2", 0.8, True), ("j1", 0.7, False)]
    assert output["data"]["text/plain"].startswith("Vega-Lite plot: accuracy by lr")
    assert output["metadata"][VEGA_LITE_MIME]["embed_options"]["renderer"] == "svg"


def test_sweep_view_says_why_it_could_not_compare(closing_widgets: None) -> None:
    from jupyter_containerize.errors import JobNotFound
    from jupyter_containerize.widgets import SweepView

    def missing() -> Any:
        raise JobNotFound("No sweep 'sweep-9' in the store")

    job = EndingJob("j1")
    view = SweepView([job], missing)  # type: ignore[list-item]
    job.emit(Finished(status="failed"))
    assert view.wait(10) and view.comparison is None and view.plot.outputs == ()
    assert view.error == "No sweep 'sweep-9' in the store" and "could not be compared" in view.table.value


def test_plot_bundle_needs_a_ranked_run() -> None:
    from jupyter_containerize.comparison import compare
    from jupyter_containerize.widgets import plot_bundle

    records = _sweep_records()
    for r in records:
        r.status = "failed"
    assert plot_bundle(compare(records)) is None


def test_jobs_html_and_the_text_table_show_names_and_sweeps(capsys: Any) -> None:
    from jupyter_containerize.cli import _print_table

    records = _sweep_records()
    assert "study lr=0.1" in jobs_html(records)
    _print_table(records)
    head, first, _ = capsys.readouterr().out.splitlines()
    assert head.split()[5:8] == ["NAME", "SWEEP", "PARAMETERS"] and "study lr=0.1" in first and "sweep-9" in first
