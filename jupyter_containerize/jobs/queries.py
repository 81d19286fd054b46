"""Read-only questions every front end asks the job store: the filtered job list and a sweep's comparison.

Like :mod:`.commands`, these return plain values and raise the project's errors; the CLI,
the magics and the server only show what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..comparison import Comparison, Direction, compare

if TYPE_CHECKING:
    from .manager import JobManager
    from .store import JobRecord, JobStore


def list_jobs(manager: JobManager, limit: int = 20, *, status: str | None = None, notebook: str | None = None,
              name: str | None = None, settle: float = 0.0) -> list[JobRecord]:
    """The newest ``limit`` jobs that match every filter, after re-attaching those whose owner process is gone.

    ``notebook``: the notebook's absolute path; ``name``: the jobs named so and the jobs of a sweep named so;
    ``settle``: see :meth:`JobManager.reconcile` (a process that exits right after listing passes some).
    """
    manager.reconcile(settle=settle)
    return manager.store.list(limit=limit, status=status, notebook=notebook, name=name)


def compare_sweep(store: JobStore, sweep_id: str, *, metric: str | None = None,
                  direction: Direction | None = None) -> Comparison:
    """The jobs of sweep ``sweep_id`` (a unique prefix will do) compared on ``metric``; see :mod:`..comparison`.

    Raises:
        JobNotFound: no sweep has that id.
        OptionError: no job of the sweep recorded ``metric``.
    """
    records = store.sweep(sweep_id)
    return compare(records, metric=metric, direction=direction,
                   build_seconds=store.build_seconds([r.id for r in records]))
