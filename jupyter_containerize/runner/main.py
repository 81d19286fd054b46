"""The in-container runner: execute one notebook headless and narrate it as events.

This file is copied into the image as ``/opt/jc/runner.py`` and run by the runner
venv's interpreter, where jupyter_containerize is *not* installed. It must therefore
import only the standard library, nbformat and nbclient. The kernel it starts is the
user's interpreter (kernelspec ``python3`` found through ``JUPYTER_PATH``).

Usage: ``python runner.py NOTEBOOK [--output-dir /output]``; parameters come from the
``JC_PARAMETERS`` environment variable (a JSON object) and are injected papermill-style. The
executed notebook is saved in the output folder as ``<stem>.<job id>.ipynb`` (``JC_JOB_ID``; see
``papermill_record.output_notebook_name``), so that it is never taken for the source notebook.

Every event is one stdout line, ``EVENT_PREFIX + json.dumps(dict)``, with exactly the
shape of ``jupyter_containerize.events.<Type>.to_dict()`` (a unit test checks this).

What the notebook writes in its working folder (the notebook's own, writable in the job
though the root filesystem is not) comes back: every save also copies the files it created
or changed there to the output folder, under the same relative paths (see :class:`WorkdirSync`).

Exit codes: 0 succeeded, 1 a cell failed (error, ``sys.exit(1)``, KeyboardInterrupt,
dead kernel), 2 runner-internal error, 143 SIGTERM (``docker stop``), 130 SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import stat
import sys
import time
import traceback as traceback_module
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

try:  # in the package
    from jupyter_containerize import papermill_record
    from jupyter_containerize.parameters_cell import INJECTED_TAG, assignments, is_injected, parameters_cell_index
except ImportError:  # in the image: copied beside this file (the runner's venv has no jupyter_containerize)
    import papermill_record  # type: ignore[no-redef]
    from parameters_cell import (  # type: ignore[no-redef]
        INJECTED_TAG,
        assignments,
        is_injected,
        parameters_cell_index,
    )

EVENT_PREFIX = "@@jc-event "  # must equal jupyter_containerize.events.EVENT_PREFIX
PARAMETERS_ENV = "JC_PARAMETERS"
JOB_ID_ENV = "JC_JOB_ID"  # names the executed notebook: <stem>.<job id>.ipynb
OUTPUT_DIR_ENV = "JC_OUTPUT_DIR"
TIMEOUT_ENV = "JC_TIMEOUT"  # seconds the whole notebook may take (--timeout)
CELL_TIMEOUT_ENV = "JC_CELL_TIMEOUT"  # seconds one cell may take (--cell-timeout)
AUTOSAVE_SECONDS = float(os.environ.get("JC_AUTOSAVE_SECONDS", "5"))  # env override: tests
TICK_SECONDS = min(1.0, AUTOSAVE_SECONDS)
LOG_CHUNK = 16_000  # keeps each event line bounded however much a cell prints
MAX_LISTED_OUTPUTS = 1000
KERNEL_START_ATTEMPTS = 3

EXIT_OK = 0
EXIT_CELL_FAILED = 1
EXIT_INTERNAL = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

SKIP_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints"})
TMP_SUFFIX = ".jc-tmp"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


def emit(event_type: str, **fields: Any) -> None:
    """Write one event line; the dict has the shape of ``Event.to_dict()``."""
    data = {**fields, "time": time.time(), "type": event_type}
    line = EVENT_PREFIX + json.dumps(data, default=str) + "\n"
    sys.stdout.write(line)
    sys.stdout.flush()


def emit_log(text: str, stream: str = "stdout") -> None:
    """Emit a Log event, split so that no single line grows without bound."""
    for start in range(0, len(text), LOG_CHUNK):
        emit("Log", text=text[start : start + LOG_CHUNK], stream=stream)


class RunnerError(Exception):
    """A problem of the runner or its inputs, not of the notebook's code (exit 2)."""


