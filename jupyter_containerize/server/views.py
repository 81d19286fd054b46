"""Job records as the JSON the REST API returns."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..capture.references import in_work
from ..comparison import Comparison
from ..jobs.commands import own_output_folder
from ..jobs.schedules import ScheduleView
from ..jobs.store import JobRecord
from ..jobspec import WORK_DIR_IN_CONTAINER, JobSpec
from ..papermill_record import find_output_notebook
from .paths import api_path_of

if TYPE_CHECKING:
    from ..capture.snapshot import EnvironmentSnapshot
    from ..jobs.pipeline import Prepared


def job_json(record: JobRecord, root: Path) -> dict[str, Any]:
    """The record, plus paths relative to the server root where they lie inside it."""
    data = record.to_dict()
    data.pop("owner_pid", None)
    data.pop("cancel_requested", None)
    data["done"] = record.done
    data["path"] = api_path_of(root, record.notebook)
    outputs = [api_path_of(root, p) for p in record.outputs]
    data["output_paths"] = [p for p in outputs if p]
    data["output_notebook"] = find_output_notebook(data["output_paths"], record.id)  # <stem>.<job id>.ipynb
    # The folder ``DELETE …?outputs=1`` removes: the job's own, inside the root; None when there is none.
    own = own_output_folder(record)
    data["own_output_folder"] = api_path_of(root, own) if own is not None else None
    return data


def schedule_json(view: ScheduleView, root: Path) -> dict[str, Any]:
    """A schedule with its next and last run (``next_run_text`` in its zone), the notebook's path in the root."""
    data = view.to_dict()
    data["path"] = api_path_of(root, view.schedule.notebook)
    return data


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """A sweep's comparison: rows best first, the metric and direction, the best run and the Vega-Lite spec."""
    return comparison.to_dict(vega_lite=True)


def context_json(prepared: Prepared, spec: JobSpec | None = None) -> dict[str, Any]:
    """A rendered build context as JSON: Dockerfile text, file list, hash and tag.

    Also what the notebook refers to beside itself: ``local_code`` (copied into the image) and,
    given the job's ``spec``, ``mounts`` (the data a run mounts read-only; none with ``--no-auto-mount``).
    """
    context, snapshot = prepared.context, prepared.snapshot
    names = sorted(context.files)
    return {
        "dockerfile": context.dockerfile,
        "files": names,
        "content_hash": context.content_hash,
        "image_tag": context.image_tag,
        "base_image": context.base_image,
        "lock": _lock_text(context.path),
        "warnings": sorted({*snapshot.warnings, *context.warnings}),
        "mounts": _mounts(snapshot, spec) if spec is not None else [],
        "local_code": _local_code(snapshot),
    }


def _local_code(snapshot: EnvironmentSnapshot) -> list[dict[str, str]]:
    """The notebook's own modules, packages and ``%run`` targets copied into the image, and why."""
    why = dict(snapshot.references)
    return [{"path": rel, "why": why.get(rel, "")} for rel in snapshot.local_modules]


def _mounts(snapshot: EnvironmentSnapshot, spec: JobSpec) -> list[dict[str, str]]:
    """The data a run mounts read-only where the notebook reads it, by the run's own rule."""
    from ..jobs.pipeline import with_data_mounts

    if not snapshot.data_paths:
        return []
    # host_paths: show what a run mounts; a backend that cannot mount refuses when the job starts.
    mounted, _notes = with_data_mounts(spec, snapshot, host_paths=True)
    why = dict(snapshot.references)
    by_target = {posixpath.normpath(v.target): v for v in mounted.volumes[len(spec.volumes):]}
    return [{"path": rel, "target": target, "why": why.get(rel, "")} for rel in snapshot.data_paths
            if (target := posixpath.join(WORK_DIR_IN_CONTAINER, in_work(snapshot.notebook_folder, rel))) in by_target]


def _lock_text(root: Path) -> str:
    """The pinned requirements the image installs (what the user most wants to check)."""
    try:
        return (root / "requirements.lock").read_text(errors="replace")[:200_000]
    except OSError:
        return ""
