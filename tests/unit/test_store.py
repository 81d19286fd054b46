"""The job store: one SQLite file shared by processes and threads."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from jupyter_containerize.errors import JobNotFound
from jupyter_containerize.events import CellStarted, Finished, Log
from jupyter_containerize.jobs.store import JobStore


def test_create_update_get_list_delete(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    rec = store.create("/nb.ipynb", parameters={"lr": 0.1}, spec={"x": 1})
    store.update(rec.id, status="running", metrics={"acc": 0.9})
    got = store.get(rec.id)
    assert got.status == "running" and got.metrics == {"acc": 0.9} and got.parameters == {"lr": 0.1}
    assert store.get(rec.id[:6]).id == rec.id  # unique prefixes work like docker ids
    assert [r.id for r in store.list()] == [rec.id]
    store.delete(rec.id)
    with pytest.raises(JobNotFound):
        store.get(rec.id)


def test_events_keep_order_and_types(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    rec = store.create("/nb.ipynb")
    store.append_event(rec.id, CellStarted(index=0, total=2, source_first_line="import x"))
    store.append_event(rec.id, Log(text="hello"))
    store.append_event(rec.id, Finished(status="succeeded", exit_code=0, outputs=("a",)))
    events = store.events(rec.id)
    assert [s for s, _ in events] == [1, 2, 3]
    assert isinstance(events[0][1], CellStarted) and isinstance(events[2][1], Finished)
    assert events[2][1].outputs == ("a",)
    assert [s for s, _ in store.events(rec.id, after=2)] == [3]


def _append_many(path: str, job_id: str, n: int) -> None:
    store = JobStore(Path(path))
    for i in range(n):
        store.append_event(job_id, Log(text=f"{i}"))


def test_concurrent_processes_and_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = JobStore(path)
    rec = store.create("/nb.ipynb")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), rec.id, 50)) for _ in range(3)]
    threads = [threading.Thread(target=_append_many, args=(str(path), rec.id, 50)) for _ in range(2)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for p in procs:
        p.join(60)
    for t in threads:
        t.join(60)
    seqs = [s for s, _ in store.events(rec.id)]
    assert seqs == list(range(1, 251))


def test_unknown_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    with pytest.raises(JobNotFound) as info:
        store.get("nope")
    assert "jupyter containerize jobs" in str(info.value)


def test_create_takes_only_known_columns(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    for bad in ({"nope": 1}, {"status) VALUES ('x','x',0,0,'x'); --": 1}, {"id": "chosen"}, {"updated": 0.0}):
        with pytest.raises(ValueError, match="unknown job fields"):
            store.create("/nb.ipynb", **bad)
    assert store.list() == []
    rec = store.create("/nb.ipynb", backend="slurm", owner_pid=7, sweep_id="s")
    assert (rec.backend, rec.owner_pid, rec.sweep_id) == ("slurm", 7, "s")


def test_list_filters_by_notebook_before_the_limit(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    mine = [store.create("/a.ipynb").id for _ in range(3)]
    for _ in range(4):
        store.create("/b.ipynb")
    assert [r.id for r in store.list(limit=2, notebook="/a.ipynb")] == mine[::-1][:2]
    assert len(store.list(limit=2)) == 2 and {r.notebook for r in store.list(limit=2)} == {"/b.ipynb"}
    assert store.list(notebook="/c.ipynb") == []


def test_parameters_and_spec_keep_the_order_they_were_given(tmp_path: Path) -> None:
    """Papermill injects in command-line order; a re-run from the stored spec must too."""
    store = JobStore(tmp_path / "s.sqlite")
    given = {"zeta": 1, "alpha": 2, "mid": [3, 1]}
    rec = store.create("/nb.ipynb", parameters=given, spec={"parameters": given})
    got = store.get(rec.id)
    assert list(got.parameters) == ["zeta", "alpha", "mid"]
    assert list(got.spec["parameters"]) == ["zeta", "alpha", "mid"]


def test_a_store_file_of_an_earlier_version_gains_the_name_column(tmp_path: Path) -> None:
    """A store written before jobs had names: opening it adds the column, its jobs keep everything else."""
    import sqlite3

    from jupyter_containerize.jobs import store as store_module

    path = tmp_path / "old.sqlite"
    earlier = store_module._SCHEMA.replace(",\n    name TEXT NOT NULL DEFAULT ''", "")
    assert earlier != store_module._SCHEMA
    db = sqlite3.connect(path)
    db.executescript(earlier)  # the file as the earlier version wrote it
    db.execute("INSERT INTO jobs (id, notebook, created, updated, status, parameters) VALUES "
               "('old1', '/nb.ipynb', 1, 1, 'succeeded', '{\"lr\": 0.1}')")
    db.commit()
    db.close()
    assert "name" not in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(jobs)")}
    reopened = JobStore(path)
    got = reopened.get("old1")
    assert got.name == "" and got.parameters == {"lr": 0.1} and got.status == "succeeded"
    named = reopened.create("/nb.ipynb", name="baseline")
    assert reopened.get(named.id).name == "baseline"
    JobStore(path)  # a second opening (another process) finds the column and changes nothing
    assert [r.name for r in JobStore(path).list()] == ["baseline", ""]


def test_list_filters_by_status_and_name_a_sweeps_jobs_included(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    base = store.create("/a.ipynb", name="exp", status="succeeded")
    swept = [store.create("/a.ipynb", name=f"exp lr={lr}", sweep_id="sweep-1", status="failed") for lr in (0.1, 0.2)]
    store.create("/a.ipynb", name="expert", status="succeeded")
    store.create("/a.ipynb", status="succeeded")
    assert {r.id for r in store.list(name="exp")} == {base.id, *(s.id for s in swept)}
    assert [r.id for r in store.list(name="exp", status="failed")] == [swept[1].id, swept[0].id]
    assert [r.id for r in store.list(name="exp lr=0.1")] == [swept[0].id]
    assert store.list(name="ex") == [] and store.list(name="exp%") == []  # exact words, no pattern


def test_a_sweep_by_id_or_unique_prefix_oldest_first(tmp_path: Path) -> None:
    from jupyter_containerize.errors import JobError
    from jupyter_containerize.events import BuildFinished

    store = JobStore(tmp_path / "s.sqlite")
    first = [store.create("/a.ipynb", sweep_id="sweep-aa11") for _ in range(2)]
    store.create("/a.ipynb", sweep_id="sweep-aa22")
    store.create("/a.ipynb")
    for ref in ("sweep-aa11", "sweep-aa1", "aa11", "aa1"):
        assert [r.id for r in store.sweep(ref)] == [j.id for j in first], ref
    with pytest.raises(JobError, match="start of 2 sweeps"):
        store.sweep("aa")
    for ref in ("sweep-bb", "nope", ""):
        with pytest.raises(JobNotFound, match="No sweep"):
            store.sweep(ref)
    store.append_event(first[0].id, BuildFinished(image_id="i", tag="t", cached=False, seconds=12.5))
    store.append_event(first[1].id, Log(text="x"))
    assert store.build_seconds([j.id for j in first]) == {first[0].id: 12.5}
    assert store.build_seconds([]) == {}


def test_a_notice_is_first_once_across_processes(tmp_path: Path) -> None:
    assert JobStore(tmp_path / "s.sqlite").first_notice("env-a\nwarning x") is True
    again = JobStore(tmp_path / "s.sqlite")  # another process opening the same store
    assert again.first_notice("env-a\nwarning x") is False and again.first_notice("env-b\nwarning x") is True
