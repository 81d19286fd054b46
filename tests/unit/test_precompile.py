"""The BuildKit image's precompile step: imports leave bytecode; a failed import is reported, never fatal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jupyter_containerize.render.context import PRECOMPILE_SOURCE


def test_imports_leave_bytecode_and_failures_are_reported(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "used.py").write_text("from . import helper\nVALUE = 1\n")
    (pkg / "helper.py").write_text("X = 2\n")
    (pkg / "unused.py").write_text("Y = 3\n")
    (tmp_path / "exits.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "modules.txt").write_text("mypkg.used\nnot_installed_anywhere\nexits\n\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, str(PRECOMPILE_SOURCE), str(tmp_path / "modules.txt")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    compiled = sorted(p.name.split(".")[0] for p in (pkg / "__pycache__").glob("*.pyc"))
    assert compiled == ["__init__", "helper", "used"]  # what the import loaded, not the whole package
    assert "import not_installed_anywhere failed at build time (ModuleNotFoundError" in done.stdout
    assert "import exits failed at build time (SystemExit: 3)" in done.stdout


def test_kernel_line_initializes_a_kernel_and_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "modules.txt").write_text(":kernel\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(PRECOMPILE_SOURCE), str(tmp_path / "modules.txt")], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and "failed" not in done.stdout, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["modules.txt"]  # its settings folder is gone
