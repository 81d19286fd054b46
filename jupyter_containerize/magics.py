"""``%containerize`` and ``%%containerize``: the CLI's subcommands inside a notebook.

Both parse their options with :mod:`jupyter_containerize.options` (the CLI's own
parser), capture the environment in-process from the live kernel, and show
progress with the event-fed views of :mod:`jupyter_containerize.widgets`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .errors import ContainerizeError, JobError, NotebookError, OptionError, RemoteCellError
from .events import Finished, StatusChanged
from .jobs import commands
from .jobs.queries import compare_sweep, list_jobs
from .options import HelpShown, ParsedCommand, build_parser, parse, split_line
from .widgets import AnyView, JobsTable, SweepView, TextJobView, display_comparison, make_view, widgets_available

if TYPE_CHECKING:
    from .jobs.manager import Job, JobManager
    from .jobs.store import JobRecord
    from .jobspec import JobSpec

NOTEBOOK_COMMANDS = ("run", "build", "dockerfile", "export", "schedule")
FINISH_GRACE_SECONDS = 10.0  # the store says "done" just before the Finished event reaches the views

_MAGIC_HELP = """Run the current notebook (or one cell) as a reproducible container job.

Line magic::

    %containerize run [--gpus all] [-v ./data:/data] [-p lr=0.01] [--wait] ...
    %containerize build | dockerfile | export DIR | verify
    %containerize jobs | logs JOB | stop JOB | rm JOB
    %containerize schedule --cron '0 3 * * *' [run options] | schedules | pause ID | resume ID | unschedule ID

Cell magic::

    %%containerize [run options] [--inputs a,b] [--outputs model,score]
    <code run in the container; the outputs come back into the kernel>

Magic-only options (besides the CLI's, listed below):

  --notebook PATH   the notebook to use when it cannot be found automatically
  --text            plain-text progress instead of widgets (also: JC_NO_WIDGETS=1)
  --inputs a,b      (cell magic) variables sent into the job (cloudpickle)
  --outputs x,y     (cell magic) variables brought back when the job succeeds

``run`` does not block: the job view updates while other cells run. ``--wait``
blocks until the job ends and returns its record.
"""


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise KeyError(name)


def magic_help() -> str:
    """The magic's docstring: its own notes plus the CLI parser's help (one source of flags)."""
    return "\n".join([_MAGIC_HELP, build_parser().format_help(), _subparser("run").format_help()])


def extract_option(argv: list[str], flag: str) -> tuple[str | None, list[str]]:
    """Remove ``flag VALUE`` / ``flag=VALUE`` from ``argv``; the last one wins."""
    value: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise OptionError(f"{flag} needs a value", f"Write it like {flag} VALUE.")
            value = argv[i + 1]
            i += 2
            continue
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def extract_flag(argv: list[str], flag: str) -> tuple[bool, list[str]]:
    """Remove a boolean ``flag`` from ``argv``."""
    return flag in argv, [a for a in argv if a != flag]


@dataclass
class JobResult:
    """The value of ``%containerize run --wait``: the finished job's record."""

    record: JobRecord

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def ok(self) -> bool:
        return self.record.status == "succeeded"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    def __repr__(self) -> str:
        r = self.record
        text = f"<job {r.id} {r.status}"
        if r.duration is not None:
            text += f" in {r.duration:.1f} s"
        if r.metrics:
            text += "; " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in r.metrics.items())
        if r.error:
            text += f"; {r.error}"
        if r.output_dir:
            text += f"; outputs in {r.output_dir}"
        return text + ">"


def _warn(warning: str) -> None:
    print(f"warning: {warning}", file=sys.stderr)


def show_error(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
               tb_offset: int | None = None) -> list[str]:
    """IPython custom exception handler: one line for a predictable failure, plus a remote traceback."""
    stb: list[str] = []
    if isinstance(value, RemoteCellError) and value.traceback:
        stb += ["Traceback in the container:", *value.traceback.splitlines(), ""]
    stb.append(f"{etype.__name__}: {value}")
    shell._showtraceback(etype, value, stb)
    return stb


