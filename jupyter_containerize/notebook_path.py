"""Finding the notebook the running kernel belongs to.

In order: IPython's ``__session__`` / the ``JPY_SESSION_NAME`` environment variable
(set by jupyter_server when it starts a kernel for a session), then the server's
sessions API matched by kernel id, else a clear error asking for ``--notebook PATH``.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import NotebookError

SESSION_ENV = "JPY_SESSION_NAME"
_KERNEL_ID = re.compile(r"kernel-(?P<id>[0-9a-fA-F-]+)\.json$")


def kernel_id(connection_file: str | None = None) -> str | None:
    """The kernel id, from the connection file name ``kernel-<id>.json``."""
    if connection_file is None:
        try:
            from ipykernel.connect import get_connection_file

            connection_file = get_connection_file()
        except Exception:  # noqa: BLE001 - not in a kernel, or no app
            return None
    match = _KERNEL_ID.search(os.path.basename(connection_file))
    return match.group("id") if match else None


def _existing(candidate: str | None, roots: Iterable[Path]) -> Path | None:
    if not candidate or not candidate.endswith(".ipynb"):
        return None
    path = Path(candidate).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    for root in roots:
        full = root / path
        if full.is_file():
            return full.resolve()
    return None


def from_session_name(user_ns: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
                      cwd: Path | None = None) -> Path | None:
    """The notebook named by ``__session__`` or ``JPY_SESSION_NAME``, when that file exists."""
    environ = dict(os.environ) if environ is None else environ
    cwd = cwd or Path.cwd()
    roots = [cwd, *cwd.parents][:4]
    for candidate in ((user_ns or {}).get("__session__"), environ.get(SESSION_ENV)):
        found = _existing(str(candidate) if candidate else None, roots)
        if found is not None:
            return found
    return None


def _get_json(url: str, token: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def from_sessions_api(kid: str | None, servers: Iterable[dict[str, Any]] | None = None,
                      get_json: Callable[[str, str, float], Any] = _get_json, timeout: float = 2.0) -> Path | None:
    """Ask each running Jupyter server which session owns kernel ``kid``."""
    if not kid:
        return None
    if servers is None:
        try:
            from jupyter_server.serverapp import list_running_servers

            servers = list(list_running_servers())
        except Exception:  # noqa: BLE001 - no server package or runtime dir
            return None
    for server in servers:
        url = str(server.get("url", "")).rstrip("/") + "/api/sessions"
        try:
            sessions = get_json(url, str(server.get("token", "")), timeout)
        except Exception:  # noqa: BLE001, S112 - a stale server file, a server that is shutting down
            continue
        for session in sessions if isinstance(sessions, list) else ():
            if (session.get("kernel") or {}).get("id") != kid:
                continue
            rel = session.get("path") or (session.get("notebook") or {}).get("path")
            if not rel:
                continue
            root = Path(str(server.get("root_dir") or server.get("notebook_dir") or ".")).expanduser()
            path: Path = (root / str(rel)).resolve()
            if path.is_file():
                return path
    return None


def find_notebook(user_ns: dict[str, Any] | None = None, explicit: str | Path | None = None) -> Path:
    """The current notebook's path.

    Args:
        user_ns: The kernel's user namespace (for ``__session__``).
        explicit: A ``--notebook PATH`` given by the user; wins when set.

    Raises:
        NotebookError: The notebook cannot be found.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise NotebookError(f"The notebook {path} does not exist", "Check the --notebook path.")
        return path.resolve()
    found = from_session_name(user_ns) or from_sessions_api(kernel_id())
    if found is None:
        raise NotebookError(
            "Cannot tell which notebook this kernel runs",
            "Pass it explicitly: %containerize run --notebook PATH.ipynb (or save the notebook and retry).",
        )
    return found


def unsaved_warning(notebook: Path, last_cell_time: float | None) -> str | None:
    """A warning when the file on disk is older than the kernel's latest executed cell."""
    if last_cell_time is None:
        return None
    try:
        mtime = notebook.stat().st_mtime
    except OSError:
        return None
    if mtime + 1.0 < last_cell_time:
        age = time.time() - mtime
        return (f"{notebook.name} was last saved {age:.0f} s ago, before the latest executed cell: "
                "unsaved changes won't be in the job. Save the notebook (Ctrl-S) and run again.")
    return None
