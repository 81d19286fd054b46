"""What a notebook writes next to itself comes back to the job's output folder, owned by the notebook's owner."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.container import container_options
from jupyter_containerize.jobs.ownership import give_outputs_to_notebook_owner
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.papermill_record import find_output_notebook, output_notebook_name
from jupyter_containerize.render.dockerfile import make_plan
from jupyter_containerize.runner.main import WorkdirSync
from tests.support.outputs import output_notebook
from tests.support.render import logical_lines, make_snapshot, spec_for
from tests.support.runner import PYTHON, RUNNER, Run, run_runner, runner_env


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_sync_copies_new_and_changed_files_only(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "data").mkdir(parents=True)
    out.mkdir()
    (work / "nb.ipynb").write_text("{}")
    (work / "data" / "in.csv").write_text("a\n")
    (work / "same.txt").write_text("x")
    sync = WorkdirSync(work, out, frozenset({"nb.ipynb"}))
    assert sync.sync() == [] and _tree(out) == set()  # nothing written yet
    (work / "out.dat").write_text("1 2 3\n")
    (work / "models").mkdir()
    (work / "models" / "m.txt").write_text("weights")
    (work / "data" / "in.csv").write_text("a\nb\n")  # changed
    (work / "nb.ipynb").write_text('{"changed": 1}')  # the executed notebook is the runner's
    for skipped in ("__pycache__", ".ipynb_checkpoints"):
        (work / skipped).mkdir()
        (work / skipped / "x").write_text("")
    os.symlink("/etc/hostname", work / "link")
    assert sync.sync() == []
    assert _tree(out) == {"out.dat", "models/m.txt", "data/in.csv"}
    assert (out / "models" / "m.txt").read_text() == "weights"
    first = (out / "out.dat").stat().st_ino
    assert sync.sync() == [] and (out / "out.dat").stat().st_ino == first  # unchanged: not copied again
    (work / "out.dat").write_text("4 5 6 7\n")
    (work / "models" / "m.txt").unlink()
    sync.sync()
    assert (out / "out.dat").read_text() == "4 5 6 7\n"
    assert not (out / "models" / "m.txt").exists()  # deleted in the job: its copy goes too


def test_sync_skips_the_output_folder_inside_the_working_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sync = WorkdirSync(tmp_path, out, frozenset())
    (out / "executed.ipynb").write_text("{}")
    (tmp_path / "new.txt").write_text("n")
    assert sync.sync() == [] and _tree(out) == {"executed.ipynb", "new.txt"}


def test_sync_reports_what_cannot_be_copied(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    sync = WorkdirSync(work, out, frozenset())
    (work / "a").write_text("file")
    (out / "a").mkdir()  # a folder where the file should go
    (out / "a" / "keep").write_text("")
    assert sync.sync()[0].startswith("a: ")


def _notebook(folder: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / "writer.ipynb"))
    return folder / "writer.ipynb"


def test_runner_brings_back_files_also_when_a_cell_fails(tmp_path: Path, jupyter_path: Path) -> None:
    nb = _notebook(tmp_path / "nb", "import os\nopen('out.dat', 'w').write('1 2\\n')",
                   "os.makedirs('models', exist_ok=True)\nopen('models/m.txt', 'w').write('m')",
                   "raise RuntimeError('after writing')")
    run = run_runner(nb, tmp_path / "out", jupyter_path)
    assert run.code == 1 and run.finished["status"] == "failed"
    assert (tmp_path / "out" / "out.dat").read_text() == "1 2\n"
    assert (tmp_path / "out" / "models" / "m.txt").read_text() == "m"
    assert str(tmp_path / "out" / "models" / "m.txt") in run.finished["outputs"]
    code = [c for c in run.notebook().cells if c.cell_type == "code"]  # past papermill's markers
    assert code[2].outputs[0]["ename"] == "RuntimeError"  # not overwritten


def test_runner_brings_back_files_on_cancel(tmp_path: Path, jupyter_path: Path) -> None:
    nb = _notebook(tmp_path / "nb", "open('partial.txt', 'w').write('so far')\nprint('written')",
                   "import time\ntime.sleep(60)")
    proc = subprocess.Popen([PYTHON, str(RUNNER), str(nb), "--output-dir", str(tmp_path / "out")],
                            env=runner_env(jupyter_path, JC_AUTOSAVE_SECONDS="600"), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if '"CellStarted"' in line and '"index": 1' in line:
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=30)
    run = Run(proc.returncode, "".join(lines) + rest, tmp_path / "out")
    assert run.code == 143 and run.finished["status"] == "cancelled"
    assert (tmp_path / "out" / "partial.txt").read_text() == "so far"


def test_the_executed_notebook_is_named_for_the_job_and_the_source_stays_out(tmp_path: Path,
                                                                            jupyter_path: Path) -> None:
    """``<stem>.<job id>.ipynb`` (JupyterLab's tab is not the source's). The source notebook, touched by the job, is
    not copied back; a file of the executed notebook's name written by the job does not replace it; a notebook
    the job writes is an artifact beside it, never taken for it."""
    job_id = "3f2a9c01b2d4"
    nb = _notebook(tmp_path / "nb", "import os\nos.utime('writer.ipynb')",
                   f"open('writer.{job_id}.ipynb', 'w').write('not the executed one')",
                   "open('a_report.ipynb', 'w').write('{}')")
    out = tmp_path / "out"
    run = run_runner(nb, out, jupyter_path, JC_JOB_ID=job_id)
    assert run.code == 0, run.stdout
    executed = output_notebook(out, job_id)
    assert executed.name == f"writer.{job_id}.ipynb" == output_notebook_name("writer.ipynb", job_id)
    assert sorted(p.name for p in out.iterdir()) == ["a_report.ipynb", executed.name]  # no writer.ipynb
    assert [c.execution_count for c in run.notebook().cells] == [1, 2, 3]  # the executed one, kept
    assert nbformat.read(str(executed), as_version=4).metadata["papermill"]["output_path"] == str(executed)
    assert run.finished["outputs"][0] == str(executed)
    as_listed = sorted(run.finished["outputs"])  # as the job manager lists a folder: the artifact comes first
    assert as_listed[0] == str(out / "a_report.ipynb") and find_output_notebook(as_listed, job_id) == str(executed)


def test_the_working_folder_is_a_writable_volume_of_the_image(tmp_path: Path) -> None:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb")
    request = RunRequest(job_id="j1", image=ImageRef(tag="jc/nb:1", image_id=""), spec=spec, output_dir=tmp_path)
    options = container_options(request)
    work = [m for m in options["mounts"] if m["Target"] == "/work"]
    assert work == [{"Target": "/work", "Source": None, "Type": "volume", "ReadOnly": False}]
    assert options["read_only"] is True  # the root stays read-only
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    plan = make_plan(make_snapshot(nb), spec_for(nb, uid=1234))
    from jupyter_containerize.render.dockerfile import dockerfile_text

    user_line = next(line for line in logical_lines(dockerfile_text(plan)) if "useradd" in line)
    assert "chown 1234:1234 /output /work" in user_line  # the volume takes its owner from the image


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away (and only root needs to)")
def test_outputs_go_to_the_notebook_owner_when_root_runs_the_tool(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    nb = folder / "nb.ipynb"
    nb.write_text("{}")
    os.chown(nb, 1234, 1234)
    out = folder / "nb.jc-jobs" / "job1"
    (out / "models").mkdir(parents=True)
    (out / "nb.ipynb").write_text("{}")
    (out / "models" / "m.txt").write_text("m")
    os.chown(out / "models" / "m.txt", 1000, 1000)  # written by the job's UID
    os.symlink("/etc/passwd", out / "link")
    give_outputs_to_notebook_owner(out, nb)
    for path in (out.parent, out, out / "models", out / "nb.ipynb", out / "models" / "m.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 1234), path
    assert os.lstat(out / "link").st_uid == 1234 and Path("/etc/passwd").stat().st_uid == 0  # not followed
    assert folder.stat().st_uid == 0  # the notebook's own folder is left alone