@magics_class
class ContainerizeMagics(Magics):
    """The ``containerize`` line and cell magic."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self._manager: JobManager | None = None
        self.views: dict[str, AnyView] = {}
        self.last_view: AnyView | None = None
        self.last_sweep: SweepView | None = None
        self.last_cell_time: float | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def manager(self) -> JobManager:
        """The kernel's job manager (one per kernel, so views get live events)."""
        if self._manager is None:
            from .jobs.manager import JobManager

            self._manager = JobManager()
        return self._manager

    def post_run_cell(self, result: Any = None) -> None:
        """Remember when the kernel last finished a cell (for the unsaved-changes warning)."""
        self.last_cell_time = time.time()

    def _user_ns(self) -> dict[str, Any]:
        return dict(self.shell.user_ns) if self.shell is not None else {}

    def _use_widgets(self, text: bool) -> bool:
        return widgets_available(self.shell, text)

    def _current_notebook(self, explicit: str | None) -> Path:
        from .notebook_path import find_notebook

        return find_notebook(self._user_ns(), explicit)

    def _warn_unsaved(self, notebook: Path) -> None:
        from .notebook_path import unsaved_warning

        warning = unsaved_warning(notebook, self.last_cell_time)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)

    # -- the magic ---------------------------------------------------------------------------------
    @line_cell_magic
    def containerize(self, line: str = "", cell: str | None = None) -> Any:
        if cell is None:
            return self.line(line)
        return self.cell(line, cell)

    def line(self, line: str) -> Any:
        """``%containerize SUBCOMMAND [options]``."""
        argv = split_line(line)
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(magic_help())
            return None
        explicit, argv = extract_option(argv, "--notebook")
        text, argv = extract_flag(argv, "--text")
        cmd = self._parse(argv, explicit)
        if cmd is None:
            return None
        handler = getattr(self, "do_" + cmd.command.replace("-", "_"))
        return handler(cmd, text)

    def _parse(self, argv: list[str], explicit: str | None) -> ParsedCommand | None:
        """Parse with the CLI's parser; find the current notebook only when one is needed."""
        sub = argv[0] if argv else ""
        wants_notebook = sub in NOTEBOOK_COMMANDS or (sub == "verify" and _verify_target(argv) is None)
        given = any(a.endswith(".ipynb") and not a.startswith("-") for a in argv[1:])
        default: Path | None = None
        lookup_error: NotebookError | None = None
        if wants_notebook and (explicit or not given):
            try:
                default = self._current_notebook(explicit)
            except NotebookError as e:
                lookup_error = e
        try:
            cmd = parse(argv, default_notebook=default)
        except HelpShown as e:
            if str(e):
                print(e, end="")
            return None
        except OptionError as e:
            if lookup_error is not None and "needs a NOTEBOOK" in str(e):
                raise lookup_error from None
            raise
        if default is not None and not explicit and cmd.spec is not None and cmd.spec.notebook == default:
            self._warn_unsaved(default)  # found, not named: it is the kernel's own notebook
        return cmd

    # -- run ---------------------------------------------------------------------------------------
    def _show(self, job: Job, use_widgets: bool, backend: str, name: str = "") -> AnyView:
        view = make_view(job, use_widgets, backend=backend, name=name)
        self.views[job.id] = view
        self.last_view = view
        return view

    def _wait(self, job: Job, view: AnyView | None = None) -> JobRecord:
        """Block until the job ends; Ctrl-C (interrupt the kernel) cancels it."""
        try:
            record = job.wait()
        except KeyboardInterrupt:
            print(f"cancelling job {job.id} …", file=sys.stderr)
            record = commands.cancel(job)
        if view is not None:
            view.wait(FINISH_GRACE_SECONDS)
        return record

    def do_run(self, cmd: ParsedCommand, text: bool) -> Any:
        """Start the notebook as a job; with ``--wait`` block and return its record."""
        spec = cmd.spec
        assert spec is not None
        use_widgets = self._use_widgets(text)
        if spec.sweep:
            return self._sweep(spec, use_widgets)
        job = self.manager.submit(spec, in_process=True)
        view = self._show(job, use_widgets, spec.backend, spec.name)
        if not spec.wait:
            if not use_widgets:
                named = f" ({spec.name})" if spec.name else ""
                print(f"job {job.id}{named} started; it keeps running while you work "
                      f"(follow with %containerize logs -f {job.id})")
            return None
        return JobResult(self._wait(job, view))

    def _sweep(self, spec: JobSpec, use_widgets: bool) -> Any:
        """One job per combination; the image is built once (the manager's coordinator thread).

        Once every job ended, the sweep's comparison (table and plot) shows under the job views; in
        text mode it is displayed when ``--wait`` waited for them, else the line to ask for it is printed.
        """
        jobs = self.manager.submit_sweep(spec, in_process=True)
        records = [self.manager.store.get(j.id) for j in jobs]
        sweep_id = records[0].sweep_id
        title = f"sweep {sweep_id} of {len(jobs)} jobs (one shared image)" if sweep_id else "one job"
        sweep_view: SweepView | None = None
        if use_widgets and sweep_id:
            from IPython.display import display

            sweep_view = SweepView(jobs, partial(compare_sweep, self.manager.store, sweep_id), backend=spec.backend,
                                   title=title, names={r.id: r.name for r in records})
            for job, view in zip(jobs, sweep_view.views, strict=True):
                self.views[job.id] = view
            display(sweep_view.widget)  # type: ignore[no-untyped-call]
            views: list[AnyView] = list(sweep_view.views)
            self.last_sweep = sweep_view
        else:
            if not use_widgets:
                print(title)
            views = [self._show(j, use_widgets, spec.backend, r.name) for j, r in zip(jobs, records, strict=True)]
        if not spec.wait:
            if not use_widgets and sweep_id:
                print(f"compare them once they ended: %containerize jobs --sweep {sweep_id}")
            return None
        results = [JobResult(self._wait(j, v)) for j, v in zip(jobs, views, strict=True)]
        if sweep_view is not None:
            sweep_view.wait(FINISH_GRACE_SECONDS)
        elif sweep_id:
            display_comparison(compare_sweep(self.manager.store, sweep_id), plot=self._has_front_end())
        return results

    def _has_front_end(self) -> bool:
        """A kernel with a front end that may draw rich output (not terminal IPython)."""
        return getattr(self.shell, "kernel", None) is not None

    # -- build / dockerfile / export / verify --------------------------------------------------------
    def do_build(self, cmd: ParsedCommand, text: bool) -> str:
        """Capture in-process and build the image, showing the build's progress."""
        spec = cmd.spec
        assert spec is not None
        view = make_view(None, self._use_widgets(text), backend=spec.backend, title=f"build {spec.notebook.name}")
        view.feed(StatusChanged(status="building"))
        try:
            image = commands.build(spec, view.feed, in_process=True, on_warning=_warn,
                                   on_push=lambda: view.feed(StatusChanged(status="pushing")))
        except ContainerizeError as e:
            view.feed(Finished(status="failed", error=str(e)))
            raise
        view.feed(Finished(status="succeeded"))
        print(image.reference)
        return str(image.reference)

    def do_dockerfile(self, cmd: ParsedCommand, text: bool) -> None:
        """Show the generated Dockerfile (highlighted), or write the build context with ``-o``."""
        spec = cmd.spec
        assert spec is not None
        out = cmd.args.get("output_dir")
        result = commands.dockerfile(spec, Path(out) if out else None, in_process=True, on_warning=_warn)
        if result.path is not None:
            print(result.summary())
        elif getattr(self.shell, "kernel", None) is not None:
            from IPython.display import Code, display

            display(Code(result.dockerfile, language="docker"))  # type: ignore[no-untyped-call]
        else:
            print(result.dockerfile, end="")

    def do_export(self, cmd: ParsedCommand, text: bool) -> None:
        assert cmd.spec is not None
        print(f"exported to {commands.export(cmd.spec, cmd.args.get('dest'))}")

    def do_verify(self, cmd: ParsedCommand, text: bool) -> None:
        from .verify import verify

        report = verify(cmd.spec, cmd.args.get("target"), rtol=cmd.args.get("rtol", 1e-6),
                        against=cmd.args.get("against"), runs=cmd.args.get("runs", 2), manager=self.manager)
        print(report.text())
        if not report.ok:
            raise JobError("The rebuilt environment did not reproduce the job", "See the report above.")

    def do_base_image(self, cmd: ParsedCommand, text: bool) -> None:
        from .textview import TextProgress

        print(commands.base_image(cmd.args.get("python"), tag=cmd.args.get("tag"), force=cmd.args.get("force", False),
                                  on_event=TextProgress()))

    # -- jobs / logs / stop / rm --------------------------------------------------------------------
    def do_jobs(self, cmd: ParsedCommand, text: bool) -> Any:
        """Recent jobs: a table with cancel / re-run / open-output actions; ``--sweep ID``: the sweep compared."""
        args = cmd.args
        if args.get("sweep") is not None:
            comparison = compare_sweep(self.manager.store, args["sweep"], metric=args.get("metric"),
                                       direction=args.get("direction"))
            exported = comparison.export(as_json=bool(args.get("json")), as_csv=bool(args.get("csv")))
            if exported is not None:
                print(exported, end="")
            else:
                display_comparison(comparison, plot=self._has_front_end())
            return None
        records = list_jobs(self.manager, limit=args.get("limit", 20), status=args.get("status"),
                            notebook=args.get("notebook_path"), name=args.get("name"))
        if cmd.args.get("json"):
            print(json.dumps([r.to_dict() for r in records], indent=1, default=str))
            return None
        if self._use_widgets(text):
            from IPython.display import display

            table = JobsTable(records, on_cancel=self.cancel_job, on_rerun=self.rerun_job)
            display(table.widget)  # type: ignore[no-untyped-call]
            return table
        from .cli import _print_table

        _print_table(records)
        return None

    def cancel_job(self, job_id: str) -> None:
        """Cancel a job (this kernel's, or another process's through the store)."""
        self.manager.cancel(job_id)
        print(f"cancel requested for job {job_id}")

    def rerun_job(self, job_id: str) -> Job:
        """Submit a job again with the same spec and show its view."""
        from .jobspec import JobSpec

        record = self.manager.store.get(job_id)
        spec = JobSpec.from_dict(record.spec)
        if not spec.notebook.is_file():
            raise NotebookError(f"The job's notebook {spec.notebook} no longer exists", "Run it again from its notebook.")
        job = self.manager.submit(spec.with_changes(wait=False, detach=False, output_dir=None), in_process=True)
        self._show(job, self._use_widgets(False), spec.backend)
        return job

    def do_prune(self, cmd: ParsedCommand, text: bool) -> None:
        """What ``prune`` would remove; removed only with ``--yes`` (a cell has no terminal to ask in)."""
        from .jobs.retention import Retention

        args = cmd.args
        plan = commands.prune_plan(self.manager, Retention(keep_last=args["keep_last"],
                                                           older_than=args["older_than_seconds"]),
                                   all_images=args["all_images"], build_cache=args["build_cache"])
        if args["dry_run"] or plan.empty or not args["yes"]:
            print(json.dumps(plan.to_dict(), indent=1, default=str) if args["json"] else plan.text())
            if not (args["dry_run"] or plan.empty):
                print("nothing removed yet: run it again with --yes to remove all of this")
            return
        result = commands.prune_apply(self.manager, plan)
        print(json.dumps(result.to_dict(), indent=1, default=str) if args["json"] else result.text())

    def do_du(self, cmd: ParsedCommand, text: bool) -> None:
        usage = commands.disk_usage(self.manager)
        print(json.dumps(usage.to_dict(), indent=1, default=str) if cmd.args.get("json") else usage.text())

    # -- schedules (the Jupyter server starts their runs) ---------------------------------------------
    def do_schedule(self, cmd: ParsedCommand, text: bool) -> None:
        assert cmd.spec is not None
        print(commands.schedule(self.manager, cmd.spec, cmd.args["rule"]).summary())

    def do_schedules(self, cmd: ParsedCommand, text: bool) -> None:
        from .jobs.schedules import table

        rows = commands.schedules(self.manager)
        print(json.dumps([r.to_dict() for r in rows], indent=1, default=str) if cmd.args.get("json") else table(rows))

    def do_unschedule(self, cmd: ParsedCommand, text: bool) -> None:
        print(f"removed schedule {commands.unschedule(self.manager, cmd.args['schedule'])}")

    def do_pause(self, cmd: ParsedCommand, text: bool) -> None:
        print(commands.pause(self.manager, cmd.args["schedule"]).summary())

    def do_resume(self, cmd: ParsedCommand, text: bool) -> None:
        print(commands.resume(self.manager, cmd.args["schedule"]).summary())

    def do_logs(self, cmd: ParsedCommand, text: bool) -> None:
        """The job's events as text; ``-f`` follows it until it ends (interrupting the kernel cancels it)."""
        from .textview import TextProgress
        from .widgets import TextJobView

        job_id = cmd.args["job"]
        view = self.views.get(self.manager.store.get(job_id).id)
        if cmd.args.get("follow"):
            if view is not None and view.job is not None:
                self._wait(view.job, TextJobView(view.job))  # this kernel owns the job: follow it live
                return
            job = self.manager.attach(job_id)
            record = commands.follow(job, TextProgress(),
                                     on_cancel=lambda: print(f"cancelling job {job.id} …", file=sys.stderr))
            if record is not None and record.status == "failed" and record.error:
                print(f"error: {record.error}", file=sys.stderr)
            return
        progress = TextProgress()
        for event in commands.logs(self.manager, job_id):
            progress(event)

    def do_stop(self, cmd: ParsedCommand, text: bool) -> None:
        record = commands.stop(self.manager, cmd.args["job"])
        print(f"job {record.id} {record.status}")

    def do_rm(self, cmd: ParsedCommand, text: bool) -> None:
        job_id = commands.remove(self.manager, cmd.args["job"])
        self.views.pop(job_id, None)
        print(f"removed job {job_id}")

    # -- the cell magic -------------------------------------------------------------------------
    def cell(self, line: str, source: str) -> None:
        """``%%containerize``: run the cell in a job; bring ``--outputs`` back, raise its error here."""
        from .cellmagic import load_outputs, prepare_cell, remote_error, split_names

        argv = split_line(line)
        if argv and argv[0] == "run":
            argv = argv[1:]
        if any(a in ("-h", "--help") for a in argv):
            print(magic_help())
            return
        explicit, argv = extract_option(argv, "--notebook")
        inputs_text, argv = extract_option(argv, "--inputs")
        outputs_text, argv = extract_option(argv, "--outputs")
        text, argv = extract_flag(argv, "--text")
        inputs = split_names(inputs_text, "--inputs")
        outputs = split_names(outputs_text, "--outputs")
        for bad in ("--sweep", "-p", "--parameter", "-d", "--detach"):
            if any(a == bad or a.startswith(bad + "=") for a in argv):
                raise OptionError(f"%%containerize does not take {bad}", "Send values with --inputs instead.")
        try:
            notebook: Path | None = self._current_notebook(explicit)
        except NotebookError:
            if explicit:
                raise
            notebook = None  # capture from the cell's own imports
        assert self.shell is not None
        job_cell = prepare_cell(source, self.shell.user_ns, inputs, outputs, notebook)
        try:
            cmd = parse(["run", *argv], default_notebook=job_cell.capture_notebook)
        except HelpShown:
            job_cell.cleanup()
            return
        except BaseException:
            job_cell.cleanup()
            raise
        assert cmd.spec is not None
        job = self.manager.submit(cmd.spec, in_process=True, extra_modules=job_cell.extra_modules,
                                  command=job_cell.command, extra_mounts=job_cell.mounts)
        view = self._show(job, self._use_widgets(text), cmd.spec.backend)
        try:
            record = self._wait(job, view)
        finally:
            job_cell.cleanup_inputs()
        if record.status == "cancelled":
            raise JobError(f"Job {job.id} was cancelled", "Run the cell again to restart it.")
        if record.status != "succeeded":
            raise remote_error(view.model.error or record.error, view.model.failing_cell, view.model.traceback)
        values = load_outputs(Path(record.output_dir), outputs)
        self.shell.user_ns.update(values)
        if not isinstance(view, TextJobView):  # the widget folds the build away: the cell's own output, as a cell's
            _print_cell_output(job)
        took = f" in {record.duration:.1f} s" if record.duration is not None else ""
        back = f"; outputs: {', '.join(values)}" if values else ""
        print(f"job {job.id} succeeded{took}{back}")
        return


