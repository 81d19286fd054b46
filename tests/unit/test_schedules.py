"""Schedules without an engine: the cron rule, the due/catch-up decision on a fixed clock, claiming an
occurrence once across servers, pause/resume, the store's migration, prune's protected images, bad input."""

from __future__ import annotations

import sqlite3
import threading
from calendar import timegm
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.cron import CronRule, cron_rule, due
from jupyter_containerize.errors import OptionError, ScheduleNotFound
from jupyter_containerize.events import Finished
from jupyter_containerize.jobs import commands
from jupyter_containerize.jobs.manager import Job, JobManager
from jupyter_containerize.jobs.schedules import Scheduler, table, views
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.options import parse
from tests.support.cli import assert_one_clear_error, cli
from tests.support.notebooks import write_notebook

HOURLY = CronRule("0 * * * *")


def utc(text: str) -> int:
    """``2025-03-10 12:30`` as epoch seconds (UTC)."""
    day, clock = text.split()
    y, mo, d = (int(x) for x in day.split("-"))
    h, mi = (int(x) for x in clock.split(":"))
    return timegm((y, mo, d, h, mi, 0, 0, 0, 0))


class RecordingManager(JobManager):
    """The real manager and store, with a submit that records the job (queued) instead of building it."""

    def submit(self, spec: JobSpec, **kwargs: Any) -> Job:
        record = self.store.create(str(spec.notebook), spec=spec.to_dict(), schedule_id=kwargs.get("schedule_id", ""))
        return Job(self, record.id)


def _schedule(store: JobStore, rule: CronRule, next_run: int, notebook: str = "/nb/daily.ipynb") -> str:
    return store.create_schedule(notebook, rule.expression, rule.tz, JobSpec(notebook=Path(notebook)).to_dict(),
                                 next_run).id


# -- the rule and the decision ---------------------------------------------------------------------------

def test_an_hourly_schedule_last_run_three_hours_ago_catches_up_exactly_once() -> None:
    last_run = utc("2025-03-10 09:00")
    next_run = HOURLY.next_after(last_run)  # what the store holds after that run: 10:00
    assert next_run == utc("2025-03-10 10:00")
    now = utc("2025-03-10 12:30")  # the server was down from 09:30 to 12:30: 10:00, 11:00 and 12:00 missed
    decision = due(HOURLY, next_run, now)
    assert decision is not None and decision.occurrence == utc("2025-03-10 10:00")
    assert decision.next_run == utc("2025-03-10 13:00")  # the missed 11:00 and 12:00 are not run
    # Minute by minute until 12:59: nothing more; 13:00 is the next ordinary run.
    assert [t for t in range(now + 60, utc("2025-03-10 13:00"), 60) if due(HOURLY, decision.next_run, t)] == []
    assert due(HOURLY, decision.next_run, utc("2025-03-10 13:00")) is not None


def test_a_schedule_is_not_due_before_its_time_nor_while_paused() -> None:
    assert due(HOURLY, utc("2025-03-10 10:00"), utc("2025-03-10 09:59")) is None
    assert due(HOURLY, utc("2025-03-10 10:00"), utc("2025-03-10 12:00"), paused=True) is None


def test_times_are_read_in_the_schedules_zone() -> None:
    berlin = cron_rule("0 3 * * *", "Europe/Berlin")
    assert berlin.next_after(utc("2025-01-10 00:00")) == utc("2025-01-10 02:00")  # 03:00 CET
    assert berlin.next_after(utc("2025-07-10 00:00")) == utc("2025-07-10 01:00")  # 03:00 CEST
    assert berlin.local_text(utc("2025-07-10 01:00")) == "2025-07-10 03:00 CEST"
    assert cron_rule("0 3 * * *").local_text(utc("2025-07-10 03:00")) == "2025-07-10 03:00 UTC"
    assert cron_rule("@daily").next_after(utc("2025-07-10 03:00")) == utc("2025-07-11 00:00")


@pytest.mark.parametrize(("expression", "tz", "words"), [
    ("61 * * * *", None, "not a valid cron expression"),
    ("* * * *", None, "five fields"),
    ("* * * * * 30", None, "five fields"),  # croniter's seconds field: the scheduler wakes once a minute
    ("0 0 31 2 *", None, "not a valid cron expression"),  # never happens
    ("@reboot", None, "five fields"),
    ("", None, "five fields"),
    ("every day", None, "five fields"),
    ("0 3 * * *", "Mars/Olympus", "--tz 'Mars/Olympus' is not a time zone"),
    ("0 3 * * *", "../../etc/passwd", "is not a time zone"),
])
def test_bad_cron_expressions_and_zones_are_one_sentence(expression: str, tz: str | None, words: str) -> None:
    with pytest.raises(OptionError, match=words.replace("*", r"\*")):
        cron_rule(expression, tz)


# -- claiming, pausing, resuming ----------------------------------------------------------------------------

