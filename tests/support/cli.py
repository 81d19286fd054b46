"""The real CLI as a subprocess, and checks of the job store it leaves (the reliability suite's helpers)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def problems(self) -> list[str]:
        """stderr lines that are neither empty nor warnings."""
        return [line for line in self.stderr.splitlines() if line.strip() and not line.startswith("warning:")]


def cli(*args: str, cwd: Path, store: Path | None = None, timeout: float = 600,
        env: dict[str, str] | None = None) -> CliResult:
    """Run ``jupyter containerize ARGS`` exactly as a user would (a new process)."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["JC_STORE"] = str(store)
    proc = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_clear_error(result: CliResult, *needles: str, code: int = 2) -> str:
    """Non-zero exit, exactly one ``error: <sentence>`` line on stderr, no traceback anywhere."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(result.problems) == 1, result.stderr
    line = result.problems[0]
    assert line.startswith("error: ") and len(line) > 20, line
    for needle in needles:
        assert needle.lower() in line.lower(), (needle, line)
    return line


def store_rows(store: Path) -> list[tuple[str, str]]:
    """(id, status) of every job in the store (no file: none)."""
    if not store.exists():
        return []
    db = sqlite3.connect(store)
    try:
        return list(db.execute("SELECT id, status FROM jobs"))
    finally:
        db.close()


def check_store_consistent(store: Path) -> list[str]:
    """Every job terminal, events numbered 1..N without gaps, exactly one Finished, last."""
    db = sqlite3.connect(store)
    try:
        jobs = list(db.execute("SELECT id, status FROM jobs"))
        problems = []
        for job_id, status in jobs:
            rows = list(db.execute("SELECT seq, type FROM events WHERE job_id = ? ORDER BY seq", (job_id,)))
            seqs = [r[0] for r in rows]
            types = [r[1] for r in rows]
            if status not in ("succeeded", "failed", "cancelled"):
                problems.append(f"{job_id}: status {status}")
            if seqs != list(range(1, len(seqs) + 1)):
                problems.append(f"{job_id}: events {seqs}")
            if types.count("Finished") != 1 or types[-1:] != ["Finished"]:
                problems.append(f"{job_id}: {types.count('Finished')} Finished events, last {types[-1:]}")
        orphans = list(db.execute("SELECT DISTINCT job_id FROM events WHERE job_id NOT IN (SELECT id FROM jobs)"))
        if orphans:
            problems.append(f"events of unknown jobs: {orphans}")
        return problems
    finally:
        db.close()
