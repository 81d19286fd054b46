"""The job view: ipywidgets over the job's progress, fed only by job events.

What a view shows is a :class:`~jupyter_containerize.progress.JobProgress`, the one fold
of the job's events (:func:`~jupyter_containerize.progress.fold`, testable without a
front end). :class:`JobView` is a thin ipywidgets layer over it; :class:`TextJobView` is
the plain-text fallback built on :class:`~jupyter_containerize.textview.TextProgress`,
which folds the same way. Both are updated from the job's worker thread, so the kernel
stays free to run other cells.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .comparison import VEGA_LITE_MIME, Comparison
from .events import BuildLog, Event, Finished, Log
from .papermill_record import find_output_notebook
from .progress import JobProgress, fold
from .textview import TextProgress

if TYPE_CHECKING:
    from .jobs.manager import Job
    from .jobs.store import JobRecord

EventSink = Callable[[Event], None]
RENDER_INTERVAL = 0.25  # seconds between widget refreshes: many build-log lines, few messages
TICK_SECONDS = 1.0

STATUS_COLOURS = {
    "queued": "#757575", "building": "#1976d2", "pushing": "#1976d2", "running": "#7b1fa2",
    "succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#ef6c00",
}
# How JupyterLab's Vega renderer draws the plot: SVG (crisp, and each point carries an aria-label), no menu.
PLOT_METADATA = {VEGA_LITE_MIME: {"embed_options": {"renderer": "svg", "actions": False}}}


# -- feeding a view from a job ---------------------------------------------------------------------
def follow(job: Job, sink: EventSink) -> Callable[[], None]:
    """Feed ``sink`` every event of ``job``: those already recorded, then live ones, once each, in order.

    Subscribes first and buffers, replays the store's backlog, then drains the buffer
    without the events already replayed. Returns the unsubscribe function.
    """
    lock = threading.Lock()
    buffer: list[Event] | None = []

    def on_event(event: Event) -> None:
        with lock:
            if buffer is not None:
                buffer.append(event)
                return
        sink(event)

    unsubscribe = job.subscribe(on_event)
    backlog = [event for _, event in job.events(after=0)]
    seen = {(type(e).__name__, e.time) for e in backlog}
    for event in backlog:
        sink(event)
    with lock:
        pending, buffer = buffer or [], None
    for event in pending:
        if (type(event).__name__, event.time) not in seen:
            sink(event)
    return unsubscribe


def widgets_available(shell: Any = None, text: bool = False) -> bool:
    """Whether to draw widgets: an ipykernel front end, ipywidgets importable, not ``--text``/``JC_NO_WIDGETS``."""
    if text or os.environ.get("JC_NO_WIDGETS", "").strip() not in ("", "0"):
        return False
    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            return False
    if shell is None or getattr(shell, "kernel", None) is None:
        return False  # terminal IPython or plain Python: no front end to draw on
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def link_base() -> str:
    """The folder output links are relative to: that of the notebook this kernel runs (JupyterLab resolves a
    relative link in an output against the notebook's folder), else the kernel's working directory."""
    from .notebook_path import from_session_name

    notebook = from_session_name()
    return str(notebook.parent) if notebook is not None else os.getcwd()


def _link(path: str, base: str) -> str:
    """A link to ``path``, relative to ``base`` and URL-quoted, with no ``target``: JupyterLab's link handler
    opens it in a tab of the same JupyterLab (an absolute path or a new browser tab would be a second one)."""
    name = html.escape(Path(path).name)
    try:
        href = urllib.parse.quote(Path(os.path.relpath(path, base)).as_posix())
    except ValueError:  # another drive (Windows): no relative link reaches it
        return f'<code title="{html.escape(path)}">{name}</code>'
    return f'<a class="jc-output-link" href="{html.escape(href)}">{name}</a>'


def links_html(outputs: Sequence[str], output_dir: str = "", limit: int = 20, job_id: str = "",
               base: str | None = None) -> str:
    """Links to the output notebook (``<stem>.<job id>.ipynb``) and the artifacts (relative to the notebook's
    folder), and their folder.

    ``base``: the folder of the notebook that shows them (default: :func:`link_base`). Displayed as an
    output (``IPython.display`` or an ``ipywidgets.Output``), not as an ``ipywidgets.HTML`` value, which
    the browser alone resolves, against the page's URL.
    """
    if not outputs:
        return ""
    base = link_base() if base is None else base
    notebook = find_output_notebook(outputs, job_id)
    parts = []
    if notebook:
        parts.append(f"<b>output notebook:</b> {_link(notebook, base)}")
    artifacts = [p for p in outputs if p != notebook]
    if artifacts:
        shown = ", ".join(_link(p, base) for p in artifacts[:limit])
        more = f" and {len(artifacts) - limit} more" if len(artifacts) > limit else ""
        parts.append(f"<b>artifacts:</b> {shown}{more}")
    if output_dir:
        parts.append(f"<b>folder:</b> <code>{html.escape(output_dir)}</code>")
    return "<br>".join(parts)


def badge_html(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#757575")
    return (f'<span class="jc-status jc-status-{html.escape(status)}" style="background:{colour};color:white;'
            f'padding:1px 8px;border-radius:8px">{html.escape(status)}</span>')


class JobView:
    """The ipywidgets job view; ``widget`` is the top-level box, ``model`` the job's progress.

    Args:
        job: The job to follow (``None`` to feed events by hand, e.g. a build).
        backend: Backend name shown in the header.
        title: Header text when there is no job.
    """

    def __init__(self, job: Job | None = None, backend: str = "docker", title: str = "", name: str = "") -> None:
        import ipywidgets as w

        self.job = job
        self.job_id = job.id if job else ""
        self.name = name
        self.backend = backend
        self.model = JobProgress()
        self.output_dir = ""  # from the job's record at the end: not an event
        self.title = title
        self.finished = threading.Event()
        self._lock = threading.RLock()
        self._dirty = False
        self._last_render = 0.0
        self._unsubscribe: Callable[[], None] | None = None
        self.header = w.HTML()
        self.build_bar = w.IntProgress(value=0, min=0, max=1, description="build",
                                       layout=w.Layout(width="60%"))
        self.build_label = w.Label()
        self.run_bar = w.IntProgress(value=0, min=0, max=1, description="cells", layout=w.Layout(width="60%"))
        self.run_label = w.Label()
        self.elapsed = w.Label()
        self.metrics = w.HTML()
        self.log = w.HTML()
        self.full_log = w.HTML()
        # An Output, not an HTML widget: its HTML goes through JupyterLab's renderer, whose link handler opens
        # the output notebook in a tab of this JupyterLab (see links_html).
        self.links = w.Output()
        self.links_shown = ""  # the links' HTML last put in ``links``
        self.link_base = link_base()
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="danger",
                                      disabled=job is None, tooltip="Stop the job and its container")
        self.log_button = w.Button(description="Full log", icon="list", tooltip="Show every log line of the job")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.log_button.on_click(lambda _: self.show_full_log())
        self.widget = w.VBox([
            self.header,
            w.HBox([self.build_bar, self.build_label]),
            w.HBox([self.run_bar, self.run_label]),
            w.HBox([self.elapsed, self.cancel_button, self.log_button]),
            self.metrics, self.log, self.full_log, self.links,
        ], layout=w.Layout(border="1px solid #ddd", padding="4px"))
        self.widget.add_class("jc-job-view")
        self.render(force=True)
        if job is not None:
            self._unsubscribe = follow(job, self.feed)
            threading.Thread(target=self._tick, name=f"jc-view-{job.id}", daemon=True).start()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def feed(self, event: Event) -> None:
        """Apply one event and refresh (rate-limited; the end is always drawn)."""
        with self._lock:
            self.model = fold(self.model, event)
            self._dirty = True
            final = isinstance(event, Finished)
            if final and self.job is not None:
                with contextlib.suppress(Exception):  # a link is not worth breaking the view
                    self.output_dir = self.job.record.output_dir
            if final or time.monotonic() - self._last_render >= RENDER_INTERVAL:
                self.render(force=True)
            if final:
                self._send_full_state()
        if final:
            self.finished.set()
            if self._unsubscribe is not None:
                self._unsubscribe()

    def _send_full_state(self) -> None:
        # Changes made between two cells may have reached no one (nbclient, for one, listens
        # only while a cell runs): at the end, send every field once more.
        # The Output's outputs only: its whole state carries an empty msg_id, which nbclient (papermill's
        # executor) cannot take for an Output it never saw capture (AttributeError: no attribute 'msg_id').
        for child in (self.header, self.build_bar, self.build_label, self.run_bar, self.run_label, self.elapsed,
                      self.metrics, self.log, self.links, self.cancel_button):
            try:
                child.send_state("outputs" if child is self.links else None)
            except Exception:  # noqa: BLE001, S112 - no front end (closed comm): nothing to refresh
                continue

    def _tick(self) -> None:
        while not self.finished.wait(TICK_SECONDS):
            with self._lock:
                self.render(force=True)

    def render(self, force: bool = False) -> None:
        """Push the progress into the widgets."""
        with self._lock:
            if not (force or self._dirty):
                return
            m = self.model
            who = (f"job <code>{html.escape(self.job_id)}</code>" if self.job_id
                   else html.escape(self.title or "build"))
            if self.name:
                who += f" <i>{html.escape(self.name)}</i>"
            image = f" · image <code>{html.escape(m.image_tag)}</code>" if m.image_tag else ""
            self.header.value = f"<b>{who}</b>{image} · backend {html.escape(self.backend)} · {badge_html(m.status)}"
            self.build_bar.max = max(m.build_total, 1)
            self.build_bar.value = min(m.build_step, self.build_bar.max)
            self.build_bar.bar_style = "success" if m.build_done else ("danger" if m.status == "failed" else "info")
            self.build_label.value = m.build_text()
            self.run_bar.max = max(m.cell_total, 1)
            self.run_bar.value = min(m.cells_done, self.run_bar.max)
            self.run_bar.bar_style = {"succeeded": "success", "failed": "danger", "cancelled": "warning"}.get(
                m.status, "")
            self.run_label.value = m.run_text()
            self.elapsed.value = f"elapsed {m.elapsed_text()}"
            self.metrics.value = " · ".join(f"<b>{html.escape(k)}</b> {v:g}" for k, v in m.metrics.items())
            lines = "\n".join(m.log)
            if m.error:
                lines += ("\n" if lines else "") + f"error: {m.error}"
            self.log.value = (f'<pre style="max-height:14em;overflow:auto;font-size:85%;margin:0">'
                              f"{html.escape(lines)}</pre>") if lines else ""
            links = links_html(m.outputs, self.output_dir, job_id=self.job_id, base=self.link_base)
            if links != self.links_shown:  # not every tick: a link redrawn under the pointer misses its click
                self.links_shown = links
                # Output.outputs, not the context manager: this runs in a thread, outside any cell.
                self.links.outputs = ({"output_type": "display_data", "metadata": {},
                                       "data": {"text/html": links, "text/plain": "\n".join(m.outputs)}},) if links else ()
            self.cancel_button.disabled = m.done or self.job is None
            self._dirty = False
            self._last_render = time.monotonic()

    def cancel(self) -> None:
        """The Cancel button's handler: stop the job (and its container)."""
        if self.job is None or self.model.done:
            return
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"
        self.job.cancel()

    def show_full_log(self) -> None:
        """The Full log button's handler: every log line recorded in the store."""
        if self.job is None:
            text = "\n".join(self.model.log)
        else:
            lines: list[str] = []
            for _, event in self.job.events():
                if isinstance(event, Log):
                    lines.append(event.text.rstrip("\n"))
                elif isinstance(event, BuildLog):
                    lines.append(event.line)
            text = "\n".join(lines)
        self.full_log.value = (f'<details open><summary>full log ({text.count(chr(10)) + 1} lines)</summary>'
                               f'<pre style="max-height:30em;overflow:auto;font-size:85%">{html.escape(text)}</pre>'
                               "</details>")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the view drew the job's end."""
        return self.finished.wait(timeout)


class TextJobView:
    """Plain-text fallback: the CLI's lines (rate-limited), written as events arrive."""

    def __init__(self, job: Job | None = None, out: TextIO | None = None, verbose: bool = False) -> None:
        self.job = job
        self.finished = threading.Event()
        self._out = out
        self._progress = TextProgress(out=out, verbose=verbose)
        self._unsubscribe: Callable[[], None] | None = None
        if job is not None:
            self._unsubscribe = follow(job, self.feed)

    @property
    def model(self) -> JobProgress:
        """The job's progress, as the text view folded it (the same fold as the widget's)."""
        return self._progress.progress

    def feed(self, event: Event) -> None:
        # sys.stdout is looked up per line: the kernel routes it to the cell that is running now.
        self._progress.out = self._out or sys.stdout
        self._progress(event)
        if isinstance(event, Finished):
            self.finished.set()
            if self._unsubscribe is not None:
                self._unsubscribe()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)


