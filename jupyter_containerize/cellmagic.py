"""``%%containerize``: turn one cell plus its inputs into a job, and its outputs back into values.

The job runs a generated notebook (mounted read-only with the pickled inputs at
``/jc-cell``): load the inputs, run the cell, dump the outputs with cloudpickle to
``/output/outputs.pkl``. cloudpickle must therefore be in the image: the capture
is told to include it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NotebookError, OptionError, RemoteCellError

CELL_MOUNT = "/jc-cell"
INPUTS_FILE = "inputs.pkl"
OUTPUTS_FILE = "outputs.pkl"
JOB_NOTEBOOK = "cell_job.ipynb"
CAPTURE_NOTEBOOK = "cell.ipynb"
REQUIRED_MODULES = ("cloudpickle",)


@dataclass(frozen=True)
class CellJob:
    """What :meth:`JobManager.submit` needs for one cell, plus where the results come back.

    Attributes:
        workdir: Host temp folder (mounted read-only at ``/jc-cell``).
        capture_notebook: The notebook whose imports are captured (the current one, else the cell alone).
        command: The container command: the job notebook's path in the container.
        mounts: ``(host, container, read_only)`` bind mounts.
        extra_modules: Modules the capture must include (cloudpickle and the cell's imports).
        inputs: Names sent in.
        outputs: Names brought back.
    """

    workdir: Path
    capture_notebook: Path
    command: tuple[str, ...]
    mounts: tuple[tuple[str, str, bool], ...]
    extra_modules: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def cleanup_inputs(self) -> None:
        """Drop the pickled inputs (they may be large); keep the generated notebook."""
        (self.workdir / INPUTS_FILE).unlink(missing_ok=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def split_names(text: str | None, flag: str) -> tuple[str, ...]:
    """``a,b c`` → ``("a", "b", "c")``; each must be a Python identifier."""
    if not text:
        return ()
    names = tuple(n for n in text.replace(",", " ").split() if n)
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise OptionError(f"{flag} {text!r}: {', '.join(map(repr, bad))} is not a Python name",
                          f"List variable names, e.g. {flag} x,y.")
    return tuple(dict.fromkeys(names))


def cell_modules(source: str) -> tuple[str, ...]:
    """Third-party top-level modules the cell imports (so unsaved cells are captured too)."""
    from .capture.imports import SELF_MODULES, scan_source

    try:
        found = scan_source(source)
    except (SyntaxError, ValueError):
        return ()
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    tops = {m.split(".", 1)[0] for m in found.modules}
    return tuple(sorted(t for t in tops if t not in stdlib and t not in SELF_MODULES and t.isidentifier()))


def _loader_source(inputs: tuple[str, ...], mount: str) -> str:
    lines = ["# jupyter-containerize: the cell's inputs", "import cloudpickle as _jc_cloudpickle"]
    if inputs:
        lines += [f"with open({mount + '/' + INPUTS_FILE!r}, 'rb') as _jc_f:",
                  "    globals().update(_jc_cloudpickle.load(_jc_f))", "del _jc_f"]
    return "\n".join(lines) + "\n"


def _dumper_source(outputs: tuple[str, ...]) -> str:
    return (
        "# jupyter-containerize: the cell's outputs\n"
        "import os as _jc_os\n"
        f"_jc_names = {list(outputs)!r}\n"
        "_jc_missing = [n for n in _jc_names if n not in globals()]\n"
        "if _jc_missing:\n"
        "    raise NameError('the cell did not set the output(s) ' + ', '.join(_jc_missing))\n"
        f"with open(_jc_os.path.join(_jc_os.environ.get('JC_OUTPUT_DIR', '/output'), {OUTPUTS_FILE!r}), 'wb') as _jc_f:\n"
        "    _jc_cloudpickle.dump({n: globals()[n] for n in _jc_names}, _jc_f)\n"
    )


def job_notebook(source: str, inputs: tuple[str, ...], outputs: tuple[str, ...], mount: str = CELL_MOUNT) -> Any:
    """The generated notebook: load inputs (from ``mount``), run the cell, dump outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    new_cell: Callable[[str], Any] = nbformat.v4.new_code_cell
    nb.cells = [new_cell(_loader_source(inputs, mount)), new_cell(source), new_cell(_dumper_source(outputs))]
    _stable_ids(nb)
    return nb


def _stable_ids(nb: Any) -> None:
    # Fixed ids keep the captured notebook byte-identical for identical cells (same image hash).
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"jc-cell-{i}"



def prepare_cell(source: str, user_ns: dict[str, Any], inputs: tuple[str, ...], outputs: tuple[str, ...],
                 notebook: Path | None) -> CellJob:
    """Write the inputs and the job notebook to a temp folder.

    Args:
        source: The cell's code.
        user_ns: The kernel's namespace, where the inputs are read.
        inputs: Variable names to send.
        outputs: Variable names to bring back.
        notebook: The current notebook (captured), or None to capture from the cell alone.

    Raises:
        OptionError: An input is not defined.
        NotebookError: An input cannot be pickled.
    """
    import cloudpickle
    import nbformat

    missing = [n for n in inputs if n not in user_ns]
    if missing:
        raise OptionError(f"--inputs: {', '.join(missing)} not defined in the kernel", "Run the cell that sets it first.")
    workdir = Path(tempfile.mkdtemp(prefix="jc-cell-"))
    try:
        # The job runs as an unprivileged user: it must be able to read what the host wrote.
        os.chmod(workdir, 0o755)
        if inputs:
            try:
                payload = cloudpickle.dumps({n: user_ns[n] for n in inputs})
            except Exception as e:  # noqa: BLE001 - any object may refuse pickling
                raise NotebookError(f"--inputs could not be serialized: {type(e).__name__}: {e}",
                                    "Send plain data (arrays, frames, models) rather than open files or sockets.") from None
            (workdir / INPUTS_FILE).write_bytes(payload)
        nbformat.write(job_notebook(source, inputs, outputs), str(workdir / JOB_NOTEBOOK))
        capture_notebook = notebook
        if capture_notebook is None:
            capture_notebook = workdir / CAPTURE_NOTEBOOK
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            new_cell: Callable[[str], Any] = nbformat.v4.new_code_cell
            nb.cells = [new_cell("import cloudpickle\n"), new_cell(source)]
            _stable_ids(nb)
            nbformat.write(nb, str(capture_notebook))
        for f in workdir.iterdir():
            os.chmod(f, 0o644)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return CellJob(
        workdir=workdir,
        capture_notebook=capture_notebook,
        command=(f"{CELL_MOUNT}/{JOB_NOTEBOOK}",),
        mounts=((str(workdir), CELL_MOUNT, True),),
        extra_modules=tuple(dict.fromkeys(REQUIRED_MODULES + cell_modules(source))),
        inputs=inputs,
        outputs=outputs,
    )


def load_outputs(output_dir: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Read back ``outputs.pkl`` written by the job.

    Raises:
        RemoteCellError: The file is missing or unreadable.
    """
    if not names:
        return {}
    import cloudpickle

    path = output_dir / OUTPUTS_FILE
    try:
        with open(path, "rb") as f:
            values = cloudpickle.load(f)
    except OSError as e:
        raise RemoteCellError(f"The job ended but wrote no outputs ({e})", "Check the job's log.") from None
    except Exception as e:  # noqa: BLE001 - unpickling may fail on a missing module
        raise RemoteCellError(f"The outputs could not be loaded: {type(e).__name__}: {e}",
                              "The kernel needs the same packages as the job to unpickle them.") from None
    if not isinstance(values, dict):
        raise RemoteCellError("The job's outputs.pkl is not a dict of values")
    return {n: values[n] for n in names if n in values}


def remote_error(error: str, failing_cell: int | None, traceback: str) -> RemoteCellError:
    """The exception a failed cell job raises in the kernel."""
    if failing_cell == 0:
        where = "loading the inputs in the container failed"
    elif failing_cell == 2:
        where = "saving the outputs in the container failed"
    else:
        where = "the cell failed in the container"
    return RemoteCellError(f"{where}: {error}" if error else where,
                           cell_index=failing_cell, traceback=traceback)
