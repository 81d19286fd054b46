"""Job specs as a user's command line gives them (the one option parser)."""

from __future__ import annotations

from pathlib import Path

from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.options import parse


def spec_of(command: str, notebook: Path, *flags: str) -> JobSpec:
    """The spec of ``jupyter containerize COMMAND NOTEBOOK FLAGS``."""
    spec = parse([command, str(notebook), *flags]).spec
    assert spec is not None
    return spec


def run_spec(notebook: Path, *flags: str) -> JobSpec:
    """The spec of ``jupyter containerize run NOTEBOOK FLAGS``."""
    return spec_of("run", notebook, *flags)


def build_spec(notebook: Path, *flags: str) -> JobSpec:
    """The spec of ``jupyter containerize build NOTEBOOK FLAGS``."""
    return spec_of("build", notebook, *flags)
