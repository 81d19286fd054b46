"""Keep every notebook path a client sends inside the server's root folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..errors import NotebookError


def resolve_in_root(root: Path, api_path: str, *, must_exist: bool = True) -> Path:
    """The absolute path of ``api_path`` (relative to ``root``, '/'-separated).

    Raises:
        NotebookError: the path is absolute, climbs with ``..``, leaves the root
            (also through a symlink) or does not exist.
    """
    text = (api_path or "").strip()
    if not text:
        raise NotebookError("No notebook path was given", "Pass the path relative to the Jupyter root, e.g. 'quickstart.ipynb'.")
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if text.startswith("/") or ".." in parts or "\x00" in text:
        raise NotebookError(f"The path {api_path!r} leaves the Jupyter root", "Give a path inside the root folder, without '..'.")
    base = root.resolve()
    path = (base / Path(*parts)).resolve()
    if not path.is_relative_to(base):
        raise NotebookError(f"The path {api_path!r} leaves the Jupyter root", "Give a path inside the root folder.")
    if must_exist and not path.is_file():
        raise NotebookError(f"The notebook {api_path!r} does not exist", "Check the path (it is relative to the Jupyter root).")
    return path


def api_path_of(root: Path, path: str | Path) -> str | None:
    """``path`` relative to ``root`` ('/'-separated), or ``None`` when it lies outside."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
