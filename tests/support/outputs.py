"""A job's output folder as the tests read it: where the executed notebook is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat


def output_notebook(output_dir: Path | str, job_id: str = "") -> Path:
    """The executed notebook a job saved at the top of ``output_dir`` (``<stem>.<job id>.ipynb``).

    With ``job_id``, the one named for that job; without, the only notebook there. Fails the test when
    there is not exactly one, naming what the folder holds.
    """
    folder = Path(output_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith(".") and p.is_file())
    if job_id:
        found = [p for p in found if p.name.endswith(f".{job_id}.ipynb")]
    listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "no such folder"
    assert len(found) == 1, f"no single executed notebook{f' of job {job_id}' if job_id else ''} in {folder}: {listing}"
    return found[0]


def read_output_notebook(output_dir: Path | str, job_id: str = "") -> Any:
    """:func:`output_notebook`, read with nbformat (version 4)."""
    return nbformat.read(str(output_notebook(output_dir, job_id)), as_version=4)