def test_a_due_occurrence_is_started_once_however_many_servers_tick(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    store = JobStore(path)
    now = utc("2025-03-10 12:30")
    schedule_id = _schedule(store, HOURLY, utc("2025-03-10 10:00"))
    servers = [Scheduler(RecordingManager(JobStore(path)), clock=lambda: now) for _ in range(8)]
    gate = threading.Barrier(len(servers))
    started: list[Any] = []

    def tick(scheduler: Scheduler) -> None:
        gate.wait()
        started.extend(scheduler.tick())

    threads = [threading.Thread(target=tick, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(started) == 1 and started[0].occurrence == utc("2025-03-10 10:00") and not started[0].error
    runs = store.list(schedule_id=schedule_id)
    assert [r.id for r in runs] == [started[0].job_id]
    record = store.schedule(schedule_id)
    assert record.next_run == utc("2025-03-10 13:00") and record.last_run == utc("2025-03-10 10:00")
    assert record.last_job_id == runs[0].id
    assert sum(len(s.tick(now + 60)) for s in servers) == 0  # a minute later: nothing is due


def test_claiming_is_conditioned_on_the_occurrence_and_on_not_paused(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    schedule_id = _schedule(store, HOURLY, 100)
    assert not store.claim_schedule(schedule_id, 99, 200, 99)  # another occurrence than the stored one
    store.set_schedule_paused(schedule_id, True)
    assert not store.claim_schedule(schedule_id, 100, 200, 100)
    store.set_schedule_paused(schedule_id, False)
    assert store.claim_schedule(schedule_id, 100, 200, 100)
    assert not store.claim_schedule(schedule_id, 100, 200, 100)  # taken


def test_a_paused_schedule_starts_nothing_and_resumes_from_its_next_time(tmp_path: Path) -> None:
    manager = RecordingManager(JobStore(tmp_path / "jobs.sqlite"))
    schedule_id = _schedule(manager.store, HOURLY, utc("2025-03-10 10:00"))
    scheduler = Scheduler(manager)
    paused = commands.pause(manager, schedule_id[len("sched-"):])  # a prefix without sched- will do
    assert paused.schedule.paused and "paused" in paused.summary()
    assert scheduler.tick(utc("2025-03-10 12:30")) == [] and manager.store.list() == []
    resumed = commands.resume(manager, schedule_id, now=utc("2025-03-10 12:30"))
    assert not resumed.schedule.paused and resumed.schedule.next_run == utc("2025-03-10 13:00")  # 10-12 not caught up
    assert scheduler.tick(utc("2025-03-10 12:31")) == []
    assert len(scheduler.tick(utc("2025-03-10 13:00"))) == 1


def test_a_run_that_cannot_start_is_recorded_on_the_schedule_and_the_next_time_tries_again(tmp_path: Path) -> None:
    manager = JobManager(JobStore(tmp_path / "jobs.sqlite"))
    schedule_id = _schedule(manager.store, HOURLY, utc("2025-03-10 10:00"), notebook=str(tmp_path / "gone.ipynb"))
    started = Scheduler(manager).tick(utc("2025-03-10 10:00"))
    assert len(started) == 1 and started[0].job_id == "" and "gone.ipynb" in started[0].error
    record = manager.store.schedule(schedule_id)
    assert record.last_error == started[0].error and record.next_run == utc("2025-03-10 11:00")
    text = table(views(manager.store, [record]))
    assert "not started" in text and "gone.ipynb" in text
    assert manager.store.list() == []


def test_the_scheduler_sleeps_until_the_next_time_at_most_a_minute(tmp_path: Path) -> None:
    manager = RecordingManager(JobStore(tmp_path / "jobs.sqlite"))
    scheduler = Scheduler(manager, poll=600)
    assert scheduler.poll == 60  # it wakes at least once a minute
    assert scheduler.seconds_to_wait(0) == 60
    _schedule(manager.store, HOURLY, 10)
    assert 9 < scheduler.seconds_to_wait(0) < 11
    assert scheduler.seconds_to_wait(100) == 0.5  # overdue: soon


# -- the store, prune ---------------------------------------------------------------------------------------

def test_a_store_file_of_an_earlier_version_gains_schedules(tmp_path: Path) -> None:
    """A store written before schedules: opening it adds jobs.schedule_id and the schedules table."""
    from jupyter_containerize.jobs import store as store_module

    path = tmp_path / "old.sqlite"
    earlier = store_module._SCHEMA.replace(",\n    schedule_id TEXT NOT NULL DEFAULT ''", "")
    earlier = earlier[:earlier.index("CREATE TABLE IF NOT EXISTS schedules")]
    assert "schedule" not in earlier
    db = sqlite3.connect(path)
    db.executescript(earlier)
    db.execute("INSERT INTO jobs (id, notebook, created, updated, status) VALUES ('old1', '/nb.ipynb', 1, 1, 'succeeded')")
    db.commit()
    db.close()
    store = JobStore(path)
    assert store.get("old1").schedule_id == "" and store.schedules() == []
    schedule_id = _schedule(store, HOURLY, 100)
    run = store.create("/nb.ipynb", schedule_id=schedule_id)
    assert [r.id for r in JobStore(path).list(schedule_id=schedule_id)] == [run.id]


def test_prune_keeps_the_images_of_the_schedules_runs(tmp_path: Path) -> None:
    manager = RecordingManager(JobStore(tmp_path / "jobs.sqlite"))
    store = manager.store
    schedule_id = _schedule(store, HOURLY, 100)
    old = store.create("/nb/daily.ipynb", schedule_id=schedule_id, image_tag="jc/daily:a", image_id="sha256:a")
    store.update(old.id, status="running")
    manager._finish(old.id, Finished(status="succeeded", exit_code=0))  # the manager remembers the run's image
    assert store.schedule(schedule_id).image_tag == "jc/daily:a"
    newer = store.create("/nb/daily.ipynb", schedule_id=schedule_id, image_tag="jc/daily:b", image_id="sha256:b")
    store.create("/nb/other.ipynb", image_tag="jc/other:c", image_id="sha256:c")  # not a schedule's
    assert store.schedule_images() == {"jc/daily:a", "sha256:a", "jc/daily:b", "sha256:b"}
    store.delete(old.id)  # pruned records: the remembered image still stays
    store.delete(newer.id)
    assert store.schedule_images() == {"jc/daily:a", "sha256:a"}
    store.delete_schedule(schedule_id)
    assert store.schedule_images() == set()


# -- commands, parser and CLI without an engine ----------------------------------------------------------------

def test_schedule_is_parsed_with_runs_options_and_a_cron(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "daily.ipynb", "print(x)", parameters="x = 1")
    cmd = parse(["schedule", str(nb), "--cron", "*/15  * * * *", "--tz", "Europe/Berlin", "-p", "x", "2",
                 "--name", "nightly", "--memory", "1g"])
    assert cmd.command == "schedule" and cmd.args["rule"] == CronRule("*/15 * * * *", "Europe/Berlin")
    assert cmd.spec is not None and cmd.spec.parameters == {"x": 2} and cmd.spec.name == "nightly"
    assert cmd.spec.resources.memory == "1g"
    for argv, words in ((["schedule", str(nb)], "needs --cron"),
                        (["schedule", str(nb), "--cron", "* * * * *", "--sweep", "x=1,2"], "not a sweep"),
                        (["schedule", str(nb), "--cron", "* * * * *", "--gpus", "lots"], "--gpus"),
                        (["pause"], "SCHEDULE")):
        with pytest.raises(OptionError, match=words):
            parse(argv)


def test_unknown_schedules_are_404_material(tmp_path: Path) -> None:
    manager = JobManager(JobStore(tmp_path / "jobs.sqlite"))
    for call in (commands.pause, commands.resume, commands.unschedule):
        with pytest.raises(ScheduleNotFound, match="No schedule 'nope'"):
            call(manager, "nope")


def test_cli_refuses_a_bad_schedule_in_one_sentence_and_saves_nothing(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "daily.ipynb", "print(x)", parameters="x = 1")
    store = tmp_path / "jobs.sqlite"
    for args, words in ((("--cron", "0 25 * * *"), "not a valid cron expression"),
                        (("--cron", "* * *"), "five fields"),
                        (("--cron", "0 3 * * *", "--tz", "Nowhere/City"), "not a time zone"),
                        (("--cron", "0 3 * * *", "-p", "y", "2"), "has no parameter y"),  # the run's own check
                        (("--cron", "0 3 * * *", "--memory", "lots"), "--memory")):
        assert_one_clear_error(cli("schedule", str(nb), *args, cwd=tmp_path, store=store), words)
    assert not store.exists() or JobStore(store).schedules() == []
    assert_one_clear_error(cli("unschedule", "nope", cwd=tmp_path, store=store), "No schedule 'nope'")
    listed = cli("schedules", cwd=tmp_path, store=store)
    assert listed.returncode == 0 and "no schedules" in listed.stdout


def test_magics_dispatch_every_schedule_command(shell: Any, tmp_path: Path, capsys: Any) -> None:
    """The magic dispatches do_<command> for every CLI subcommand: schedules included."""
    store = JobStore(tmp_path / "jobs.sqlite")  # the shell fixture's store
    schedule_id = _schedule(store, HOURLY, 2**33)
    for line in ("schedules", f"pause {schedule_id}", f"resume {schedule_id}", "schedules --json",
                 f"unschedule {schedule_id}"):
        assert shell.run_cell(f"%containerize {line}").error_in_exec is None, line
    out = capsys.readouterr().out
    assert schedule_id in out and "paused" in out and f"removed schedule {schedule_id}" in out
    assert store.schedules() == []
    result = shell.run_cell("%containerize schedule --notebook x.ipynb --cron '0 3 * *'")
    assert not result.success and "five fields" in capsys.readouterr().err + str(result.error_in_exec)


def test_every_cli_subcommand_has_a_magic() -> None:
    """The magic dispatches ``do_<command>``: a subcommand without one would crash it."""
    from jupyter_containerize.cli import COMMANDS
    from jupyter_containerize.magics import ContainerizeMagics
    from jupyter_containerize.options import SUBCOMMANDS

    assert set(COMMANDS) == set(SUBCOMMANDS)
    assert [c for c in SUBCOMMANDS if not hasattr(ContainerizeMagics, "do_" + c.replace("-", "_"))] == []