def _print_cell_output(job: Job) -> None:
    """What the cell printed in the job (its stdout and stderr), without the build's lines."""
    from .events import Log, NotebookStarted

    running = False
    for _, event in job.events():
        running = running or isinstance(event, NotebookStarted)
        if running and isinstance(event, Log) and not event.text.startswith("jupyter-containerize:"):
            (sys.stderr if event.stream == "stderr" else sys.stdout).write(event.text)


ContainerizeMagics.containerize.__doc__ = magic_help()


_MAGICS: list[Magics] = []


def current() -> ContainerizeMagics | None:
    """The registered magics instance (its ``views`` and ``last_view`` are handy in tests)."""
    return next((m for m in _MAGICS if isinstance(m, ContainerizeMagics)), None)


def load(shell: Any) -> None:
    """Register the magics, the last-cell clock and the one-line error display."""
    import os

    if os.environ.get("JC_JOB_ID"):
        from .injob import load_ipython_extension

        load_ipython_extension(shell)
        return
    magics = ContainerizeMagics(shell)
    shell.register_magics(magics)
    shell.events.register("post_run_cell", magics.post_run_cell)
    if not shell.custom_exceptions:
        shell.set_custom_exc((ContainerizeError,), show_error)
    _MAGICS.append(magics)


def unload(shell: Any) -> None:
    """Undo :func:`load`."""
    for magics in list(_MAGICS):
        if isinstance(magics, ContainerizeMagics):
            with contextlib.suppress(ValueError):
                shell.events.unregister("post_run_cell", magics.post_run_cell)
        _MAGICS.remove(magics)
    shell.magics_manager.magics["line"].pop("containerize", None)
    shell.magics_manager.magics["cell"].pop("containerize", None)
    if shell.custom_exceptions == (ContainerizeError,):
        shell.set_custom_exc((), None)


def _verify_target(argv: list[str]) -> str | None:
    """The NOTEBOOK|JOB that a ``verify`` line names, as the one parser reads it (option values are not one)."""
    try:
        known, _ = build_parser().parse_known_args(argv)
    except (ContainerizeError, SystemExit):  # a malformed line: the full parse reports it
        return None
    return getattr(known, "target", None)
