"""The in-container runner, run on the host as a subprocess (no engine), and what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyter_containerize import events

from . import REPO
from .outputs import read_output_notebook

RUNNER = REPO / "jupyter_containerize" / "runner" / "main.py"
METRICS = REPO / "jupyter_containerize" / "metrics.py"
PYTHON = sys.executable
RUNNER_JOB_ID = "run0job0test"
"""The job id the runner is given here (``JC_JOB_ID``, as every backend gives it): the executed notebook is
``<stem>.run0job0test.ipynb``."""


def kernel_share(root: Path) -> Path:
    """A Jupyter data folder under ``root`` whose kernelspec ``python3`` is like the image's: this interpreter
    plus the metrics shim."""
    shim = root / "shim" / "jupyter_containerize"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_bytes(METRICS.read_bytes())
    spec_dir = root / "share" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
        "env": {"PYTHONPATH": str(root / "shim")},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root / "share"


def runner_env(jupyter_path: Path, parameters: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    """This process's environment less its JC_* variables, with the kernelspecs of ``jupyter_path`` and the job id
    :data:`RUNNER_JOB_ID`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JC_")}
    env["JC_JOB_ID"] = RUNNER_JOB_ID
    env["JUPYTER_PATH"] = str(jupyter_path)
    env["PYTHONUNBUFFERED"] = "1"
    if parameters is not None:
        env["JC_PARAMETERS"] = json.dumps(parameters)
    env.update(extra)
    return env


class Run:
    """A finished run of the runner: its exit code, its output and the events in it."""

    def __init__(self, code: int, stdout: str, out_dir: Path, job_id: str = RUNNER_JOB_ID) -> None:
        self.code = code
        self.stdout = stdout
        self.out_dir = out_dir
        self.job_id = job_id
        self.events: list[dict[str, Any]] = [
            json.loads(line[len(events.EVENT_PREFIX):])
            for line in stdout.splitlines()
            if line.startswith(events.EVENT_PREFIX)
        ]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def finished(self) -> dict[str, Any]:
        assert self.events[-1]["type"] == "Finished", self.stdout
        return self.events[-1]

    def notebook(self) -> Any:
        """The executed notebook (``<stem>.<job id>.ipynb``), read."""
        return read_output_notebook(self.out_dir, self.job_id)


def run_runner(
    notebook: Path, out_dir: Path, jupyter_path: Path, parameters: dict[str, Any] | None = None, **env: str
) -> Run:
    """Run the runner on ``notebook`` (its outputs into ``out_dir``) with the kernelspecs of ``jupyter_path``."""
    proc = subprocess.run(
        [PYTHON, str(RUNNER), str(notebook), "--output-dir", str(out_dir)],
        check=False,
        env=runner_env(jupyter_path, parameters, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, out_dir, env.get("JC_JOB_ID", RUNNER_JOB_ID))
