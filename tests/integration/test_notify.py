"""Someone hears when a job ends: the CLI's --notify posts the summary to a real local webhook before it exits,
and the config's notify command is run for a job that names none (real engine, tiny notebook)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.rest import webhook as local_webhook
from tests.support.cli import cli
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]
SECRET = "s3cr3t-not-for-webhooks"


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with local_webhook() as hook:
        yield hook


def test_the_cli_posts_the_summary_before_it_exits(tmp_path: Path, job_store: Path, engine: docker.DockerClient,
                                                    webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    nb = write_notebook(tmp_path / "train.ipynb", "import os\nprint(len(os.environ['API_KEY']))",
                        "raise ValueError('diverged')")
    result = cli("run", str(nb), "--notify", url, "-e", f"API_KEY={SECRET}", "--name", "nightly", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    job_id = result.stdout.split()[1]
    [summary] = received
    summary.pop("_type")
    assert summary["id"] == job_id and summary["status"] == "failed" and summary["name"] == "nightly"
    assert summary["error"] == "ValueError: diverged" and summary["failing_cell"] == 1
    assert summary["text"].startswith(f"Container job {job_id} (train.ipynb) failed after ")
    assert SECRET not in json.dumps(summary)


def test_the_configs_command_runs_when_the_job_names_none(tmp_path: Path, job_store: Path,
                                                          engine: docker.DockerClient) -> None:
    got = tmp_path / "got.json"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import json, os, sys\njson.dump([os.environ['JC_JOB_STATUS'], json.load(sys.stdin)['id']], "
                    f"open({str(got)!r}, 'w'))\n")
    nb = write_notebook(tmp_path / "ok.ipynb", "print('fine')")
    result = cli("run", str(nb), cwd=tmp_path, env={"JC_NOTIFY": f"{sys.executable} {hook}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(got.read_text()) == ["succeeded", result.stdout.split()[1]]
