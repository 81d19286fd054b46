"""Job records as the JSON the REST API returns."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from ..jobs.store import JobRecord
from ..jobspec import WORK_DIR_IN_CONTAINER, JobSpec
from .paths import api_path_of


def job_json(record: JobRecord, root: Path) -> dict[str, Any]:
    """The record, plus paths relative to the server root where they lie inside it."""
    data = record.to_dict()
    data.pop("owner_pid", None)
    data.pop("cancel_requested", None)
    data["done"] = record.done
    data["path"] = api_path_of(root, record.notebook)
    outputs = [api_path_of(root, p) for p in record.outputs]
    data["output_paths"] = [p for p in outputs if p]
    notebooks = [p for p in data["output_paths"] if p.endswith(".ipynb")]
    data["output_notebook"] = notebooks[0] if notebooks else None
    return data


def context_json(prepared: Any, spec: JobSpec | None = None) -> dict[str, Any]:
    """A rendered build context as JSON: Dockerfile text, file list, hash and tag.

    Also what the notebook refers to beside itself: ``local_code`` (copied into the image) and,
    given the job's ``spec``, ``mounts`` (the data a run mounts read-only; none with ``--no-auto-mount``).
    """
    context = prepared.context
    files = getattr(context, "files", ())
    if isinstance(files, dict):
        names = sorted(str(k) for k in files)
    else:
        names = sorted(str(getattr(f, "path", f)) for f in files)
    root = getattr(context, "root", None) or getattr(context, "path", None)
    if root is not None:
        names = [_relative(n, Path(root)) for n in names]
    warnings = [*getattr(prepared.snapshot, "warnings", ()), *getattr(context, "warnings", ())]
    return {
        "dockerfile": str(getattr(context, "dockerfile", "")),
        "files": names,
        "content_hash": str(getattr(context, "content_hash", "")),
        "image_tag": str(getattr(context, "image_tag", "")),
        "base_image": str(getattr(context, "base_image", "")),
        "lock": _lock_text(Path(root), names) if root is not None else "",
        "warnings": sorted({str(w) for w in warnings}),
        "mounts": _mounts(prepared.snapshot, spec) if spec is not None else [],
        "local_code": _local_code(prepared.snapshot),
    }


def _why(snapshot: Any) -> dict[str, str]:
    return {str(path): str(reason) for path, reason in getattr(snapshot, "references", ())}


def _local_code(snapshot: Any) -> list[dict[str, str]]:
    """The notebook's own modules, packages and ``%run`` targets copied into the image, and why."""
    why = _why(snapshot)
    return [{"path": rel, "why": why.get(rel, "")} for rel in getattr(snapshot, "local_modules", ())]


def _mounts(snapshot: Any, spec: JobSpec) -> list[dict[str, str]]:
    """The data a run mounts read-only where the notebook reads it, by the run's own rule."""
    from ..capture.references import in_work
    from ..jobs.pipeline import with_data_mounts

    rels = tuple(getattr(snapshot, "data_paths", ()))
    if not rels:
        return []
    # host_paths: show what a run mounts; a backend that cannot mount refuses when the job starts.
    mounted, _notes = with_data_mounts(spec, snapshot, host_paths=True)
    added = {posixpath.normpath(v.target) for v in mounted.volumes[len(spec.volumes):]}
    why = _why(snapshot)
    out = []
    for rel in rels:
        target = posixpath.join(WORK_DIR_IN_CONTAINER, in_work(snapshot.notebook_folder, rel))
        if target in added:
            out.append({"path": rel, "target": target, "why": why.get(rel, "")})
    return out


def _lock_text(root: Path, names: list[str]) -> str:
    """The pinned requirements the image installs (what the user most wants to check)."""
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if base.endswith(".lock") or base.startswith("requirements") and base.endswith(".txt"):
            try:
                return (root / name).read_text(errors="replace")[:200_000]
            except OSError:
                return ""
    return ""


def _relative(name: str, root: Path) -> str:
    try:
        return Path(name).relative_to(root).as_posix()
    except ValueError:
        return name
