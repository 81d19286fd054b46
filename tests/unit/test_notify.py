"""Notifications when a job ends: a real local webhook and a real command; never the job's environment."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobs.notify import send, summary
from jupyter_containerize.validators import notify_target
from jupyter_containerize.jobs.store import JobRecord, JobStore

from tests.support.rest import webhook as local_webhook

SECRET = "hunter2-do-not-send"


@pytest.fixture()
def record(tmp_path: Path) -> JobRecord:
    store = JobStore(tmp_path / "s.sqlite")
    rec = store.create("/home/u/train.ipynb", parameters={"lr": 0.1}, spec={"env": {"API_KEY": SECRET}})
    store.update(rec.id, status="failed", error="cell 3 raised ValueError: bad", exit_code=1, started=rec.created,
                 finished=rec.created + 42, metrics={"loss": 0.5}, output_dir="/home/u/train.jc-jobs/x")
    return store.get(rec.id)


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with local_webhook() as hook:
        yield hook


def test_a_webhook_receives_the_summary_and_never_the_environment(record: JobRecord,
                                                                  webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    assert send(url, record) == ""
    [body] = received
    assert body.pop("_type") == "application/json"
    assert body["id"] == record.id and body["status"] == "failed" and body["metrics"] == {"loss": 0.5}
    assert body["parameters"] == {"lr": 0.1} and body["duration"] == pytest.approx(42)
    assert body["text"] == f"Container job {record.id} (train.ipynb) failed after 42 s: cell 3 raised ValueError: bad."
    assert SECRET not in json.dumps(body) and "spec" not in body


def test_a_command_gets_the_summary_on_stdin_and_in_its_environment(record: JobRecord, tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = tmp_path / "hook.py"
    script.write_text("import json, os, sys\n"
                      "d = json.load(sys.stdin)\n"
                      f"json.dump({{'stdin': d, 'status': os.environ['JC_JOB_STATUS'], 'id': os.environ['JC_JOB_ID']}},"
                      f" open({str(out)!r}, 'w'))\n")
    assert send(f"{sys.executable} {script}", record, env={"PATH": "/usr/bin:/bin"}) == ""
    got = json.loads(out.read_text())
    assert got["status"] == "failed" and got["id"] == record.id and got["stdin"]["exit_code"] == 1


def test_a_failing_notification_is_one_sentence_never_an_exception(record: JobRecord, tmp_path: Path) -> None:
    said = send(f"{sys.executable} -c \"import sys; sys.exit('no route')\"", record)
    assert said == "the notify command exited with code 1: no route"
    assert send(str(tmp_path / "no-such-command"), record).startswith("the notify command could not run")
    assert send("http://127.0.0.1:1/hook", record).startswith("the webhook 127.0.0.1 did not take the notification")


@pytest.mark.parametrize(("target", "words"), [("", "--notify is empty"), ("notify-send 'unclosed", "quote"),
                                               ("https:///nohost", "without a host")])
def test_bad_targets_are_refused_before_the_job(target: str, words: str) -> None:
    with pytest.raises(OptionError, match=words):
        notify_target(target)


def test_a_succeeded_job_reads_as_one_sentence(record: JobRecord) -> None:
    from dataclasses import replace

    assert summary(replace(record, status="succeeded"))["text"].endswith("succeeded after 42 s.")
