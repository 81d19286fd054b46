"""``log_metric``: the stdlib-only helper shared by the host package and the image shim."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from jupyter_containerize import metrics


def test_log_metric_merges_latest_values_and_keeps_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JC_OUTPUT_DIR", str(tmp_path / "out"))
    metrics.log_metric("loss", 1.5, step=1)
    metrics.log_metric("loss", 0.5, step=2)
    metrics.log_metric("accuracy", 1)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"accuracy": 1.0, "loss": 0.5}
    history = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [(h["name"], h["value"], h["step"]) for h in history] == [("loss", 1.5, 1), ("loss", 0.5, 2),
                                                                       ("accuracy", 1.0, None)]
    assert not list((tmp_path / "out").glob(".metrics.*"))  # no temp file left
    assert (tmp_path / "out" / "metrics.json").stat().st_mode & 0o777 == 0o644


def test_log_metric_keeps_hand_written_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JC_OUTPUT_DIR", str(tmp_path))
    (tmp_path / "metrics.json").write_text('{"f1": 0.25}')
    metrics.log_metric("auc", 0.75)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"auc": 0.75, "f1": 0.25}


def test_log_metric_falls_back_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JC_OUTPUT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(metrics, "CONTAINER_OUTPUT", str(tmp_path / "no-such-output"))
    metrics.log_metric("x", 2.0)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"x": 2.0}


@pytest.mark.parametrize(("name", "value", "error"), [
    ("", 1.0, ValueError), (3, 1.0, TypeError), ("x", "abc", TypeError), ("x", math.nan, ValueError),
    ("x", math.inf, ValueError),
])
def test_log_metric_rejects_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: object, value: object,
                                      error: type[Exception]) -> None:
    monkeypatch.setenv("JC_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(error):
        metrics.log_metric(name, value)  # type: ignore[arg-type]
    assert not (tmp_path / "metrics.json").exists()


def test_metrics_module_is_stdlib_only() -> None:
    import ast
    import sys

    tree = ast.parse(Path(metrics.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}


def test_an_int_metric_stays_an_int(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Count:  # what numpy's integers offer: __index__
        def __index__(self) -> int:
            return 7

    monkeypatch.setenv("JC_OUTPUT_DIR", str(tmp_path))
    metrics.log_metric("n_trees", 300)
    metrics.log_metric("epochs", Count())  # type: ignore[arg-type]
    metrics.log_metric("passed", True)
    latest = json.loads((tmp_path / "metrics.json").read_text())
    assert latest == {"epochs": 7, "n_trees": 300, "passed": 1.0}
    assert [type(latest[k]) for k in ("epochs", "n_trees", "passed")] == [int, int, float]
    assert '"value": 300,' in (tmp_path / "metrics.jsonl").read_text()
