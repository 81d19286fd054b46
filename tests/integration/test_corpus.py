"""A fast subset of the reproduction corpus (bench/corpus/) through bench/corpus.py's own code path:
each notebook runs in its author's venv, then as a job, and the job's deterministic cells match."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

sys.path.insert(0, str(REPO / "bench"))
import corpus  # bench/corpus.py, the runner this test shares

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("base_image")]

# Small venvs, no torch; between them: an optional dependency used but not imported (tabulate
# behind DataFrame.to_markdown, mpmath behind sympy.lambdify), a helper module and a CSV beside
# the notebook, and files written to the working folder.
CI_SUBSET = (
    "pandas_markdown_table",
    "local_helpers_cleaning",
    "sympy_series_mpmath",
)


@pytest.mark.parametrize("name", CI_SUBSET)
def test_a_corpus_notebook_runs_as_a_job_with_the_same_outputs(name: str, tmp_path: Path, job_store: Path) -> None:
    (entry,) = corpus.entries([name])
    result: dict[str, Any] = corpus.run_one(entry, tmp_path, store=job_store, quick=True)
    assert result["native_ok"], f"{name} does not run in its author's venv: {result['native_error']}"
    job = result["job"]
    assert result["job_ok"], (f"{name} ran natively but its job {job['status']}: {job['error']}\n"
                              f"{job.get('traceback', '')}")
    cells = result["cells"]
    assert cells["deterministic"] > 0
    assert cells["identical"] == cells["deterministic"], f"cells unlike the native run's: {cells['differences']}"