AnyView = JobView | TextJobView


def make_view(job: Job | None, use_widgets: bool, backend: str = "docker", title: str = "", name: str = "") -> AnyView:
    """A widget view (displayed) or a text view."""
    if use_widgets:
        view = JobView(job, backend=backend, title=title, name=name)
        from IPython.display import display

        display(view.widget)  # type: ignore[no-untyped-call]
        return view
    return TextJobView(job)


# -- a sweep's comparison --------------------------------------------------------------------------
def plot_bundle(comparison: Comparison) -> dict[str, Any] | None:
    """The comparison's plot as a display bundle (Vega-Lite v5, which JupyterLab renders); None: nothing to plot."""
    spec = comparison.vega_lite()
    if spec is None:
        return None
    best = comparison.best
    text = f"Vega-Lite plot: {spec['title']['text']}" + (f" (best: job {best.job_id})" if best else "")
    return {VEGA_LITE_MIME: spec, "text/plain": text}


def display_comparison(comparison: Comparison, plot: bool = True) -> None:
    """Display the comparison: its table (HTML, or the text table where HTML is not shown) and, with ``plot``, the plot."""
    from IPython.display import display

    display({"text/html": comparison.html(), "text/plain": comparison.text()}, raw=True)  # type: ignore[no-untyped-call]
    bundle = plot_bundle(comparison) if plot else None
    if bundle is not None:
        display(bundle, raw=True, metadata=PLOT_METADATA)  # type: ignore[no-untyped-call]


