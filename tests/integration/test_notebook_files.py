"""The notebook's files on the real engine: what it writes beside itself comes back, old notebooks
run, and install lines need no network (issue: the notebook's files)."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobRecord, JobStore
from jupyter_containerize.options import parse
from tests.support.notebooks import write_notebook
from tests.support.outputs import output_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

SIX = importlib.metadata.version("six")  # the kernel's (this interpreter's) six: the capture pins it
OWNER = 1234  # the notebook's owner when the tests run as root (the job runs as another UID)
WRITER_CELLS = (
    "!pip install six\n%pip install six",
    ("import os, errno\n"
     "open('out.dat', 'w').write('1 2 3\\n')\n"
     "os.makedirs('models', exist_ok=True)\n"
     "open('models/m.txt', 'w').write('weights')\n"
     "try:\n"
     "    open('/etc/x', 'w')\n"
     "    root = 'writable'\n"
     "except OSError as exc:\n"
     "    root = errno.errorcode[exc.errno]\n"
     "open('root.txt', 'w').write(root)\n"
     "print('cwd', os.getcwd())"),
    "if fail:\n    !pip install six==0.0.1",
)


def _run(notebook: Path, store: Path, *flags: str, timeout: float = 900) -> tuple[JobRecord, list[Any]]:
    spec = parse(["run", str(notebook), "--network", "none", *flags]).spec
    assert spec is not None
    job = JobManager(JobStore(store)).submit(spec)
    record = job.wait(timeout=timeout)
    return record, [e for _, e in job.events()]


def _log(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, Log))


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One notebook (so one image) for the file and install tests; ``-p fail=True`` makes it fail."""
    folder = tmp_path_factory.mktemp("writer")
    nb = write_notebook(folder / "writer.ipynb", *WRITER_CELLS, parameters="fail = False")
    (folder / "input.csv").write_text("a,b\n1,2\n")
    if os.geteuid() == 0:
        os.chown(nb, OWNER, OWNER)
    return nb


@pytest.fixture(scope="module")
def writer_job(writer: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[JobRecord, list[Any]]:
    return _run(writer, tmp_path_factory.mktemp("store") / "jobs.sqlite")


def test_files_written_beside_the_notebook_come_back(writer_job: tuple[JobRecord, list[Any]]) -> None:
    record, events = writer_job
    assert record.status == "succeeded", record.error + _log(events)
    out = Path(record.output_dir)
    assert (out / "out.dat").read_text() == "1 2 3\n"
    assert (out / "models" / "m.txt").read_text() == "weights"
    assert not (out / "input.csv").exists()  # unchanged inputs stay where they are
    assert "cwd /work" in _log(events)  # relative paths start in the notebook's folder
    executed = json.loads(output_notebook(out, record.id).read_text())
    assert any(c.get("outputs") for c in executed["cells"])  # the executed notebook, not the image's copy
    assert not (out / "writer.ipynb").exists()  # the source is not copied back beside it
    assert {str(out / "out.dat"), str(out / "models" / "m.txt")} <= set(record.outputs)


def test_the_root_filesystem_stays_read_only(writer_job: tuple[JobRecord, list[Any]]) -> None:
    record, _ = writer_job
    assert (Path(record.output_dir) / "root.txt").read_text() == "EROFS"


@pytest.mark.skipif(os.geteuid() != 0, reason="as a plain user the job runs as that user already")
def test_outputs_belong_to_the_notebooks_owner(writer_job: tuple[JobRecord, list[Any]]) -> None:
    out = Path(writer_job[0].output_dir)
    executed = output_notebook(out, writer_job[0].id)
    for path in (out, out / "out.dat", out / "models", out / "models" / "m.txt", executed, out.parent):
        assert (path.stat().st_uid, path.stat().st_gid) == (OWNER, OWNER), path


def test_install_lines_need_no_network(writer_job: tuple[JobRecord, list[Any]]) -> None:
    _, events = writer_job
    log = _log(events)
    assert log.count(f"already in the image: six=={SIX}") == 2  # !pip and %pip, with --network none
    assert "Note: you may need to restart" not in log


def test_a_version_the_image_lacks_fails_the_cell_clearly(writer: Path, tmp_path: Path) -> None:
    record, events = _run(writer, tmp_path / "jobs.sqlite", "-p", "fail=True")
    assert record.status == "failed" and record.failing_cell == 4  # after the injected parameters cell
    assert record.error.startswith(f"PackageNotInImage: six==0.0.1 is asked for but the job's image has six {SIX}")
    assert (Path(record.output_dir) / "out.dat").read_text() == "1 2 3\n"  # a failed job's files come back too
    assert "six==0.0.1 is asked for" in _log(events)


def test_an_nbformat_3_notebook_runs(tmp_path: Path) -> None:
    v3 = {
        "metadata": {"name": "old"},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{"metadata": {}, "cells": [
            {"cell_type": "heading", "level": 1, "metadata": {}, "source": ["Saved by IPython 2"]},
            {"cell_type": "code", "collapsed": False, "input": ["x = 6 * 7\n", "open('answer.txt', 'w').write(str(x))"],
             "language": "python", "metadata": {}, "outputs": [], "prompt_number": 1},
        ]}],
    }
    nb = tmp_path / "old.ipynb"
    nb.write_text(json.dumps(v3))
    record, events = _run(nb, tmp_path / "jobs.sqlite")
    assert record.status == "succeeded", record.error + _log(events)
    out = Path(record.output_dir)
    assert (out / "answer.txt").read_text() == "42"
    executed = json.loads(output_notebook(out, record.id).read_text())
    assert executed["nbformat"] == 4 and executed["cells"][1]["execution_count"] == 1
