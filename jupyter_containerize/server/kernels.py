"""Which interpreter to capture for a notebook open in this server."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

_GENERIC = {"python", "python3", f"python{sys.version_info[0]}"}


async def session_python(serverapp: Any, api_path: str) -> str | None:
    """argv[0] of the kernelspec of the notebook's running kernel session, if it has one.

    jupyter_client starts a generic ``python`` argv with the server's own
    interpreter, so that is what the kernel really runs.
    """
    session_manager = getattr(serverapp, "session_manager", None)
    if session_manager is None:
        return None
    try:
        sessions = await session_manager.list_sessions()
    except Exception:  # noqa: BLE001 - no sessions is not an error for capture
        return None
    for session in sessions:
        if session.get("path") != api_path or not session.get("kernel"):
            continue
        kernel_id = session["kernel"]["id"]
        try:
            km = serverapp.kernel_manager.get_kernel(kernel_id)
            argv = list(km.kernel_spec.argv)
        except Exception:  # noqa: BLE001, S112 - a culled kernel: fall back to the kernelspec
            continue
        if argv:
            return resolve_argv0(argv[0])
    return None


def resolve_argv0(argv0: str) -> str:
    """An absolute interpreter path for a kernelspec's argv[0]."""
    if argv0 in _GENERIC:
        return sys.executable
    if os.sep not in argv0:
        return shutil.which(argv0) or argv0
    return argv0


async def notebook_python(serverapp: Any, api_path: str, notebook: Path) -> str:
    """The running kernel's interpreter, else the notebook's kernelspec's."""
    running = await session_python(serverapp, api_path)
    if running:
        return running
    from ..capture.interpreter import kernel_python

    return kernel_python(notebook)
