"""Import the modules a job will import, once, at build time (stdlib only; runs in the image).

Jobs run with a read-only root and ``PYTHONDONTWRITEBYTECODE=1``, so bytecode is never
written at run time. Importing the notebook's and the kernel's modules during the build
leaves exactly their bytecode (compiling every file of every package costs seconds per
hundred MB for code no job loads), and an import that fails shows in the build log.

Usage: ``python precompile.py MODULES_FILE`` (one dotted module name a line; the line
``:kernel`` initializes, never runs, an IPython kernel, which imports what every job's
kernel imports at start, its debugger included). A failed import is reported, never
fatal: the module may need a GPU, data or a variable that only the job has.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

IMPORT_TIMEOUT_S = 120
KERNEL = ":kernel"
# In a child that exits at once: an initialized kernel holds sockets and threads. Its
# settings and runtime files go to a temporary folder, removed before the exit.
_KERNEL_CODE = """\
import os, shutil, sys, tempfile
d = tempfile.mkdtemp()
os.environ.update(IPYTHONDIR=d, JUPYTER_RUNTIME_DIR=d, JUPYTER_CONFIG_DIR=d, JUPYTER_DATA_DIR=d, MPLCONFIGDIR=d)
sys.stdout = sys.stderr = open(os.devnull, "w")
from ipykernel.kernelapp import IPKernelApp
IPKernelApp.instance().initialize(["-f", os.path.join(d, "kernel.json"), "--IPKernelApp.log_level=ERROR"])
shutil.rmtree(d, ignore_errors=True)
os._exit(0)
"""


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError(f"the import took over {IMPORT_TIMEOUT_S} s")


def load(names: list[str]) -> tuple[float, list[tuple[str, str]]]:
    """Import each of ``names``: the seconds it took, and ``(name, one-line reason)`` for those that fail."""
    started = time.monotonic()
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _timeout)
    failed = []
    for name in names:
        if name == KERNEL:
            failed += _start_kernel()
            continue
        signal.alarm(IMPORT_TIMEOUT_S)
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a module counts as a failed import too
            failed.append((name, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
        finally:
            signal.alarm(0)
    return time.monotonic() - started, failed


def _start_kernel() -> list[tuple[str, str]]:
    try:
        done = subprocess.run([sys.executable, "-c", _KERNEL_CODE], capture_output=True, text=True,
                              timeout=IMPORT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return [(KERNEL, f"the kernel took over {IMPORT_TIMEOUT_S} s to initialize")]
    return [] if done.returncode == 0 else [(KERNEL, f"the kernel exited with code {done.returncode}")]


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    # One process per top-level package: submodules share most of their imports, packages few.
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.partition(".")[0], []).append(name)
    if not groups:
        return 0
    with ProcessPoolExecutor(max_workers=max(1, min(len(groups), os.cpu_count() or 1))) as pool:
        for group, (seconds, failed) in zip(list(groups), pool.map(load, groups.values())):  # noqa: B905 - any Python
            # One line a package, so the build's progress names what the step spends its seconds on.
            print(f"jupyter-containerize: precompiled {'ipykernel' if group == KERNEL else group} "
                  f"in {seconds:.1f} s", flush=True)
            for name, problem in failed:
                print(f"jupyter-containerize: import {name} failed at build time ({problem}); "
                      "the job compiles it when it imports it.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
