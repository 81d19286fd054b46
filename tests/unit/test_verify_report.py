"""verify's comparison and report, from plain notebooks (no engine, no kernel)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.options import parse
from jupyter_containerize.verify import (
    CellResult,
    Runs,
    VerifyReport,
    compare_runs,
    first_difference,
    has_saved_outputs,
    output_lines,
    package_drift,
    reference_notebook,
    texts_match,
)

PNG_A = base64.b64encode(b"\x89PNG fake image a").decode()
PNG_B = base64.b64encode(b"\x89PNG fake image b").decode()
IMAGE_PATHS = {"/opt/venv": "<venv>", "/work": "<cwd>"}


def _cell(source: str, *outputs: dict[str, Any], count: int | None = 1, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "execution_count": count,
            "outputs": list(outputs)}


def _out(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def _result(text: str) -> dict[str, Any]:
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": text}}


def _png(data: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {"image/png": data, "text/plain": "<Figure>"}}


def _nb(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"cells": [{"cell_type": "markdown", "source": "# title", "metadata": {}}, *cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _by_number(results: list[CellResult]) -> dict[int, CellResult]:
    return {r.number: r for r in results}


# -- comparing lines ---------------------------------------------------------------------------------

def test_numbers_within_tolerance_text_exactly() -> None:
    assert texts_match("loss 0.333333333", "loss 0.3333333333333333", 1e-6)
    assert not texts_match("loss 0.33", "loss 0.3333333333333333", 1e-6)
    assert not texts_match("loss 0.3", "LOSS 0.3", 1e-6)
    assert not texts_match("1 2", "1 2 3", 1.0)


def test_the_first_differing_line_is_found() -> None:
    a = output_lines([_out("epoch 1\nepoch 2\nloss 0.5\n"), _result("42")])
    b = output_lines([_out("epoch 1\nepoch 2\nloss 0.7\n"), _result("42")])
    assert a[0] == ("stdout: epoch 1", False) and a[-1] == ("text/plain: 42", False)
    assert first_difference(a, b, 1e-6) == (3, "stdout: loss 0.5", "stdout: loss 0.7")
    assert first_difference(a, a[:2], 1e-6) == (3, "stdout: loss 0.5", "(end of output)")
    assert first_difference(a, b, 0.5) is None


def test_images_compare_by_content_hash() -> None:
    a, b = output_lines([_png(PNG_A)]), output_lines([_png(PNG_B)])
    assert a[0] == ("text/plain: <Figure>", False)  # text/plain first among a display's types
    assert a[1][0].startswith("image/png: sha256:") and a[1][1]  # compared exactly, never within rtol
    assert first_difference(a, b, 1e-6) is not None
    wrapped = base64.b64encode(b"\x89PNG fake image a").decode()
    assert first_difference(a, output_lines([_png(wrapped[:8] + "\n" + wrapped[8:])]), 1e-6) is None


# -- classifying cells -------------------------------------------------------------------------------

def test_saved_reference_reproduced_drift_and_nondeterministic() -> None:
    saved = _nb(_cell("print('hello')", _out("hello\n")),
                _cell("1/3", _result("0.333333333")),  # saved with fewer digits: equal within rtol
                _cell("import random\nprint(random.random())", _out("0.5\n")),
                _cell("x = 2 ** 10\nx", _result("1000")))
    run1 = _nb(_cell("", _out("hello\n")), _cell("", _result("0.3333333333333333")),
               _cell("", _out("0.1234\n")), _cell("", _result("1024")))
    run2 = _nb(_cell("", _out("hello\n")), _cell("", _result("0.3333333333333333")),
               _cell("", _out("0.9876\n")), _cell("", _result("1024")))
    cells = _by_number(compare_runs(Runs("saved", [saved]), Runs("image", [run1, run2], IMAGE_PATHS), 1e-6))
    assert [cells[n].status for n in (1, 2, 3, 4)] == ["reproduced", "reproduced", "nondeterministic", "drift"]
    assert cells[3].where == "the runs 1 and 2 in the image" and cells[3].labels == ("run 1", "run 2")
    assert (cells[3].line, cells[3].expected, cells[3].found) == (1, "stdout: 0.1234", "stdout: 0.9876")
    assert (cells[4].number, cells[4].total, cells[4].source_line) == (4, 4, "x = 2 ** 10")
    assert (cells[4].line, cells[4].expected, cells[4].found) == (1, "text/plain: 1000", "text/plain: 1024")


def test_kernel_reference_runs_that_disagree_are_nondeterministic_not_drift() -> None:
    k1 = _nb(_cell("print(random())", _out("0.1\n")), _cell("print(2)", _out("2\n")))
    k2 = _nb(_cell("print(random())", _out("0.2\n")), _cell("print(2)", _out("2\n")))
    img = _nb(_cell("", _out("0.3\n")), _cell("", _out("3\n")))
    cells = compare_runs(Runs("kernel", [k1, k2]), Runs("image", [img, img]), 1e-6)
    assert [c.status for c in cells] == ["nondeterministic", "drift"]
    assert cells[0].where == "the runs 1 and 2 in the kernel"


def test_masks_apply_per_side() -> None:
    host = {"/home/ana/.venv": "<venv>", "/home/ana/nb": "<cwd>"}
    saved = _nb(_cell("warn()", _out("/tmp/ipykernel_77/1.py:2: UserWarning: /home/ana/.venv/lib/python3.11/"
                                     "site-packages/pkg/x.py\n", "stderr"), _out("/home/ana/nb/out.csv\n")))
    job = _nb(_cell("", _out("/work/out.csv\n"), _out("/tmp/ipykernel_9/1.py:2: UserWarning: /opt/venv/lib/"
                                                       "python3.11/site-packages/pkg/x.py\n", "stderr")))
    assert compare_runs(Runs("saved", [saved], host), Runs("image", [job], IMAGE_PATHS), 1e-6)[0].status == "reproduced"
    assert compare_runs(Runs("saved", [saved]), Runs("image", [job], IMAGE_PATHS), 1e-6)[0].status == "drift"


def test_cells_without_a_reference_are_unchecked_and_a_cell_the_image_skipped_drifts() -> None:
    saved = _nb(_cell("%pip install numpy", _out("Requirement already satisfied: numpy\n")),
                _cell("print(1)", _out("1\n")),
                _cell("never_run()", count=None),
                _cell("print(3)", _out("3\n")))
    job = _nb(_cell("", _out("already in the image: numpy\n")), _cell("", _out("1\n")), _cell("", _out("boom\n")),
              _cell("", count=None))  # the job stopped before it
    cells = compare_runs(Runs("saved", [saved]), Runs("image", [job]), 1e-6)
    assert [c.status for c in cells] == ["unchecked", "reproduced", "unchecked", "drift"]
    assert cells[0].where.startswith("a pip install line") and cells[2].where == "never run in the saved notebook"
    assert (cells[3].expected, cells[3].found) == ("stdout: 3", "(not executed)")


def test_parameters_are_injected_and_numbered_as_run_numbers_them(tmp_path: Path) -> None:
    path = tmp_path / "p.ipynb"
    path.write_text(json.dumps(_nb(_cell("lr = 0.1", tags=("parameters",)), _cell("print(lr)", _out("0.1\n")))))
    nb = reference_notebook(JobSpec(notebook=path, parameters={"lr": 0.5}), clear=True)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == ["lr = 0.1", "# Parameters\nlr = 0.5\n", "print(lr)"]
    assert "injected-parameters" in code[1].metadata.tags and not code[2].outputs
    assert has_saved_outputs(reference_notebook(JobSpec(notebook=path), clear=False))
    assert not has_saved_outputs(nb)
    job = _nb(_cell("", count=2), _cell("", count=3), _cell("", _out("0.6\n"), count=4))
    cells = compare_runs(Runs("saved", [reference_notebook(JobSpec(notebook=path, parameters={"lr": 0.5}),
                                                           clear=False)]), Runs("image", [job]), 1e-6)
    assert [(c.number, c.total, c.status) for c in cells] == [(1, 3, "reproduced"), (2, 3, "unchecked"),
                                                              (3, 3, "drift")]


# -- the report ----------------------------------------------------------------------------------------

def _report(*cells: CellResult, drifts: tuple[str, ...] = ()) -> VerifyReport:
    return VerifyReport(image="jc/x:1", python_expected="3.11.7", python_found="3.11.7", drifts=list(drifts),
                        cells=list(cells), pins_checked=3, against="kernel", runs=2, kernel="/k/bin/python")


def test_report_summary_and_first_differing_lines() -> None:
    report = _report(CellResult(1, 4, "reproduced", "import random"),
                     CellResult(2, 4, "nondeterministic", "print(random.random())", "the runs 1 and 2 in the kernel",
                                1, "stdout: 0.1", "stdout: 0.2", ("run 1", "run 2")),
                     CellResult(3, 4, "drift", "x = f()", "", 2, "text/plain: 1000", "text/plain: 1024"),
                     CellResult(4, 4, "unchecked", "%pip install x", "a pip install line"))
    text = report.text()
    assert report.summary() == "reproduced 1 of 4 cells; 1 nondeterministic; 1 drift; 1 unchecked"
    assert "outputs: run twice in the image, compared with the notebook run twice in its kernel (/k/bin/python)" in text
    assert ("  cell 2 of 4 (print(random.random())) nondeterministic: the runs 1 and 2 in the kernel differ at "
            "output line 1:\n      run 1: stdout: 0.1\n      run 2: stdout: 0.2") in text
    assert "  cell 3 of 4 (x = f()) drift at output line 2:\n      expected: text/plain: 1000\n" \
           "      found:    text/plain: 1024" in text
    assert "unchecked: cell 4 (a pip install line)" in text
    assert "cell 1 of 4" not in text
    assert not report.ok and text.endswith("NOT reproduced")


def test_nondeterministic_cells_do_not_fail_verification_but_drift_does() -> None:
    nondet = CellResult(1, 2, "nondeterministic", "r()", "the runs 1 and 2 in the image", 1, "a", "b",
                        ("run 1", "run 2"))
    report = _report(nondet, CellResult(2, 2, "reproduced", "1"))
    assert report.ok and report.summary() == "reproduced 1 of 2 cells; 1 nondeterministic; 0 drift"
    assert report.text().endswith("verified: the image reproduces every deterministic cell")
    assert _report(CellResult(1, 1, "reproduced", "1")).text().endswith("verified: the image reproduces the notebook")
    assert _report(CellResult(1, 2, "reproduced", "1"), CellResult(2, 2, "unchecked", "%pip install x", "pip")).text() \
        .endswith("verified: the image reproduces every deterministic cell with a reference")
    assert not _report(CellResult(1, 1, "reproduced", "1"), drifts=("numpy: captured 1, image 2",)).ok


def test_drift_report() -> None:
    drifts, extras = package_drift([("NumPy", "1.26.4"), ("pandas", "2.2.0"), ("scikit_learn", "1.4.0")],
                                   {"numpy": "1.26.3", "scikit-learn": "1.4.0", "nbclient": "0.10.0"},
                                   "3.11.7", "3.11.2")
    assert drifts == ["python: captured 3.11.7, image 3.11.2", "NumPy: captured 1.26.4, image 1.26.3",
                      "pandas: captured 2.2.0, missing from the image"]
    assert extras == ["nbclient==0.10.0"]


# -- options ---------------------------------------------------------------------------------------------

def test_verify_options(tmp_path: Path) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps(_nb()))
    cmd = parse(["verify", str(nb), "--against", "kernel", "--runs", "3", "-p", "lr=0.5", "-e", "SEED=1"])
    assert cmd.spec is not None and cmd.spec.parameters == {"lr": 0.5} and cmd.spec.env == {"SEED": "1"}
    assert (cmd.args["against"], cmd.args["runs"]) == ("kernel", 3)
    default = parse(["verify", str(nb)])
    assert (default.args["against"], default.args["runs"]) == (None, 2)
    assert parse(["verify", "abc123"]).spec is None
    with pytest.raises(OptionError, match="--runs 0"):
        parse(["verify", str(nb), "--runs", "0"])
    with pytest.raises(OptionError, match="own parameters"):
        parse(["verify", "abc123", "-p", "lr=1"])
    with pytest.raises(OptionError):
        parse(["verify", str(nb), "--against", "yesterday"])