class SweepView:
    """A sweep in the notebook: one job view per job, then, once every job ended, the comparison.

    The comparison is ``compare()`` (the store's, read when the last job ended): kept in
    ``comparison``, drawn in ``table`` (HTML, the best run marked) and ``plot`` (an Output holding
    the Vega-Lite bundle). Updated from a thread of its own, so the kernel stays free.

    Args:
        jobs: The sweep's jobs.
        compare: Makes the comparison once they all ended.
        names: Each job's name (job id -> name), shown in its view.
    """

    def __init__(self, jobs: Sequence[Job], compare: Callable[[], Comparison], backend: str = "docker",
                 title: str = "", names: dict[str, str] | None = None) -> None:
        import ipywidgets as w

        self.jobs = list(jobs)
        self.views = [JobView(j, backend=backend, name=(names or {}).get(j.id, "")) for j in self.jobs]
        self.comparison: Comparison | None = None
        self.error = ""
        self.compared = threading.Event()
        self.header = w.HTML(f"<b>{html.escape(title)}</b>")
        self.table = w.HTML(f"<i>the comparison shows here when the {len(self.jobs)} jobs have ended</i>")
        self.plot = w.Output()
        self.widget = w.VBox([self.header, *(v.widget for v in self.views), self.table, self.plot])
        self.widget.add_class("jc-sweep-view")
        threading.Thread(target=self._compare_when_done, args=(compare,), name="jc-sweep-view", daemon=True).start()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def _compare_when_done(self, compare: Callable[[], Comparison]) -> None:
        try:
            for job in self.jobs:
                job.wait()
            for view in self.views:  # the views draw the end just after the store records it
                view.wait(5)
            self.show(compare())
        except Exception as e:  # noqa: BLE001 - the view says what went wrong instead of a silent thread
            self.error = str(e)
            self.table.value = f'<span class="jc-error">the sweep could not be compared: {html.escape(str(e))}</span>'
        finally:
            self.compared.set()

    def show(self, comparison: Comparison) -> None:
        """Draw ``comparison``: the table, and the plot when there is one."""
        self.comparison = comparison
        self.table.value = comparison.html()
        bundle = plot_bundle(comparison)
        # Output.outputs, not the context manager: this runs in a thread, outside any cell.
        self.plot.outputs = ({"output_type": "display_data", "data": bundle, "metadata": PLOT_METADATA},) if bundle else ()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the comparison is drawn (or failed)."""
        return self.compared.wait(timeout)


# -- the jobs table ------------------------------------------------------------------------------
def _duration(record: JobRecord) -> str:
    return f"{record.duration:.1f} s" if record.duration is not None else "–"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def jobs_html(records: Sequence[JobRecord]) -> str:
    """A static HTML table of jobs (for front ends without widgets)."""
    rows = "".join(
        f"<tr><td><code>{html.escape(r.id)}</code></td><td>{html.escape(r.name)}</td><td>{badge_html(r.status)}</td>"
        f"<td>{html.escape(Path(r.notebook).name)}</td><td>{html.escape(_values(r.parameters))}</td>"
        f"<td>{_duration(r)}</td><td>{html.escape(_values(r.metrics))}</td></tr>"
        for r in records
    )
    return ("<table class='jc-jobs'><thead><tr><th>job</th><th>name</th><th>status</th><th>notebook</th><th>parameters</th>"
            f"<th>duration</th><th>metrics</th></tr></thead><tbody>{rows}</tbody></table>")


class JobsTable:
    """``%containerize jobs``: recent jobs with cancel / re-run / open-output actions.

    Args:
        records: The jobs to show, newest first.
        on_cancel: Called with a job id.
        on_rerun: Called with a job id.
    """

    def __init__(self, records: Sequence[JobRecord], on_cancel: Callable[[str], None],
                 on_rerun: Callable[[str], Any]) -> None:
        import ipywidgets as w

        self.records = list(records)
        self.detail = w.Output()
        cells: list[Any] = [w.HTML(f"<b>{h}</b>") for h in
                            ("job", "name", "status", "notebook", "parameters", "duration", "metrics", "")]
        self.buttons: dict[str, dict[str, Any]] = {}
        for r in self.records:
            cancel = w.Button(description="Cancel", icon="stop", disabled=r.done, layout=w.Layout(width="auto"))
            rerun = w.Button(description="Re-run", icon="redo", layout=w.Layout(width="auto"))
            output = w.Button(description="Output", icon="folder-open", disabled=not r.output_dir,
                              layout=w.Layout(width="auto"))
            cancel.on_click(lambda _b, job_id=r.id: self._act(on_cancel, job_id))
            rerun.on_click(lambda _b, job_id=r.id: self._act(on_rerun, job_id))
            output.on_click(lambda _b, rec=r: self.show_output(rec))
            self.buttons[r.id] = {"cancel": cancel, "rerun": rerun, "output": output}
            cells += [w.HTML(f"<code>{html.escape(r.id)}</code>"), w.HTML(html.escape(r.name)), w.HTML(badge_html(r.status)),
                      w.HTML(html.escape(Path(r.notebook).name)), w.HTML(html.escape(_values(r.parameters))),
                      w.HTML(_duration(r)), w.HTML(html.escape(_values(r.metrics))), w.HBox([cancel, rerun, output])]
        grid = w.GridBox(cells, layout=w.Layout(grid_template_columns=" ".join(["auto"] * 8),
                                                grid_gap="2px 12px"))
        self.widget = w.VBox([grid, self.detail])
        self.widget.add_class("jc-jobs-table")

    def _act(self, action: Callable[[str], Any], job_id: str) -> None:
        """Run a button's action; what it displays or prints lands under the table."""
        from .errors import ContainerizeError

        with self.detail:
            try:
                action(job_id)
            except ContainerizeError as e:
                print(f"error: {e}", file=sys.stderr)

    def show_output(self, record: JobRecord) -> None:
        """Links to the job's output notebook and artifacts."""
        from IPython.display import HTML, display

        self.detail.clear_output()
        with self.detail:
            display(HTML(links_html(record.outputs, record.output_dir, job_id=record.id) or f"job {html.escape(record.id)} has no outputs yet"))  # type: ignore[no-untyped-call]
