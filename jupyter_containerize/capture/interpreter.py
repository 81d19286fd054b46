"""The kernel's interpreter: find it from the notebook's kernelspec and probe it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import InterpreterError
from . import probe
from .imports import read_notebook

PROBE_TIMEOUT_S = 60.0
_GENERIC_PYTHONS = {"python", "python3"}


def kernel_spec(notebook: Path) -> tuple[str, dict[str, str]]:
    """The interpreter and extra environment of the notebook's kernel.

    Returns ``(sys.executable, {})`` when the notebook names no kernelspec.

    Raises:
        NotebookError: the notebook cannot be read.
        InterpreterError: the kernelspec is unknown or is not a Python kernel.
    """
    nb = read_notebook(notebook)
    meta = nb.get("metadata")
    spec_meta = meta.get("kernelspec") if isinstance(meta, dict) else None
    name = spec_meta.get("name") if isinstance(spec_meta, dict) else None
    if not isinstance(name, str) or not name:
        return sys.executable, {}
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise InterpreterError(
            f"The notebook's kernel {name!r} is not installed here.",
            "Pass --python PATH to capture another interpreter, or install the kernel "
            "(`jupyter kernelspec list` shows the known ones).",
        ) from None
    if (spec.language or "python").lower() != "python":
        raise InterpreterError(
            f"The notebook's kernel {name!r} runs {spec.language}, not Python.",
            "Pass --python PATH to name the Python interpreter to capture.",
        )
    argv0 = spec.argv[0] if spec.argv else "python"
    env = {str(k): str(v) for k, v in (spec.env or {}).items()}
    if argv0 in _GENERIC_PYTHONS:
        return sys.executable, env
    if os.sep not in argv0:
        argv0 = shutil.which(argv0) or argv0
    return argv0, env


def kernel_python(notebook: Path) -> str:
    """The interpreter of the notebook's kernelspec, else ``sys.executable``.

    Raises:
        NotebookError: the notebook cannot be read.
        InterpreterError: the kernelspec is unknown or is not a Python kernel.
    """
    return kernel_spec(notebook)[0]


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def run_probe(python: str | None, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run the stdlib-only probe in ``python`` (``None``: in this process).

    Args:
        python: path of the interpreter to probe, or ``None`` for this interpreter in-process.
        env: extra environment variables for the probe (e.g. the kernelspec's ``env``).
        cwd: working directory of the probe (the notebook's folder, as for the kernel).

    Raises:
        InterpreterError: the interpreter cannot be run or its probe failed.
    """
    if python is None:
        return probe.collect()
    source = Path(probe.__file__).read_text(encoding="utf-8")
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONSTARTUP", None)
    hint = "Check that --python (or the kernelspec's argv[0]) names a working Python 3.10+ interpreter."
    try:
        # The source goes in on stdin so that no folder of this package lands on sys.path.
        proc = subprocess.run(
            [python, "-"],
            check=False,
            input=source,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, ValueError) as exc:
        raise InterpreterError(f"Cannot run the interpreter {python!r}: {exc}.", hint) from None
    except subprocess.TimeoutExpired:
        raise InterpreterError(f"The interpreter {python!r} did not answer within {PROBE_TIMEOUT_S:.0f} s.", hint) from None
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = None
    if isinstance(result, dict) and "error" in result:
        raise InterpreterError(f"Cannot capture {python!r}: {result['error']}.", hint)
    if proc.returncode != 0 or not isinstance(result, dict):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if proc.returncode < 0:  # a crash (SIGSEGV…) prints nothing: say which signal ended it
            tail = f"killed by signal {_signal_name(-proc.returncode)}; {tail}"
        elif proc.returncode != 0 and tail == "no output":
            tail = f"exit code {proc.returncode}, no output"
        raise InterpreterError(f"The interpreter {python!r} failed to run the probe ({tail}).", hint)
    return result