def load_parameters(raw: str | None) -> dict[str, Any]:
    """Parse ``JC_PARAMETERS``: a JSON object whose keys are Python identifiers."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"{PARAMETERS_ENV} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RunnerError(f"{PARAMETERS_ENV} must be a JSON object, got {type(value).__name__}")
    bad = [k for k in value if not _IDENTIFIER.match(k)]
    if bad:
        raise RunnerError(f"{PARAMETERS_ENV}: parameter names must be Python identifiers: {', '.join(map(repr, bad))}")
    return value


def python_literal(value: Any) -> str:
    """``value`` as Python source: ``repr``, but ``float('nan')``/``float('inf')`` as papermill writes them.

    The same values as papermill's cell; only strings are quoted as ``repr`` quotes them, where papermill
    writes ``"…"`` with escapes (tests/integration/test_papermill_compat.py compares both).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def parameters_source(parameters: dict[str, Any]) -> str:
    """The injected cell's code: one ``name = value`` line per parameter, in the order given."""
    lines = ["# Parameters"] + [f"{name} = {python_literal(value)}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def inject_parameters(nb: Any, parameters: dict[str, Any]) -> bool:
    """Insert an ``injected-parameters`` cell after the ``parameters`` cell, papermill-style.

    A stale injected cell (from an earlier papermill run) is replaced in place. Returns False
    when no cell is tagged ``parameters`` (the cell then goes to the top, or in the stale one's place).
    """
    cells = nb.cells
    new = nbformat.v4.new_code_cell(source=parameters_source(parameters))
    new.metadata["tags"] = [INJECTED_TAG]
    index = parameters_cell_index(cells)
    stale = [i for i, c in enumerate(cells) if is_injected(c)]
    if stale:  # papermill's rule: an injected cell of an earlier run is replaced where it is
        cells[stale[0]] = new
        cells[:] = [c for i, c in enumerate(cells) if i not in stale[1:]]
    elif index is not None:
        cells.insert(index + 1, new)
    else:
        cells.insert(0, new)
    return index is not None


class WorkdirSync:
    """Brings back what the notebook writes in its working folder.

    A first scan, before the kernel starts, records every file's size and mtime; each
    :meth:`sync` copies the files that are new or changed since (and not copied as they
    are now) to the same relative path under ``dest``, atomically, and removes the copies
    of files deleted since. Left out: ``skip`` (the source notebook, and a file of the executed
    notebook's name: ``dest`` holds the executed one under that name), ``__pycache__``/``.ipynb_checkpoints``,
    links, and folders on another filesystem (data mounted under the working folder) or holding ``dest``.
    """

    def __init__(self, root: Path, dest: Path, skip: frozenset[str]) -> None:
        self.root = root
        self.dest = dest
        self.skip = skip
        self._device = os.stat(root).st_dev
        self._dest = os.path.realpath(dest)
        self.baseline = self.scan()
        self.copied: dict[str, tuple[int, int]] = {}

    def _descend(self, path: str) -> bool:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return st.st_dev == self._device and os.path.realpath(path) != self._dest

    def scan(self) -> dict[str, tuple[int, int]]:
        """Relative path → (size, mtime in ns) of every regular file in the working folder."""
        found: dict[str, tuple[int, int]] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in SKIP_DIRS and self._descend(os.path.join(dirpath, d)))
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = Path(path).relative_to(self.root).as_posix()
                if rel in self.skip or name.endswith(TMP_SUFFIX):
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[rel] = (st.st_size, st.st_mtime_ns)
        return found

    def sync(self) -> list[str]:
        """Copy what is new or changed; returns one ``path: reason`` per file that could not be copied."""
        current = self.scan()
        failed: list[str] = []
        for rel in sorted(current):
            signature = current[rel]
            if self.baseline.get(rel) == signature or self.copied.get(rel) == signature:
                continue
            try:
                self._copy(rel)
            except OSError as exc:
                failed.append(f"{rel}: {exc.strerror or exc}")
                continue
            self.copied[rel] = signature
        for rel in [r for r in self.copied if r not in current]:
            with contextlib.suppress(OSError):
                (self.dest / rel).unlink(missing_ok=True)
            del self.copied[rel]
        return failed

    def _copy(self, rel: str) -> None:
        target = self.dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
        try:
            shutil.copyfile(self.root / rel, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()


class StreamingClient(NotebookClient):
    """NotebookClient that forwards stream output live and notes when output changed."""

    def __init__(self, nb: Any, on_output: Any, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self._on_output = on_output
        self.cell_timed_out = False  # the cell ran past ``timeout`` and was interrupted (its error: KeyboardInterrupt)

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> None | dict[str, Any]:
        self.cell_timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs: Any, msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        out = super().output(outs, msg, display_id, cell_index)
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            emit_log(str(content.get("text", "")), str(content.get("name", "stdout")))
        self._on_output()
        return out


class Runner:
    """Runs one notebook, saving it to the output folder as it goes."""

    def __init__(self, notebook: Path, output_dir: Path, kernel_name: str, parameters: dict[str, Any],
                 timeout: float | None = None, cell_timeout: float | None = None, job_id: str = "") -> None:
        self.notebook = notebook
        self.timeout = timeout
        self.cell_timeout = cell_timeout
        self.timed_out = False
        self._position = (0, 0)  # the code cell running (0-based) and how many there are
        self.output_dir = output_dir
        self.output_path = output_dir / papermill_record.output_notebook_name(notebook.name, job_id)
        self.kernel_name = kernel_name
        self.parameters = parameters
        self.nb: Any = None
        self.client: StreamingClient | None = None
        self.cancel_signal: int | None = None
        self._task: asyncio.Task[int] | None = None
        self._dirty = False
        self._last_save = 0.0
        self._metrics_seen: dict[str, float] = {}
        self._last_error: dict[str, Any] | None = None
        self._started_at = ("", time.monotonic())  # papermill's start time, and ours for its duration
        self.files: WorkdirSync | None = None
        self._last_sync = 0.0
        self._unsynced: set[str] = set()

    # -- saving and metrics -------------------------------------------------

    def save(self, final: bool = False) -> None:
        """Write the executed notebook atomically (a reader never sees half a file), then bring back
        the working folder's new files: every time when ``final``, else at most every autosave period."""
        if self.nb is None:
            return
        tmp = self.output_path.with_name(f".{self.output_path.name}{TMP_SUFFIX}")
        tmp.write_text(nbformat.writes(self.nb), encoding="utf-8")
        os.replace(tmp, self.output_path)
        self._dirty = False
        self._last_save = time.monotonic()
        if final or self._last_save - self._last_sync >= AUTOSAVE_SECONDS:
            self.sync_files()

    def sync_files(self) -> None:
        """Copy the working folder's new and changed files to the output folder; say once what could not be."""
        if self.files is None:
            return
        self._last_sync = time.monotonic()
        failed = [f for f in self.files.sync() if f not in self._unsynced]
        self._unsynced.update(failed)
        if failed:
            emit_log("jupyter-containerize: could not copy to the output folder: " + "; ".join(failed) + "\n",
                     "stderr")

    def _mark_dirty(self) -> None:
        self._dirty = True
        if time.monotonic() - self._last_save >= AUTOSAVE_SECONDS:
            self._save_quietly()

    def _save_quietly(self, final: bool = False) -> None:
        try:
            self.save(final)
        except OSError as exc:  # a full disk must not kill the run; say it once per try
            emit_log(f"jupyter-containerize: could not autosave {self.output_path}: {exc}\n", "stderr")
            if final:
                self.sync_files()

    def poll_metrics(self) -> None:
        """Emit MetricLogged for each top-level number in metrics.json that changed."""
        path = self.output_dir / "metrics.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # absent, or being replaced right now: the next tick sees it
        if not isinstance(data, dict):
            return
        for name in sorted(data):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if self._metrics_seen.get(name) != value:
                self._metrics_seen[name] = value
                emit("MetricLogged", name=str(name), value=float(value))

    async def _ticker(self) -> None:
        # Long cells may print nothing for minutes; save and look for metrics anyway.
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self._dirty and time.monotonic() - self._last_save >= AUTOSAVE_SECONDS:
                self._save_quietly()
            self.poll_metrics()

    def list_outputs(self) -> list[str]:
        """The output folder's files, the executed notebook first."""
        first = str(self.output_path)
        found: list[str] = [first] if self.output_path.is_file() else []
        for root, dirs, files in os.walk(self.output_dir):
            dirs.sort()
            for name in sorted(files):
                path = str(Path(root) / name)
                if name.endswith(TMP_SUFFIX) or path == first:
                    continue
                found.append(path)
                if len(found) >= MAX_LISTED_OUTPUTS:
                    return found
        return found

    # -- signals ------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if self.cancel_signal is not None:
            return
        self.cancel_signal = signum
        if self.client is not None:
            self.client.shutdown_kernel = "immediate"  # docker stop gives us only 10 s
        if self._task is not None:
            self._task.cancel()

    def _on_timeout(self) -> None:
        """``--timeout`` reached: stop the notebook as a cancel does, and say so."""
        if self.cancel_signal is not None:
            return
        self.timed_out = True
        self._on_signal(signal.SIGTERM)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    # -- execution ----------------------------------------------------------

    def _on_cell_error(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self._last_error = dict(execute_reply.get("content", {}))

    async def run(self) -> int:
        """Execute the notebook; returns the exit code after emitting ``Finished``."""
        self._task = asyncio.current_task()
        self._install_signal_handlers()
        if self.timeout:
            asyncio.get_running_loop().call_later(self.timeout, self._on_timeout)
        try:
            return await self._run()
        except asyncio.CancelledError:
            return self._finish_timed_out() if self.timed_out else self._finish_cancelled()
        except RunnerError as exc:
            return self._finish_internal(str(exc), "")
        except Exception as exc:  # noqa: BLE001 - the runner must always say how it ended
            if self.cancel_signal is not None:
                return self._finish_timed_out() if self.timed_out else self._finish_cancelled()
            return self._finish_internal(f"{type(exc).__name__}: {exc}", traceback_module.format_exc())

    async def _run(self) -> int:
        try:
            self.nb = nbformat.read(str(self.notebook), as_version=4)
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot read notebook {self.notebook}: {exc}") from None
        if self.parameters and not inject_parameters(self.nb, self.parameters):
            emit_log(
                "jupyter-containerize: no cell is tagged 'parameters'; parameters were injected "
                "in a new first cell.\n",
                "stderr",
            )
        if self.parameters:
            self.nb.metadata.setdefault("jupyter_containerize", {})["parameters"] = self.parameters
        papermill_record.remove_error_markers(self.nb.cells)
        self._started_at = (papermill_record.now(), time.monotonic())
        at = parameters_cell_index(self.nb.cells)
        defaults = {a.name: a.value for a in assignments(self.nb.cells[at].source) if a.kind != "expression"} \
            if at is not None else {}
        self.nb.metadata["papermill"] = papermill_record.notebook_metadata(
            self.parameters, input_path=str(self.notebook), output_path=str(self.output_path),
            start=self._started_at[0], default_parameters=defaults)
        for cell in self.nb.cells:  # papermill's reset: a record of an earlier run must not survive this one
            cell.metadata["papermill"] = papermill_record.pending_cell_metadata()
        cells = list(self.nb.cells)  # in order; error markers are inserted only once the run stops
        total = sum(1 for c in cells if c.cell_type == "code")
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.save()
        except OSError as exc:
            raise RunnerError(f"cannot write to the output folder {self.output_dir}: {exc}") from None
        os.environ[OUTPUT_DIR_ENV] = str(self.output_dir)  # read by log_metric in the kernel
        try:
            # Neither the source notebook nor a file of the executed one's name: that one is the runner's to write.
            skip = frozenset({self.notebook.name, self.output_path.name})
            self.files = WorkdirSync(self.notebook.parent, self.output_dir, skip)
            self._last_sync = time.monotonic()  # the baseline scan: nothing to copy yet
        except OSError as exc:
            emit_log(f"jupyter-containerize: files written next to the notebook will not come back ({exc}).\n",
                     "stderr")
        emit("NotebookStarted", total_cells=total, parameters=self.parameters)

        ticker = asyncio.ensure_future(self._ticker())
        try:
            for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
                self.client = StreamingClient(
                    self.nb,
                    on_output=self._mark_dirty,
                    kernel_name=self.kernel_name,
                    timeout=self.cell_timeout,
                    interrupt_on_timeout=True,
                    allow_errors=False,
                    record_timing=True,
                    on_cell_error=self._on_cell_error,
                    resources={"metadata": {"path": str(self.notebook.parent)}},
                )
                started = False
                try:
                    async with self.client.async_setup_kernel():
                        self._install_signal_handlers()  # nbclient installed its own; ours win
                        await self._kernel_info()
                        started = True
                        position = 0
                        for nb_index, cell in enumerate(cells):
                            if cell.cell_type != "code":  # papermill passes these too: completed, in no time
                                self._pass_cell(cell)
                                continue
                            code = await self._execute_one(position, nb_index, total)
                            if code is not None:
                                return code
                            position += 1
                    break
                except (RuntimeError, DeadKernelError) as exc:
                    # A kernel that dies before it answers (seen under heavy load) ran no cell: start another.
                    if started or attempt == KERNEL_START_ATTEMPTS or self.cancel_signal is not None:
                        raise
                    emit_log(f"jupyter-containerize: the kernel did not start ({exc}); starting another.\n",
                             "stderr")
        finally:
            ticker.cancel()
        self._end_papermill(exception=None)  # papermill's record of a run without error
        self.save(final=True)
        self.poll_metrics()
        emit("Finished", status="succeeded", exit_code=EXIT_OK, error="", failing_cell=None,
             traceback="", outputs=self.list_outputs())
        return EXIT_OK

    async def _kernel_info(self) -> None:
        assert self.client is not None and self.client.kc is not None
        msg_id = await ensure_async(self.client.kc.kernel_info())
        reply = await self.client.async_wait_for_reply(msg_id)
        if reply is not None and "language_info" in reply["content"]:
            self.nb.metadata["language_info"] = reply["content"]["language_info"]

    async def _execute_one(self, position: int, nb_index: int, total: int) -> int | None:
        """Run one code cell; returns an exit code when the run must stop here."""
        assert self.client is not None
        cell = self.nb.cells[nb_index]
        first_line = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        self._position = (position, total)
        emit("CellStarted", index=position, total=total, source_first_line=first_line[:200])
        started, started_at = time.monotonic(), papermill_record.now()
        self._last_error = None
        self.client.cell_timed_out = False
        failure: tuple[str, str] | None = None  # (error, traceback)
        try:
            await self.client.async_execute_cell(
                cell, nb_index, execution_count=self.client.code_cells_executed + 1
            )
        except (CellExecutionError, CellTimeoutError) as exc:
            failure = self._describe_error(exc) if isinstance(exc, CellExecutionError) else ("", "")
            if self.client.cell_timed_out:  # interrupted at the limit: say so, not KeyboardInterrupt
                failure = (f"timed out after {_duration(self.cell_timeout or 0)} at cell {position + 1} of {total} "
                           "(--cell-timeout)", failure[1])
        except DeadKernelError:
            if self.cancel_signal is not None:
                raise asyncio.CancelledError from None
            failure = ("The kernel died while running this cell (out of memory?).", "")
        duration = round(time.monotonic() - started, 6)
        cell.metadata["papermill"] = papermill_record.cell_metadata(
            start=started_at, end=papermill_record.now(), duration=duration,
            failed=failure is not None)  # sys.exit(0) too, as papermill records it
        self.poll_metrics()
        if failure is not None and self._is_clean_exit():
            # sys.exit(0) / sys.exit() in a cell: stop here, successfully.
            emit("CellFinished", index=position, total=total, duration=duration, ok=True)
            self._end_papermill(exception=True)  # papermill's record says so, though its run (and ours) succeeds
            self.save(final=True)
            emit("Finished", status="succeeded", exit_code=EXIT_OK, error="", failing_cell=None,
                 traceback="", outputs=self.list_outputs())
            return EXIT_OK
        emit("CellFinished", index=position, total=total, duration=duration, ok=failure is None)
        if failure is not None:
            self._mark_failure(cell)
        self._save_quietly(final=failure is not None)
        if failure is None:
            return None
        error, tb = failure
        emit_log(_traceback_then_error(tb, error), "stderr")  # the traceback too, as papermill prints it
        emit("Finished", status="failed", exit_code=EXIT_CELL_FAILED, error=error, failing_cell=position,
             traceback=tb, outputs=self.list_outputs())
        return EXIT_CELL_FAILED

    def _mark_failure(self, cell: Any) -> None:
        """papermill's error markers (at the top, and above the failing cell) and its record of the exception."""
        top, here = papermill_record.error_markers(cell.get("execution_count"),
                                                   ids=(self.nb.nbformat, self.nb.nbformat_minor) >= (4, 5))
        self.nb.cells.insert(self.nb.cells.index(cell), nbformat.from_dict(here))
        self.nb.cells.insert(0, nbformat.from_dict(top))
        self._end_papermill(exception=True)

    def _pass_cell(self, cell: Any) -> None:
        """A markdown or raw cell's turn: papermill records it as completed."""
        at = papermill_record.now()
        cell.metadata["papermill"] = papermill_record.cell_metadata(start=at, end=at, duration=0.0, failed=False)

    def _end_papermill(self, *, exception: bool | None) -> None:
        record = self.nb.metadata.get("papermill") if self.nb is not None else None
        if record is not None:
            record.update(end_time=papermill_record.now(), exception=exception,
                          duration=round(time.monotonic() - self._started_at[1], 6))

    def _is_clean_exit(self) -> bool:
        err = self._last_error or {}
        return err.get("ename") == "SystemExit" and str(err.get("evalue", "")).strip() in ("", "0", "None")

    def _describe_error(self, exc: CellExecutionError) -> tuple[str, str]:
        content = self._last_error or {}
        ename = str(content.get("ename") or getattr(exc, "ename", "") or "Error")
        evalue = strip_ansi(str(content.get("evalue") or getattr(exc, "evalue", "")))
        frames = content.get("traceback") or []
        tb = strip_ansi("\n".join(str(f) for f in frames)) if frames else strip_ansi(str(exc))
        return (f"{ename}: {evalue}" if evalue else ename) + self._missing_file_hint(ename, evalue), tb

    def _missing_file_hint(self, ename: str, evalue: str) -> str:
        """For a relative path the job cannot find: one line naming ``--include`` and ``-v``."""
        m = re.search(r"No such file or directory: '([^'/][^']*)'", evalue) if ename == "FileNotFoundError" else None
        if m is None:
            return ""
        rel = m.group(1)
        where = os.path.normpath(os.path.join(self.notebook.parent, rel))
        return (f"\nHint: {rel} is not in this job (capture could not tell that the notebook reads it): pass "
                f"--include {rel} to copy it into the image, or -v HOST_PATH:{where}:ro to mount it.")

    # -- endings ------------------------------------------------------------

    def _finish_cancelled(self) -> int:
        signum = self.cancel_signal or signal.SIGTERM
        self._save_quietly(final=True)
        code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM
        emit("Finished", status="cancelled", exit_code=code, error=f"Stopped by {signal.Signals(signum).name}.",
             failing_cell=None, traceback="", outputs=self.list_outputs() if self.output_dir.is_dir() else [])
        return code

    def _finish_timed_out(self) -> int:
        position, total = self._position
        where = f" at cell {position + 1} of {total}" if total else " before the first cell"
        error = f"timed out after {_duration(self.timeout or 0)}{where} (--timeout)"
        if self.nb is not None:
            self._end_papermill(exception=True)
        self._save_quietly(final=True)
        emit_log(f"jupyter-containerize: {error}; the notebook so far is saved.\n", "stderr")
        emit("Finished", status="failed", exit_code=EXIT_CELL_FAILED, error=error,
             failing_cell=position if total else None, traceback="",
             outputs=self.list_outputs() if self.output_dir.is_dir() else [])
        return EXIT_CELL_FAILED

    def _finish_internal(self, message: str, tb: str) -> int:
        if self.nb is not None:
            self._save_quietly(final=True)
        outputs = self.list_outputs() if self.output_dir.is_dir() else []
        emit("Finished", status="failed", exit_code=EXIT_INTERNAL, error=f"jupyter-containerize runner: {message}",
             failing_cell=None, traceback=tb, outputs=outputs)
        return EXIT_INTERNAL


def _seconds(text: str | None) -> float | None:
    """A positive number of seconds from the environment, else None (no limit)."""
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def _duration(seconds: float) -> str:
    """``2h``, ``30m``, ``1h30m``, ``45s``: a limit as the user wrote it."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def _traceback_then_error(tb: str, error: str) -> str:
    """The traceback, then the error line unless the traceback already ends with it, then any hint."""
    head, _, hint = error.partition("\n")
    text = tb.rstrip("\n")
    if not text.endswith(head):
        text = f"{text}\n{head}" if text else head
    return text + (f"\n{hint}" if hint else "") + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: parse arguments, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="runner.py", description="Execute a notebook and emit events.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--output-dir", type=Path, default=Path(os.environ.get(OUTPUT_DIR_ENV, "/output")))
    parser.add_argument("--kernel", default="python3", help="kernelspec name (resolved via JUPYTER_PATH)")
    args = parser.parse_args(argv)
    try:
        parameters = load_parameters(os.environ.get(PARAMETERS_ENV))
    except RunnerError as exc:
        emit("Finished", status="failed", exit_code=EXIT_INTERNAL, error=f"jupyter-containerize runner: {exc}",
             failing_cell=None, traceback="", outputs=[])
        return EXIT_INTERNAL
    runner = Runner(args.notebook.absolute(), args.output_dir.absolute(), args.kernel, parameters,
                    timeout=_seconds(os.environ.get(TIMEOUT_ENV)), cell_timeout=_seconds(os.environ.get(CELL_TIMEOUT_ENV)),
                    job_id=os.environ.get(JOB_ID_ENV, ""))
    return asyncio.run(runner.run())


if __name__ == "__main__":
    sys.exit(main())
