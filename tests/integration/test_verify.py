"""`verify`: environment drift and cell-by-cell re-execution against the saved outputs."""

from __future__ import annotations

import base64
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_containerize.verify import compare_notebooks, normalized_outputs, package_drift, texts_match

PNG_A = base64.b64encode(b"\x89PNG fake image a").decode()
PNG_B = base64.b64encode(b"\x89PNG fake image b").decode()


def _cell(source: str, *outputs: dict[str, object]) -> dict[str, object]:
    return {"cell_type": "code", "source": source, "metadata": {}, "execution_count": 1, "outputs": list(outputs)}


def _stream(text: str) -> dict[str, object]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _result(text: str) -> dict[str, object]:
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": text}}


def _notebook(*cells: dict[str, object]) -> dict[str, object]:
    return {"cells": list(cells), "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                              "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


# -- pure comparisons (no engine) --------------------------------------------------------------------

def test_numbers_within_tolerance_text_exactly() -> None:
    assert texts_match("loss 0.333333333", "loss 0.3333333333333333", 1e-6)
    assert not texts_match("loss 0.33", "loss 0.3333333333333333", 1e-6)
    assert not texts_match("loss 0.3", "LOSS 0.3", 1e-6)
    assert texts_match("<Foo at 0x7f12ab34cd56>", "<Foo at 0x7fffee001122>", 0)
    assert not texts_match("1 2", "1 2 3", 1.0)


def test_images_by_content_and_streams_merged() -> None:
    a = normalized_outputs([{"output_type": "display_data", "data": {"image/png": PNG_A, "text/plain": "<Figure>"}}])
    b = normalized_outputs([{"output_type": "display_data", "data": {"image/png": PNG_B, "text/plain": "<Figure>"}}])
    saved = _notebook(_cell("plot()", {"output_type": "display_data", "data": {"image/png": PNG_A}}))
    assert a != b
    assert not compare_notebooks(saved, _notebook(_cell("plot()", {"output_type": "display_data",
                                                                   "data": {"image/png": PNG_B}})), 1e-6)[0].ok
    split = normalized_outputs([_stream("a\n"), _stream("b\n")])
    assert split == normalized_outputs([_stream("a\nb\n")])


def test_drift_report() -> None:
    drifts, extras = package_drift([("NumPy", "1.26.4"), ("pandas", "2.2.0"), ("scikit_learn", "1.4.0")],
                                   {"numpy": "1.26.3", "scikit-learn": "1.4.0", "nbclient": "0.10.0"},
                                   "3.11.7", "3.11.2")
    assert drifts == ["python: captured 3.11.7, image 3.11.2", "NumPy: captured 1.26.4, image 1.26.3",
                      "pandas: captured 2.2.0, missing from the image"]
    assert extras == ["nbclient==0.10.0"]


# -- against the real engine ----------------------------------------------------------------------------

@pytest.mark.engine
@pytest.mark.usefixtures("base_image")
def test_verify_notebook_end_to_end(tmp_path: Path, job_store: Path) -> None:
    nb = tmp_path / "repro.ipynb"
    nb.write_text(json.dumps(_notebook(
        _cell("print('hello')", _stream("hello\n")),
        _cell("1/3", _result("0.333333333")),  # saved with fewer digits: equal within rtol
        _cell("import random\nprint(random.random())", _stream("0.5\n")),  # cannot reproduce
        _cell("x = 2 ** 10\nx", _result("1024")),
    )))
    done = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", "verify", str(nb), "--rtol", "1e-6"],
                          check=False, capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 of 4 cells reproduced" in out
    assert "cell 2 (import random) differs" in out and "saved: [stream:stdout] 0.5" in out
    assert "captured pins installed at their versions" in out and "drift" not in out
    here = platform.python_version()  # the kernel is this interpreter; the image's Python is the same release
    assert f"Python: captured {here}, image {here}" in out


@pytest.mark.engine
@pytest.mark.usefixtures("base_image")
def test_verify_a_finished_job_by_its_id(tmp_path: Path, job_store: Path) -> None:
    nb = tmp_path / "job.ipynb"
    nb.write_text(json.dumps(_notebook(_cell("print('hello')", _stream("hello\n")), _cell("6 * 7", _result("42")))))
    env = {**__import__("os").environ, "JC_STORE": str(job_store)}
    cli = [sys.executable, "-m", "jupyter_containerize.cli"]
    run = subprocess.run([*cli, "run", str(nb)], check=False, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.split()[1]  # "job <id>"
    done = subprocess.run([*cli, "verify", job_id], check=False, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 cells reproduced" in done.stdout and "drift" not in done.stdout
