"""The in-container runner, run on the host as a subprocess (no engine needed)."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_containerize import events
from jupyter_containerize.runner import main as runner_main
from tests.support.outputs import output_notebook
from tests.support.runner import PYTHON, RUNNER, RUNNER_JOB_ID, Run, run_runner, runner_env

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"


def assert_round_trip(event_dicts: list[dict[str, Any]]) -> None:
    for d in event_dicts:
        ev = events.event_from_dict(d)
        assert type(ev).__name__ == d["type"]
        assert json.loads(json.dumps(ev.to_dict())) == d  # same keys, same values, nothing lost


def test_simple_notebook_succeeds(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "simple.ipynb", tmp_path, jupyter_path)
    assert run.code == 0, run.stdout
    assert run.events[0]["type"] == "NotebookStarted"
    assert run.events[0]["total_cells"] == 3
    assert [e["index"] for e in run.of("CellStarted")] == [0, 1, 2]
    assert [e["ok"] for e in run.of("CellFinished")] == [True, True, True]
    assert run.of("CellStarted")[0]["source_first_line"] == "x = 1"
    logs = run.of("Log")
    assert {"text": "hello 1\n", "stream": "stdout"} in [{"text": e["text"], "stream": e["stream"]} for e in logs]
    assert any(e["stream"] == "stderr" and "to stderr" in e["text"] for e in logs)
    fin = run.finished
    assert fin["status"] == "succeeded" and fin["exit_code"] == 0 and fin["failing_cell"] is None
    assert fin["outputs"][0] == str(tmp_path / f"simple.{RUNNER_JOB_ID}.ipynb")  # the executed notebook first
    nb = run.notebook()
    assert nb.cells[3].outputs[-1]["data"]["text/plain"] == "2"
    assert_round_trip(run.events)


def test_failing_cell_stops_with_index_traceback_and_partial_notebook(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "broken.ipynb", tmp_path, jupyter_path)
    assert run.code == 1
    fin = run.finished
    assert fin["status"] == "failed" and fin["exit_code"] == 1
    assert fin["failing_cell"] == 1
    assert fin["error"] == "ValueError: boom"
    assert "raise ValueError('boom')" in fin["traceback"]
    assert "\x1b[" not in fin["traceback"]
    assert [e["index"] for e in run.of("CellStarted")] == [0, 1]  # cell 2 never started
    assert [e["ok"] for e in run.of("CellFinished")] == [True, False]
    nb = run.notebook()
    # papermill's red markers: one at the top linking to the failing cell, one right above it
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown", "code", "code"]
    assert "An Exception was encountered at" in nb.cells[0].source and 'In [2]' in nb.cells[0].source
    assert 'id="papermill-error-cell"' in nb.cells[2].source
    assert len({c.get("id") for c in nb.cells} - {None}) == len(nb.cells)  # nbformat 4.5: every cell has its own id
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "before\n"
    assert code[1].outputs[0]["output_type"] == "error"
    assert code[2].outputs == [] and code[2].execution_count is None
    record = nb.metadata["papermill"]
    assert record["exception"] is True and record["end_time"] and record["duration"] >= 0
    assert [c.metadata["papermill"]["status"] for c in code[:2]] == ["completed", "failed"]
    assert code[2].metadata["papermill"]["status"] == "pending"  # as papermill leaves a cell that never ran
    stderr = "".join(e["text"] for e in run.of("Log") if e["stream"] == "stderr")
    assert "raise ValueError('boom')" in stderr and stderr.rstrip().endswith("ValueError: boom")  # as papermill prints
    assert_round_trip(run.events)


@pytest.mark.parametrize(
    ("fixture", "ename"), [("sysexit1.ipynb", "SystemExit: 1"), ("keyboard_interrupt.ipynb", "KeyboardInterrupt")]
)
def test_sys_exit_1_and_keyboard_interrupt_fail_the_job(
    tmp_path: Path, jupyter_path: Path, fixture: str, ename: str
) -> None:
    run = run_runner(FIXTURES / fixture, tmp_path, jupyter_path)
    assert run.code == 1
    assert run.finished["failing_cell"] == 1
    assert run.finished["error"] == ename
    assert not any("never" in e["text"] for e in run.of("Log"))


def test_sys_exit_0_stops_successfully(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "sysexit0.ipynb", tmp_path, jupyter_path)
    assert run.code == 0
    assert run.finished["status"] == "succeeded"
    assert [e["index"] for e in run.of("CellStarted")] == [0, 1]


def test_parameters_are_injected_after_the_parameters_cell(tmp_path: Path, jupyter_path: Path) -> None:
    params = {"alpha": 0.5, "name": "it's \"quoted\"", "epochs": 3}
    run = run_runner(FIXTURES / "parameters.ipynb", tmp_path, jupyter_path, params)
    assert run.code == 0, run.stdout
    assert run.events[0]["parameters"] == params
    assert run.events[0]["total_cells"] == 3  # parameters cell, injected cell, body
    text = "".join(e["text"] for e in run.of("Log"))
    assert "alpha=0.5 name='it\\'s \"quoted\"' epochs=3" in text
    nb = run.notebook()
    assert nb.cells[1].metadata["tags"] == ["parameters"]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    assert nb.cells[2].source.startswith("# Parameters\nalpha = 0.5\n")
    assert_round_trip(run.events)


def test_parameters_without_tagged_cell_go_first_with_a_warning(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "simple.ipynb", tmp_path, jupyter_path, {"x": 41})
    assert run.code == 0
    assert any("no cell is tagged 'parameters'" in e["text"] for e in run.of("Log"))
    nb = run.notebook()
    assert nb.cells[0].metadata["tags"] == ["injected-parameters"]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"not an identifier": 1}'])
def test_bad_parameters_are_a_runner_error(tmp_path: Path, jupyter_path: Path, raw: str) -> None:
    proc = subprocess.run(
        [PYTHON, str(RUNNER), str(FIXTURES / "simple.ipynb"), "--output-dir", str(tmp_path)],
        check=False,
        env={**runner_env(jupyter_path), "JC_PARAMETERS": raw},
        capture_output=True,
        text=True,
        timeout=60,
    )
    run = Run(proc.returncode, proc.stdout, tmp_path)
    assert run.code == 2
    assert run.finished["status"] == "failed" and "JC_PARAMETERS" in run.finished["error"]
    assert_round_trip(run.events)


def test_missing_notebook_is_a_runner_error(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(tmp_path / "nope.ipynb", tmp_path / "out", jupyter_path)
    assert run.code == 2
    assert "cannot read notebook" in run.finished["error"]


def test_metrics_become_events_and_files(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "metrics.ipynb", tmp_path, jupyter_path)
    assert run.code == 0, run.stdout
    assert {(e["name"], e["value"]) for e in run.of("MetricLogged")} == {("accuracy", 0.5), ("loss", 1.25)}
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": 0.5, "loss": 1.25}
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [None, 3]
    assert str(tmp_path / "metrics.json") in run.finished["outputs"]
    assert_round_trip(run.events)


def test_sigterm_saves_and_reports_cancelled(tmp_path: Path, jupyter_path: Path) -> None:
    proc = subprocess.Popen(
        [PYTHON, str(RUNNER), str(FIXTURES / "long_running.ipynb"), "--output-dir", str(tmp_path)],
        env=runner_env(jupyter_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if '"CellStarted"' in line and '"index": 1' in line:
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=30)
    run = Run(proc.returncode, "".join(lines) + rest, tmp_path)
    assert run.code == 143
    assert run.finished["status"] == "cancelled" and run.finished["exit_code"] == 143
    nb = run.notebook()
    assert nb.cells[0].outputs[0]["text"] == "go\n"
    assert_round_trip(run.events)


def test_autosave_during_a_long_cell(tmp_path: Path, jupyter_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import time\nprint('tick', flush=True)\ntime.sleep(4)")]
    )
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, str(path))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [PYTHON, str(RUNNER), str(path), "--output-dir", str(out)],
        env=runner_env(jupyter_path, JC_AUTOSAVE_SECONDS="0.3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen_mid_cell = False
    for line in proc.stdout:
        if '"Log"' in line and "tick" in line:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not seen_mid_cell:
                time.sleep(0.1)
                seen_mid_cell = "tick" in output_notebook(out, RUNNER_JOB_ID).read_text()
            break
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert seen_mid_cell, "the partial notebook was not saved while the cell was still running"


def test_runner_imports_only_stdlib_nbformat_nbclient() -> None:
    tree = ast.parse(RUNNER.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    # and the parameters-cell rule, copied beside it into the image (itself stdlib only)
    assert roots - set(sys.stdlib_module_names) == {"nbformat", "nbclient", "jupyter_containerize", "parameters_cell",
                                                            "papermill_record"}
    for beside in ("parameters_cell.py", "papermill_record.py"):
        tree = ast.parse((RUNNER.parent.parent / beside).read_text())
        imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= set(sys.stdlib_module_names) | {"__future__"}, beside


def test_event_prefix_matches_the_package() -> None:
    assert runner_main.EVENT_PREFIX == events.EVENT_PREFIX


def test_parameters_source_uses_repr_of_json_values() -> None:
    src = runner_main.parameters_source({"a": [1, 2.5, None, True], "s": "x\ny"})
    assert src == "# Parameters\na = [1, 2.5, None, True]\ns = 'x\\ny'\n"
    namespace: dict[str, Any] = {}
    exec(src, namespace)  # noqa: S102 - the point is that it is valid Python
    assert namespace["s"] == "x\ny"


def test_inject_replaces_a_stale_injected_cell() -> None:
    nb = nbformat.read(str(FIXTURES / "parameters.ipynb"), as_version=4)
    assert runner_main.inject_parameters(nb, {"alpha": 1})
    assert runner_main.inject_parameters(nb, {"alpha": 2})
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "alpha = 2" in injected[0].source


def test_strip_ansi() -> None:
    assert runner_main.strip_ansi("\x1b[0;31mValueError\x1b[0m: boom") == "ValueError: boom"


def test_a_kernel_that_dies_at_start_is_replaced(tmp_path: Path, jupyter_path: Path) -> None:
    """The first kernel exits before answering (as one did once under heavy load); the runner starts another."""
    share = tmp_path / "share"
    spec_dir = share / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    marker = tmp_path / "first-start"
    spec = json.loads((jupyter_path / "kernels" / "python3" / "kernel.json").read_text())
    launch = " ".join(spec["argv"])
    spec["argv"] = ["/bin/sh", "-c", f"if [ ! -e {marker} ]; then touch {marker}; exit 1; fi; exec {launch}"]
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    run = run_runner(FIXTURES / "simple.ipynb", tmp_path / "out", share)
    assert run.code == 0, run.stdout
    assert marker.exists()
    assert any("kernel did not start" in e["text"] for e in run.of("Log"))
    assert [e["index"] for e in run.of("CellStarted")] == [0, 1, 2]


def _sleepy(folder: Path) -> Path:
    from tests.support.notebooks import write_notebook

    return write_notebook(folder / "sleepy.ipynb", "print('before', flush=True)",
                          "import time\nfor _ in range(600):\n    time.sleep(0.1)", "print('never')")


def test_a_cell_over_its_cell_timeout_fails_the_job_and_keeps_the_notebook_so_far(tmp_path: Path,
                                                                                   jupyter_path: Path) -> None:
    run = run_runner(_sleepy(tmp_path), tmp_path / "out", jupyter_path, JC_CELL_TIMEOUT="3")
    assert run.code == 1
    fin = run.finished
    assert fin["status"] == "failed" and fin["failing_cell"] == 1
    assert fin["error"] == "timed out after 3s at cell 2 of 3 (--cell-timeout)"
    nb = run.notebook()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "before\n" and code[2].metadata["papermill"]["status"] == "pending"
    assert nb.metadata["papermill"]["exception"] is True


def test_a_notebook_over_its_timeout_ends_failed_saying_where(tmp_path: Path, jupyter_path: Path) -> None:
    started = time.monotonic()
    run = run_runner(_sleepy(tmp_path), tmp_path / "out", jupyter_path, JC_TIMEOUT="8")
    assert run.code == 1 and time.monotonic() - started < 60  # not the cell's full minute
    fin = run.finished
    assert fin["status"] == "failed" and fin["error"] == "timed out after 8s at cell 2 of 3 (--timeout)"
    assert fin["failing_cell"] == 1
    code = [c for c in run.notebook().cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "before\n"  # the notebook so far is kept


def test_the_traceback_ends_with_the_error_once(tmp_path: Path, jupyter_path: Path) -> None:
    run = run_runner(FIXTURES / "broken.ipynb", tmp_path, jupyter_path)
    stderr = "".join(e["text"] for e in run.of("Log") if e["stream"] == "stderr")
    assert stderr.count("ValueError: boom") == 1
    assert runner_main._traceback_then_error("Traceback…\nKeyError: 'x'", "KeyError: 'x'\nHint: y") == \
        "Traceback…\nKeyError: 'x'\nHint: y\n"
    assert runner_main._duration(5400) == "1h30m" and runner_main._duration(7200) == "2h"
