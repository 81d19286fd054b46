"""A made-up captured environment and spec to render, and a rendered Dockerfile read back as instructions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from jupyter_containerize.capture.snapshot import EnvironmentSnapshot, PinnedDistribution
from jupyter_containerize.jobspec import BuildOptions, JobSpec

RUNNER_PINS = (
    PinnedDistribution("nbclient", "0.11.0", "nbclient==0.11.0"),
    PinnedDistribution("nbformat", "5.11.1", "nbformat==5.11.1"),
)


def make_snapshot(nb: Path, **changes: Any) -> EnvironmentSnapshot:
    snap = EnvironmentSnapshot(
        notebook=nb,
        python_version="3.11.7",
        python_executable="/usr/bin/python3",
        platform="linux",
        machine="x86_64",
        imports=("numpy", "sklearn"),
        distributions=(
            PinnedDistribution("scikit-learn", "1.4.2", "scikit-learn==1.4.2"),
            PinnedDistribution("numpy", "1.26.4", "numpy==1.26.4"),
            PinnedDistribution("joblib", "1.4.0", "joblib==1.4.0"),
        ),
        system_packages=("libgomp1",),
        ipykernel_version="6.29.5",
    )
    return replace(snap, **changes)


def spec_for(nb: Path, **build: Any) -> JobSpec:
    return JobSpec(notebook=nb, build=BuildOptions(**build))


def logical_lines(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuations joined, comments dropped."""
    out: list[str] = []
    buf = ""
    for line in dockerfile.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    assert not buf
    return out


def stages(dockerfile: str) -> tuple[list[str], list[str]]:
    lines = logical_lines(dockerfile)
    froms = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    assert len(froms) == 2
    return lines[: froms[1]], lines[froms[1]:]
