"""What ``%load_ext jupyter_containerize`` does inside a container job.

This module is copied into the image beside the metrics shim, where the package
itself is not installed: it imports only IPython (always present in the job's
kernel). A notebook that containerizes itself therefore runs in its own job:
``%containerize`` does nothing there and ``%%containerize`` runs its cell in place.
"""

from __future__ import annotations

from typing import Any

STUB_DOC = "Inside a container job %containerize does nothing: the job is already containerized."


def _containerize(line: str = "", cell: str | None = None) -> None:
    from IPython import get_ipython

    shell = get_ipython()
    if cell is not None and shell is not None:
        shell.run_cell(cell)
    else:
        print("(%containerize skipped: already inside a container job)")


_containerize.__doc__ = STUB_DOC


def load_ipython_extension(shell: Any) -> None:
    """Register the in-job stand-ins for ``%containerize`` and ``%%containerize``."""
    shell.register_magic_function(_containerize, magic_kind="line_cell", magic_name="containerize")
