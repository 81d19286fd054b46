"""--retries: which ends are retried (never the notebook's own failure), the backoff, how a retry reads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from jupyter_containerize.backends.base import RunOutcome
from jupyter_containerize.errors import OptionError
from jupyter_containerize.events import CellFinished, CellStarted, Finished, NotebookStarted, Retrying
from jupyter_containerize.jobs.retries import MAX_BACKOFF_SECONDS, backoff, out_of_memory_error, why_lost
from jupyter_containerize.jobspec import JobSpec, Resources
from jupyter_containerize.options import MAX_RETRIES, parse
from jupyter_containerize.progress import fold_all
from jupyter_containerize.server.payload import options_argv
from jupyter_containerize.textview import TextProgress

FAILED_CELL = Finished(status="failed", exit_code=1, error="ValueError: bad", failing_cell=2)
SIGTERM = Finished(status="cancelled", exit_code=143, error="Stopped by SIGTERM.")


@pytest.mark.parametrize(("outcome", "runner_end", "lost"), [
    # the notebook's own ends: never retried
    (RunOutcome(exit_code=0), Finished(status="succeeded", exit_code=0), ""),
    (RunOutcome(exit_code=1), FAILED_CELL, ""),
    (RunOutcome(exit_code=1), Finished(status="failed", exit_code=1, error="timed out after 30m at cell 7 of 12"), ""),
    (RunOutcome(exit_code=1), None, ""),  # the runner's own crash (no report)
    (RunOutcome(exit_code=137, out_of_memory=True), None, ""),  # the user's call: --memory
    (RunOutcome(exit_code=1, out_of_memory=True), FAILED_CELL, ""),
    # lost for a reason outside the notebook
    (RunOutcome(exit_code=None, lost="the Docker engine closed the connection"), None,
     "the Docker engine closed the connection"),
    (RunOutcome(exit_code=143), SIGTERM, "the container was stopped from outside (Stopped by SIGTERM.)"),
    (RunOutcome(exit_code=137), None, "the container was killed from outside (exit code 137)"),
    (RunOutcome(exit_code=None), None, "the job's container is gone (removed from outside)"),
])
def test_only_ends_that_are_not_the_notebooks_are_retried(outcome: RunOutcome, runner_end: Finished | None,
                                                          lost: str) -> None:
    assert why_lost(outcome, runner_end) == lost


def test_backoff_doubles_from_the_first_delay_and_is_bounded() -> None:
    assert [backoff(a, 10.0) for a in (2, 3, 4)] == [10.0, 20.0, 40.0]
    assert backoff(30, 10.0) == MAX_BACKOFF_SECONDS


def test_out_of_memory_names_the_limit_and_says_it_is_not_retried(tmp_path: Path) -> None:
    said = out_of_memory_error(JobSpec(notebook=tmp_path / "nb.ipynb", resources=Resources(memory="64m")))
    assert "--memory 64m" in said and "not retried" in said and "Raise --memory" in said


def test_retries_go_through_the_one_option_parser(tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    spec = parse(["run", str(nb), "--retries", "3"]).spec
    assert spec is not None and spec.retries == 3
    assert JobSpec.from_dict(spec.to_dict()).retries == 3
    over_rest = parse(["run", str(nb), *options_argv({"retries": 2})]).spec  # the sidebar and REST
    assert over_rest is not None and over_rest.retries == 2
    for bad in ("-1", str(MAX_RETRIES + 1)):
        with pytest.raises(OptionError, match=f"--retries {bad} is out of range"):
            parse(["run", str(nb), "--retries", bad])


def test_a_retry_starts_the_notebooks_progress_again_under_its_own_heading() -> None:
    retry = Retrying(attempt=2, attempts=3, reason="the container was killed from outside (exit code 137)", delay=10)
    events = [NotebookStarted(total_cells=3), CellStarted(index=0, total=3, source_first_line="x = 1"),
              CellFinished(index=0, total=3, duration=0.1), CellStarted(index=1, total=3, source_first_line="y")]
    progress = fold_all([*events, retry])
    assert (progress.attempt, progress.attempts, progress.cells_done, progress.running_cell) == (2, 3, 0, None)
    heading = "── attempt 2 of 3 (the one before ended: the container was killed from outside (exit code 137); after 10 s) ──"
    assert progress.log[-1] == heading
    assert "attempt 2 of 3" in progress.summary("abc")
    out = io.StringIO()
    view = TextProgress(out)
    for event in (*events, retry):
        view(event)
    assert heading in out.getvalue().splitlines()
