"""Real virtual environments built with uv, and the small projects and notebooks the capture tests use."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat

UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")


def uv(*args: str) -> str:
    return subprocess.run([UV, *args], check=True, capture_output=True, text=True).stdout


def make_venv(root: Path, *packages: str) -> Path:
    uv("venv", "-q", "--python", sys.executable, str(root))
    python = root / "bin" / "python"
    if packages:
        uv("pip", "install", "-q", "--python", str(python), *packages)
    return python


def site_packages(python: Path) -> Path:
    return next((python.parent.parent / "lib").glob("python3*/site-packages"))


def write_nb(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def make_project(root: Path, name: str, deps: list[str], backend: str = "hatchling.build",
                 optional: dict[str, list[str]] | None = None, version: str = "0.1.0") -> Path:
    proj = root / name if version == "0.1.0" else root / f"{name}-{version}"
    (proj / "src" / name).mkdir(parents=True)
    (proj / "src" / name / "__init__.py").write_text("VALUE = 1\n")
    requires_backend = "hatchling" if backend == "hatchling.build" else "no-such-backend-pkg-xyz"
    (proj / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["{requires_backend}"]
        build-backend = "{backend}"
        [project]
        name = "{name}"
        version = "{version}"
        dependencies = {json.dumps(deps)}
        optional-dependencies = {{{", ".join(f"{k} = {json.dumps(v)}" for k, v in (optional or {}).items())}}}
        [tool.hatch.build.targets.wheel]
        packages = ["src/{name}"]
        """))
    return proj
