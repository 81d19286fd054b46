"""The one job store: SQLite in the Jupyter data dir, safe for several processes.

Every front end (magic, CLI, server, sidebar) reads and writes jobs here, so a
job started in a notebook shows in the sidebar and in ``jupyter containerize jobs``.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import JobError, JobNotFound, ScheduleNotFound
from ..events import TERMINAL_STATUSES, Event, event_from_dict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    status TEXT NOT NULL,
    backend TEXT NOT NULL DEFAULT 'docker',
    backend_ref TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL DEFAULT '{}',
    parameters TEXT NOT NULL DEFAULT '{}',
    image_tag TEXT NOT NULL DEFAULT '',
    image_id TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    lock_hash TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    failing_cell INTEGER,
    error TEXT NOT NULL DEFAULT '',
    output_dir TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]',
    metrics TEXT NOT NULL DEFAULT '{}',
    sweep_id TEXT NOT NULL DEFAULT '',
    owner_pid INTEGER,
    last_log_time TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL DEFAULT '',
    schedule_id TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
CREATE INDEX IF NOT EXISTS jobs_sweep ON jobs(sweep_id);
CREATE TABLE IF NOT EXISTS notices (
    key TEXT PRIMARY KEY,
    first REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    cron TEXT NOT NULL,
    tz TEXT NOT NULL DEFAULT 'UTC',
    spec TEXT NOT NULL DEFAULT '{}',
    name TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    next_run INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    last_run INTEGER,
    last_job_id TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    image_tag TEXT NOT NULL DEFAULT '',
    image_id TEXT NOT NULL DEFAULT ''
);
"""
# Columns added since the first store: a store file written before gets them (ALTER TABLE) when opened.
# Each has a default, so processes of an older version keep writing rows without naming it.
_ADDED_COLUMNS = (("name", "TEXT NOT NULL DEFAULT ''"), ("schedule_id", "TEXT NOT NULL DEFAULT ''"),
                  ("attempt", "INTEGER NOT NULL DEFAULT 1"))

_JSON_FIELDS = ("spec", "parameters", "outputs", "metrics")
SCHEDULE_PREFIX = "sched-"
_UPDATABLE = {
    "started", "finished", "status", "backend", "backend_ref", "spec", "parameters", "image_tag", "image_id",
    "digest", "lock_hash", "exit_code", "failing_cell", "error", "output_dir", "outputs", "metrics",
    "sweep_id", "owner_pid", "last_log_time", "cancel_requested", "name", "schedule_id", "attempt",
}


@dataclass
class JobRecord:
    """One row of the store."""

    id: str
    notebook: str
    created: float
    updated: float
    status: str
    backend: str = "docker"
    backend_ref: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    image_tag: str = ""
    image_id: str = ""
    digest: str = ""
    lock_hash: str = ""
    exit_code: int | None = None
    failing_cell: int | None = None
    error: str = ""
    output_dir: str = ""
    outputs: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    sweep_id: str = ""
    owner_pid: int | None = None
    last_log_time: str = ""
    cancel_requested: int = 0
    name: str = ""
    schedule_id: str = ""  # the schedule that started this run ("" for a run started by hand)
    attempt: int = 1  # the attempt running or last run (--retries)
    started: float | None = None
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def attempts(self) -> int:
        """How many attempts the job may have in all (``--retries`` + 1)."""
        return int(self.spec.get("retries") or 0) + 1

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["duration"] = self.duration
        return d


@dataclass
class ScheduleRecord:
    """One schedule: a notebook's run (its checked JobSpec) at each occurrence of a cron expression.

    ``next_run``: the occurrence the scheduler runs next (epoch seconds); ``last_run``: the occurrence it
    ran last, ``last_job_id`` the job it started then (or ``last_error``: why none started).
    ``image_tag``/``image_id``: the image of its last run that built one, which ``prune`` keeps.
    """

    id: str
    notebook: str
    cron: str
    tz: str
    created: float
    updated: float
    next_run: int
    spec: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    paused: bool = False
    last_run: int | None = None
    last_job_id: str = ""
    last_error: str = ""
    image_tag: str = ""
    image_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def default_store_path() -> Path:
    """``$JC_STORE`` or ``<jupyter data dir>/containerize/jobs.sqlite``."""
    override = os.environ.get("JC_STORE")
    if override:
        return Path(override)
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "containerize" / "jobs.sqlite"


