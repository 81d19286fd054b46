"""Time limits on the real engine: a hung cell ends at --cell-timeout, a long notebook at --timeout, and a
job that does not stop itself is stopped by the job manager's watchdog (issue 17)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef
from jupyter_containerize.backends.docker import DockerBackend
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import JobSpec, Resources
from tests.support.cli import cli
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]
SLEEPY = ("print('before', flush=True)", "import time\nfor _ in range(3000):\n    time.sleep(0.1)", "print('never')")


@pytest.mark.parametrize(("flag", "words"), [("--cell-timeout", "timed out after 5s at cell 2 of 3 (--cell-timeout)"),
                                             ("--timeout", "timed out after 20s at cell 2 of 3 (--timeout)")])
def test_a_hung_cell_ends_the_job_at_its_limit_with_the_notebook_so_far(tmp_path: Path, job_store: Path,
                                                                         engine: docker.DockerClient, flag: str,
                                                                         words: str) -> None:
    nb = write_notebook(tmp_path / "sleepy.ipynb", *SLEEPY)
    result = cli("run", str(nb), flag, "5s" if flag == "--cell-timeout" else "20s", cwd=tmp_path, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("job failed") and words in last, last
    job_id = result.stdout.split()[1]
    saved = next((tmp_path / "sleepy.jc-jobs" / job_id).glob("*.ipynb")).read_text()
    assert "before" in saved and "never" in saved  # the notebook so far, cell 3 not run
    assert labelled_containers(engine, job_id) == []


def test_the_watchdog_stops_a_job_that_does_not_stop_itself(tmp_path: Path, job_store: Path,
                                                            engine: docker.DockerClient, base_image: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that ignores the limit (no runner to stop it): stopped at --timeout plus the grace."""
    monkeypatch.setattr("jupyter_containerize.backends.base.TIMEOUT_GRACE_SECONDS", 3)
    manager = JobManager(JobStore(job_store), backends={"docker": DockerBackend(engine)})
    try:
        nb = tmp_path / "nb.ipynb"
        nb.write_text("{}")
        image = ImageRef(tag=base_image, image_id=str(engine.images.get(base_image).id))
        job = manager.submit(JobSpec(notebook=nb, resources=Resources(time_limit="00:00:02")), image=image,
                             command=("sleep", "300"))
        record = job.wait(timeout=120)
        assert record.status == "failed"
        assert record.error == "timed out after 00:00:02 (--timeout): the job did not stop by itself, so it was stopped"
        assert record.duration is not None and record.duration < 60
        assert labelled_containers(engine, job.id) == []
    finally:
        assert manager.close(10) == []
