"""The CLI and the magics are two faces of one implementation (jobs/commands.py), on the real engine.

``dockerfile``, ``build`` and ``stop`` give the same result from a terminal and from a real kernel;
``logs``, ``logs -f`` and ``rm`` of a finished job work through the CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.cli import cli
from tests.support.engine import labelled_containers
from tests.support.kernel import execute, text_of
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]
TINY = ("import json\nprint(json.dumps([1, 2]))",)


def magic(folder: Path, *lines: str, raises: tuple[int, ...] = ()) -> list[str]:
    """Run ``%containerize`` lines in a fresh kernel (widgets off); the text each cell showed."""
    nb = execute(folder, "%load_ext jupyter_containerize", *lines, raises=tuple(i + 1 for i in raises))
    return [text_of(cell) for cell in nb.cells[1:]]


def plain_text(cell: Any) -> str:
    return "".join(str(o.data.get("text/plain", "")) for o in cell.outputs if o.output_type == "display_data")


@pytest.fixture()
def text_kernel(job_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel inherits this environment: the test's store, text views."""
    monkeypatch.setenv("JC_NO_WIDGETS", "1")
    monkeypatch.delenv("JC_JOB_ID", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return job_store


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dockerfile_is_the_same_from_the_cli_and_the_magic(tmp_path: Path, text_kernel: Path) -> None:
    nb = write_notebook(tmp_path / "nb" / "tiny.ipynb", *TINY)
    printed = cli("dockerfile", str(nb), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    written = cli("dockerfile", str(nb), "-o", str(tmp_path / "by-cli"), cwd=tmp_path)
    assert written.returncode == 0, written.stderr

    cells = execute(tmp_path, "%load_ext jupyter_containerize", f"%containerize dockerfile --notebook {nb}",
                    f"%containerize dockerfile --notebook {nb} -o {tmp_path / 'by-magic'}").cells
    assert plain_text(cells[1]) == printed.stdout.rstrip("\n")  # shown highlighted; its text is the CLI's
    summary = re.compile(r"wrote (\d+) files to (\S+) \(content hash ([0-9a-f]{16})\)")
    by_cli, by_magic = summary.search(written.stdout), summary.search(text_of(cells[2]))
    assert by_cli and by_magic, (written.stdout, text_of(cells[2]))
    assert (by_cli.group(1), by_cli.group(3)) == (by_magic.group(1), by_magic.group(3))
    assert _files(tmp_path / "by-cli") == _files(tmp_path / "by-magic")
    assert (tmp_path / "by-cli" / "Dockerfile").read_text() == printed.stdout


def test_build_gives_the_same_image_from_the_cli_and_the_magic(tmp_path: Path, text_kernel: Path,
                                                               engine: docker.DockerClient) -> None:
    nb = write_notebook(tmp_path / "nb" / "tiny.ipynb", *TINY)
    built = cli("build", str(nb), cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    reference = built.stdout.strip().splitlines()[-1]
    assert reference.startswith("jupyter-containerize/tiny:")
    shown = magic(tmp_path, f"ref = %containerize build --notebook {nb} --text", "print('returned', ref)")
    assert reference in shown[0].splitlines()  # printed, as the CLI prints it
    assert shown[1].strip() == f"returned {reference}"
    assert engine.images.get(reference).id


def test_stop_gives_the_same_result_from_the_cli_and_the_magic(tmp_path: Path, text_kernel: Path,
                                                               engine: docker.DockerClient) -> None:
    nb = write_notebook(tmp_path / "nb" / "slow.ipynb", "import time\nprint('started', flush=True)",
                        "time.sleep(120)")

    temp = tmp_path / "temp"  # the CLI's temporary folder: its build context must not outlive a detached run
    temp.mkdir()

    def detached() -> str:
        started = cli("run", str(nb), "--detach", cwd=tmp_path, env={"TMPDIR": str(temp)})
        assert started.returncode == 0, started.stdout + started.stderr
        assert list(temp.iterdir()) == []
        return started.stdout.split()[1]  # "job <id>"

    first, second = detached(), detached()
    by_cli = cli("stop", first, cwd=tmp_path)
    assert by_cli.returncode == 0, by_cli.stderr
    by_magic = magic(tmp_path, f"%containerize stop {second}")[0]
    assert by_cli.stdout.strip() == f"job {first} cancelled"
    assert by_magic.strip() == f"job {second} cancelled"
    listed = json.loads(cli("jobs", "--json", cwd=tmp_path).stdout)
    assert {j["id"]: j["status"] for j in listed} == {first: "cancelled", second: "cancelled"}
    assert labelled_containers(engine, first) == [] and labelled_containers(engine, second) == []


def test_logs_logs_f_and_rm_of_a_finished_job_through_the_cli(tmp_path: Path, job_store: Path,
                                                              engine: docker.DockerClient) -> None:
    nb = write_notebook(tmp_path / "nb" / "tiny.ipynb", *TINY)
    run = cli("run", str(nb), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.split()[1]

    logs = cli("logs", job_id, cwd=tmp_path)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert "cell 1/1: import json" in lines and "[1, 2]" in lines
    assert lines[-1].startswith("job succeeded")
    followed = cli("logs", "-f", job_id[:6], cwd=tmp_path)  # a unique prefix names it too
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == logs.stdout  # a finished job: every event once, then it returns

    removed = cli("rm", job_id, cwd=tmp_path)
    assert (removed.returncode, removed.stdout.strip()) == (0, f"removed job {job_id}")
    assert labelled_containers(engine, job_id) == []
    assert job_id not in {j["id"] for j in json.loads(cli("jobs", "--json", cwd=tmp_path).stdout)}
    gone = cli("logs", job_id, cwd=tmp_path)
    assert gone.returncode == 2 and gone.stderr.startswith("error: ") and job_id in gone.stderr
    assert "Traceback" not in gone.stderr


def test_jobs_records_the_end_of_a_detached_job_that_ended_since(tmp_path: Path, job_store: Path,
                                                                   engine: docker.DockerClient) -> None:
    """The CLI that started it has exited: the next `jobs` re-attaches it, sees it ended, and lists it so."""
    import time

    nb = write_notebook(tmp_path / "nb" / "tiny.ipynb", *TINY)
    started = cli("run", str(nb), "--detach", cwd=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    job_id = started.stdout.split()[1]
    deadline = time.monotonic() + 120
    while any(c.status == "running" for c in labelled_containers(engine, job_id)):
        assert time.monotonic() < deadline, "the detached job never ended"
        time.sleep(0.5)
    listed = {j["id"]: j["status"] for j in json.loads(cli("jobs", "--json", cwd=tmp_path).stdout)}
    assert listed[job_id] == "succeeded"
    assert labelled_containers(engine, job_id) == []  # and its container is removed, as for an attached job


def test_a_warning_about_the_machine_is_said_once_per_environment(tmp_path: Path, job_store: Path) -> None:
    """Two notebooks with one environment: the pip configuration this machine has is warned about once."""
    (tmp_path / "wheels").mkdir()
    env = {"PIP_FIND_LINKS": str(tmp_path / "wheels")}  # a host-only folder the build leaves out
    outputs = []
    for name in ("first", "second"):
        nb = write_notebook(tmp_path / "nb" / f"{name}.ipynb", *TINY)
        run = cli("run", str(nb), cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        outputs.append(run.stdout + run.stderr)
    said = [sum(line.startswith("warning: ") and str(tmp_path / "wheels") in line for line in out.splitlines())
            for out in outputs]
    assert said == [1, 0], outputs