def default_timeout() -> float:
    """How long a call waits for a store another process holds: ``$JC_STORE_TIMEOUT`` s, default 30."""
    try:
        return max(0.1, float(os.environ.get("JC_STORE_TIMEOUT") or 30.0))
    except ValueError:
        return 30.0


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def new_schedule_id() -> str:
    return SCHEDULE_PREFIX + uuid.uuid4().hex[:8]


class JobStore:
    """Jobs and their event logs. Each call opens its own short transaction."""

    def __init__(self, path: Path | None = None, timeout: float | None = None) -> None:
        self.path = path or default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout if timeout is not None else default_timeout()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            _add_columns(db)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise JobError(f"The job store {self.path} cannot be opened ({e})", "Check its permissions.") from None
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        try:
            yield db
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise JobError(f"The job store {self.path} stayed locked for {self.timeout:.0f} s",
                               "Another process holds it; try again when it is done.") from None
            raise
        finally:
            db.close()

    def create(self, notebook: str, *, status: str = "queued", job_id: str | None = None, **values: Any) -> JobRecord:
        """Insert a job; ``values`` are any of the fields :meth:`update` takes (column names are never free text)."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        now = time.time()
        job_id = job_id or new_job_id()
        row = {"id": job_id, "notebook": notebook, "created": now, "updated": now, "status": status}
        row.update(_encode(values))
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._connect() as db:
            db.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", tuple(row.values()))
        return self.get(job_id)

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        row = _encode(values)
        row["updated"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in row)
        with self._connect() as db:
            cur = db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*row.values(), job_id))
            if cur.rowcount == 0:
                raise JobNotFound(f"No job {job_id!r} in the store", "List jobs with `jupyter containerize jobs`.")

    def get(self, job_id: str) -> JobRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None and job_id:
                rows = db.execute("SELECT * FROM jobs WHERE id LIKE ? LIMIT 2", (job_id + "%",)).fetchall()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise JobNotFound(f"No job {job_id!r} in the store", "List jobs with `jupyter containerize jobs`.")
        return _decode(row)

    def list(self, limit: int = 50, status: str | None = None, sweep_id: str | None = None,
             notebook: str | None = None, name: str | None = None,
             schedule_id: str | None = None) -> builtins.list[JobRecord]:
        """The newest ``limit`` jobs matching every filter given.

        ``notebook``: its absolute path as stored. ``name``: the jobs named so, and the jobs of a sweep
        named so (theirs is ``NAME lr=0.1 …``). ``schedule_id``: the runs a schedule started.
        """
        sql, args = "SELECT * FROM jobs", []
        where = []
        if name:
            where.append("(name = ? OR substr(name, 1, ?) = ?)")
            args += [name, len(name) + 1, name + " "]
        if status:
            where.append("status = ?")
            args.append(status)
        if sweep_id:
            where.append("sweep_id = ?")
            args.append(sweep_id)
        if notebook:
            where.append("notebook = ?")
            args.append(notebook)
        if schedule_id:
            where.append("schedule_id = ?")
            args.append(schedule_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC LIMIT ?"
        with self._connect() as db:
            return [_decode(r) for r in db.execute(sql, (*args, limit)).fetchall()]

    def sweep(self, sweep_id: str) -> builtins.list[JobRecord]:
        """The jobs of a sweep, oldest first; ``sweep_id`` may be a unique prefix, with or without ``sweep-``.

        Raises:
            JobNotFound: no sweep has that id.
            JobError: the prefix names several sweeps.
        """
        with self._connect() as db:
            ids = [sweep_id] if sweep_id and db.execute(
                "SELECT 1 FROM jobs WHERE sweep_id = ? LIMIT 1", (sweep_id,)).fetchone() else []
            if not ids and sweep_id:
                prefixes = {sweep_id, sweep_id if sweep_id.startswith("sweep-") else "sweep-" + sweep_id}
                ids = sorted({r[0] for p in prefixes for r in db.execute(
                    "SELECT DISTINCT sweep_id FROM jobs WHERE sweep_id != '' AND substr(sweep_id, 1, ?) = ?",
                    (len(p), p))})
            if len(ids) > 1:
                raise JobError(f"{sweep_id!r} is the start of {len(ids)} sweeps' ids ({', '.join(ids[:5])})",
                               "Give more of the id.")
            if not ids:
                raise JobNotFound(f"No sweep {sweep_id!r} in the store",
                                  "Its id is printed by `run --sweep`; `jupyter containerize jobs` lists jobs.")
            rows = db.execute("SELECT * FROM jobs WHERE sweep_id = ? ORDER BY created, rowid", (ids[0],)).fetchall()
        return [_decode(r) for r in rows]

    def build_seconds(self, job_ids: builtins.list[str]) -> dict[str, float]:
        """How long each job's image took to build (its ``BuildFinished``; a sweep's one build shows on each job)."""
        if not job_ids:
            return {}
        marks = ", ".join("?" for _ in job_ids)
        with self._connect() as db:
            rows = db.execute(f"SELECT job_id, data FROM events WHERE type = 'BuildFinished' AND job_id IN ({marks}) "
                              "ORDER BY job_id, seq", tuple(job_ids)).fetchall()
        seconds: dict[str, float] = {}
        for row in rows:
            value = json.loads(row["data"]).get("seconds")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                seconds[row["job_id"]] = float(value)
        return seconds

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def first_notice(self, key: str) -> bool:
        """True the first time ``key`` is noticed in this store, False ever after (a warning said once)."""
        with self._connect() as db:
            return db.execute("INSERT OR IGNORE INTO notices (key, first) VALUES (?, ?)",
                              (key, time.time())).rowcount == 1

    def append_event(self, job_id: str, event: Event) -> int:
        """Append one event; return its sequence number (1-based)."""
        data = event.to_dict()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (job_id,)).fetchone()[0]
            db.execute("INSERT INTO events (job_id, seq, time, type, data) VALUES (?, ?, ?, ?, ?)",
                       (job_id, seq, data["time"], data["type"], json.dumps(data, default=str)))
            db.execute("COMMIT")
        return int(seq)

    def events(self, job_id: str, after: int = 0) -> builtins.list[tuple[int, Event]]:
        """Events with sequence numbers greater than ``after``, in order."""
        with self._connect() as db:
            rows = db.execute("SELECT seq, data FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
                              (job_id, after)).fetchall()
        return [(int(r["seq"]), event_from_dict(json.loads(r["data"]))) for r in rows]

    # -- schedules -------------------------------------------------------------------------------
    def create_schedule(self, notebook: str, cron: str, tz: str, spec: dict[str, Any], next_run: int,
                        name: str = "") -> ScheduleRecord:
        """Insert a schedule whose first occurrence is ``next_run``."""
        now = time.time()
        schedule_id = new_schedule_id()
        with self._connect() as db:
            db.execute("INSERT INTO schedules (id, notebook, cron, tz, spec, name, created, updated, next_run) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (schedule_id, notebook, cron, tz, json.dumps(spec, default=str), name, now, now, int(next_run)))
        return self.schedule(schedule_id)

    def schedule(self, schedule_id: str) -> ScheduleRecord:
        """A schedule by id or unique prefix (``sched-`` may be left out).

        Raises:
            ScheduleNotFound: no schedule has that id.
            JobError: the prefix names several schedules.
        """
        with self._connect() as db:
            row = db.execute("SELECT * FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
            if row is None and schedule_id:
                prefixes = {schedule_id, schedule_id if schedule_id.startswith(SCHEDULE_PREFIX)
                            else SCHEDULE_PREFIX + schedule_id}
                rows = {r["id"]: r for p in prefixes for r in db.execute(
                    "SELECT * FROM schedules WHERE substr(id, 1, ?) = ?", (len(p), p))}
                if len(rows) > 1:
                    raise JobError(f"{schedule_id!r} is the start of {len(rows)} schedules' ids", "Give more of the id.")
                row = next(iter(rows.values()), None)
        if row is None:
            raise ScheduleNotFound(f"No schedule {schedule_id!r} in the store",
                                   "List schedules with `jupyter containerize schedules`.")
        return _decode_schedule(row)

    def schedules(self) -> builtins.list[ScheduleRecord]:
        """Every schedule, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM schedules ORDER BY created, rowid").fetchall()
        return [_decode_schedule(r) for r in rows]

    def delete_schedule(self, schedule_id: str) -> None:
        """Forget a schedule (its runs stay, still linked to its id)."""
        with self._connect() as db:
            if db.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 0:
                raise ScheduleNotFound(f"No schedule {schedule_id!r} in the store",
                                       "List schedules with `jupyter containerize schedules`.")

    def set_schedule_paused(self, schedule_id: str, paused: bool, next_run: int | None = None) -> None:
        """Pause or resume a schedule; ``next_run``: its next occurrence from now on (a resume)."""
        sets, args = "paused = ?, updated = ?", [int(paused), time.time()]
        if next_run is not None:
            sets += ", next_run = ?"
            args.append(int(next_run))
        with self._connect() as db:
            if db.execute(f"UPDATE schedules SET {sets} WHERE id = ?", (*args, schedule_id)).rowcount == 0:
                raise ScheduleNotFound(f"No schedule {schedule_id!r} in the store",
                                       "List schedules with `jupyter containerize schedules`.")

    def claim_schedule(self, schedule_id: str, expected: int, next_run: int, occurrence: int) -> bool:
        """Take the occurrence ``expected`` of a schedule for this process: True for exactly one caller.

        One UPDATE moves ``next_run`` from ``expected`` to ``next_run`` only where it still is ``expected``
        and the schedule is not paused, so of several servers on one store one runs each occurrence.
        """
        with self._connect() as db:
            cur = db.execute("UPDATE schedules SET next_run = ?, last_run = ?, last_job_id = '', last_error = '', "
                             "updated = ? WHERE id = ? AND next_run = ? AND paused = 0",
                             (int(next_run), int(occurrence), time.time(), schedule_id, int(expected)))
            return cur.rowcount == 1

    def schedule_started(self, schedule_id: str, job_id: str = "", error: str = "") -> None:
        """Record the job a claimed occurrence started, or why none started."""
        with self._connect() as db:
            db.execute("UPDATE schedules SET last_job_id = ?, last_error = ?, updated = ? WHERE id = ?",
                       (job_id, error, time.time(), schedule_id))

    def schedule_image(self, schedule_id: str, tag: str, image_id: str) -> None:
        """Remember the image a schedule's run used (prune keeps it for the next runs)."""
        with self._connect() as db:
            db.execute("UPDATE schedules SET image_tag = ?, image_id = ? WHERE id = ?", (tag, image_id, schedule_id))

    def schedule_images(self) -> set[str]:
        """The image tags and ids the schedules' runs need: each one's remembered image, and the image of
        its newest run that has one."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT image_tag, image_id FROM schedules UNION SELECT j.image_tag, j.image_id FROM jobs j "
                "WHERE j.schedule_id != '' AND j.image_tag != '' AND j.created = (SELECT MAX(k.created) FROM jobs k "
                "WHERE k.schedule_id = j.schedule_id AND k.image_tag != '') "
                "AND j.schedule_id IN (SELECT id FROM schedules)").fetchall()
        return {value for row in rows for value in row if value}


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    # Insertion order is kept: parameters are injected in the order the user gave them (papermill's rule).
    return {k: (json.dumps(v, default=str) if k in _JSON_FIELDS else v) for k, v in values.items()}


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a store file of an earlier version up to the schema (another process may be doing the same)."""
    have = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
    for column, declaration in _ADDED_COLUMNS:
        if column in have:
            continue
        try:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise
    db.execute("CREATE INDEX IF NOT EXISTS jobs_schedule ON jobs(schedule_id)")  # on an added column: after it


def _decode_schedule(row: sqlite3.Row) -> ScheduleRecord:
    d = dict(row)
    d["spec"] = json.loads(d["spec"]) if d.get("spec") else {}
    d["paused"] = bool(d["paused"])
    return ScheduleRecord(**d)


def _decode(row: sqlite3.Row) -> JobRecord:
    d = dict(row)
    for k in _JSON_FIELDS:
        d[k] = json.loads(d[k]) if d.get(k) else ({} if k != "outputs" else [])
    return JobRecord(**d)
