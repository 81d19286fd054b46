"""`verify` against the real engine: the rebuilt image re-runs the notebook, twice, and each cell is
compared with the saved outputs or, for a notebook saved without outputs, with runs in its own kernel.
(The comparison and the masks themselves: tests/unit/test_verify_report.py and test_output_masks.py.)"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_containerize.verify import verify_image
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]
CLI = [sys.executable, "-m", "jupyter_containerize.cli"]

# One notebook for the module, saved without outputs: one image serves every test below.
CELLS = (
    "print('hello')",
    "import random\nrandom.seed(7)\nprint(random.random())",  # seeded: the same in every run
    "print(random.Random().random())",  # unseeded: differs from run to run
    # install paths in output and in warnings: the kernel's venv vs /opt/venv, the kernel's pid in
    # /tmp/ipykernel_<pid>/, and a stdlib frame (pyenv's prefix here, /usr/local in the image)
    ("import json, sys, warnings, packaging\n"
     "print(packaging.__file__, sys.prefix)\n"
     "warnings.warn('loaded from ' + packaging.__file__)\n"
     "json.loads('1', parse_int=lambda s: warnings.warn('parsed ' + s, stacklevel=2))"),
    "6 * 7",
)


@dataclass(frozen=True)
class Verified:
    notebook: Path
    returncode: int
    out: str
    image: str


def _verify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "verify", *args], check=False, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Verified:
    """`verify NOTEBOOK` once, on a notebook saved without outputs (so against runs in its kernel)."""
    root = tmp_path_factory.mktemp("verify")
    nb = write_notebook(root / "nb" / "rand.ipynb", *CELLS)
    done = _verify(str(nb), env={**os.environ, "JC_STORE": str(root / "jobs.sqlite")})
    image = re.search(r"^image (\S+)$", done.stdout, re.MULTILINE)
    assert image, done.stdout + done.stderr
    return Verified(nb, done.returncode, done.stdout, image.group(1))


def test_a_notebook_without_outputs_is_compared_with_runs_in_its_own_kernel(verified: Verified) -> None:
    out = verified.out
    assert verified.returncode == 0, out
    assert f"compared with the notebook run twice in its kernel ({sys.executable})" in out
    assert "reproduced 4 of 5 cells; 1 nondeterministic; 0 drift" in out
    assert out.rstrip().endswith("verified: the image reproduces every deterministic cell")
    here = platform.python_version()  # the kernel is this interpreter; the image's Python is the same release
    assert f"Python: captured {here}, image {here}" in out and "package drift" not in out


def test_an_unseeded_cell_is_nondeterministic_and_a_seeded_one_reproduced(verified: Verified) -> None:
    out = verified.out
    assert re.search(r"cell 3 of 5 \(print\(random\.Random\(\)\.random\(\)\)\) nondeterministic: the runs 1 and 2 "
                     r"in the kernel differ at output line 1:\n +run 1: stdout: 0\.\d+\n +run 2: stdout: 0\.\d+", out)
    assert "cell 2 of 5" not in out  # seeded: reproduced, so not listed
    assert "drift at" not in out


def test_install_paths_in_outputs_and_warnings_are_masked(verified: Verified) -> None:
    assert "cell 4 of 5" not in verified.out  # reproduced: listed only if it differed


def _native_run(notebook: Path) -> Any:
    """The notebook run as Jupyter runs it (nbclient, the python3 kernel: this interpreter), outputs saved."""
    import nbclient

    nb = nbformat.read(str(notebook), as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return nb


def test_saved_outputs_from_the_kernel_match_the_image_but_unseeded_cells(verified: Verified, tmp_path: Path) -> None:
    """The same notebook saved after a run in Jupyter: the saved outputs are the reference, the image runs
    twice (one image for both tests: saved outputs do not change the build context)."""
    saved = tmp_path / "rand.ipynb"
    nbformat.write(_native_run(verified.notebook), str(saved))
    text = saved.read_text()
    assert os.path.realpath(sys.prefix) in text or sys.prefix in text  # the host's install paths are in there
    assert "/tmp/ipykernel_" in text and "/opt/venv" not in text
    from jupyter_containerize.jobspec import JobSpec

    report = verify_image(verified.image, JobSpec(notebook=saved), [], platform.python_version())
    assert report.against == "saved" and report.runs == 2
    assert [c.status for c in report.cells] == ["reproduced", "reproduced", "nondeterministic", "reproduced",
                                                "reproduced"], report.text()
    assert report.cells[2].where == "the runs 1 and 2 in the image"
    assert report.ok and "reproduced 4 of 5 cells; 1 nondeterministic; 0 drift" in report.text()


def test_verify_a_notebook_against_saved_outputs_that_drifted(tmp_path: Path, job_store: Path) -> None:
    nb = tmp_path / "repro.ipynb"
    cells = [("print('hello')", {"output_type": "stream", "name": "stdout", "text": "hello\n"}),
             ("1/3", {"output_type": "execute_result", "execution_count": 2, "metadata": {},
                      "data": {"text/plain": "0.333333333"}}),  # saved with fewer digits: equal within rtol
             ("import random\nprint(random.random())", {"output_type": "stream", "name": "stdout", "text": "0.5\n"}),
             ("x = 2 ** 10\nprint('x is')\nx + 1", {"output_type": "stream", "name": "stdout", "text": "x is\n"},
              {"output_type": "execute_result", "execution_count": 4, "metadata": {},
               "data": {"text/plain": "1024"}})]  # saved before an edit: drift on its second output line
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source, "metadata": {}, "execution_count": i,
                                         "outputs": list(outputs)} for i, (source, *outputs) in enumerate(cells, 1)],
                              "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                          "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}))
    done = _verify(str(nb), "--rtol", "1e-6", env=dict(os.environ))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "compared with the outputs saved in the notebook" in out
    assert "reproduced 2 of 4 cells; 1 nondeterministic; 1 drift" in out
    assert "cell 3 of 4 (import random) nondeterministic: the runs 1 and 2 in the image differ" in out
    assert ("cell 4 of 4 (x = 2 ** 10) drift at output line 2:\n      expected: text/plain: 1024\n"
            "      found:    text/plain: 1025") in out
    assert "captured pins installed at their versions" in out and out.rstrip().endswith("NOT reproduced")


def test_verify_a_finished_job_by_its_id(tmp_path: Path, job_store: Path) -> None:
    nb = write_notebook(tmp_path / "job.ipynb", "print('hello')", "6 * 7")
    env = {**os.environ, "JC_STORE": str(job_store)}
    run = subprocess.run([*CLI, "run", str(nb)], check=False, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.split()[1]  # "job <id>"
    done = _verify(job_id, "--runs", "1", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run once in the image, compared with the notebook run once in its kernel" in done.stdout
    assert "reproduced 2 of 2 cells; 0 nondeterministic; 0 drift" in done.stdout
    assert "package drift" not in done.stdout
