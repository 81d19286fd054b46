"""The labextension's event types are generated from events.py, and the committed file is current."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize import events
from tests.support import REPO

GENERATOR = REPO / "scripts" / "gen_event_types.py"
GENERATED = REPO / "labextension" / "src" / "events.generated.ts"


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_event_types", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_typescript_is_what_the_generator_writes() -> None:
    expected = _generator().render()
    assert GENERATED.read_text(encoding="utf-8") == expected, (
        f"{GENERATED.relative_to(REPO)} is stale: run `python scripts/gen_event_types.py` (or `jlpm build:types` "
        "in labextension/) and commit the result")


def test_check_mode_says_stale_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "events.generated.ts"
    out.write_text("// old\n")
    run = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(out)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 1 and "stale" in run.stderr and out.read_text() == "// old\n"
    run = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0 and out.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8")
    assert subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(out)], check=False).returncode == 0


def test_every_event_has_an_interface_with_exactly_its_wire_fields() -> None:
    described = _generator().event_fields(_generator().load_events())
    assert list(described) == list(events.EVENT_TYPES)
    samples: dict[str, Any] = {
        "StatusChanged": events.StatusChanged(status="running"),
        "BuildStarted": events.BuildStarted(tag="t", total_steps=1),
        "BuildStep": events.BuildStep(index=1, total=1, instruction="FROM x"),
        "LayerCached": events.LayerCached(index=1),
        "PackagesProgress": events.PackagesProgress(phase="installed", count=1),
        "BuildLog": events.BuildLog(line="x"),
        "BuildFinished": events.BuildFinished(image_id="i", tag="t", cached=True),
        "PushProgress": events.PushProgress(reference="r", detail="d"),
        "RunStarted": events.RunStarted(container_id="c", image="i"),
        "NotebookStarted": events.NotebookStarted(total_cells=1),
        "CellStarted": events.CellStarted(index=0, total=1, source_first_line="x"),
        "CellFinished": events.CellFinished(index=0, total=1, duration=0.1),
        "Log": events.Log(text="x"),
        "MetricLogged": events.MetricLogged(name="m", value=1.0),
        "Retrying": events.Retrying(attempt=2, attempts=3, reason="lost", delay=10.0),
        "Finished": events.Finished(status="succeeded"),
    }
    assert set(samples) == set(events.EVENT_TYPES)
    for name, fields in described.items():
        wire = json.loads(json.dumps(samples[name].to_dict()))
        assert wire.pop("type") == name
        assert [f for f, _, _ in fields] == list(wire), name
    text = GENERATED.read_text(encoding="utf-8")
    assert "export type JobStatus =\n  | 'queued'" in text and "  status: JobStatus;" in text
    assert "  exit_code: number | null;" in text and "  outputs: string[];" in text
    assert "  parameters: Record<string, unknown>;" in text


def test_a_field_type_without_a_json_form_is_refused() -> None:
    gen = _generator()
    assert gen.ts_type(int | None, {}) == "number | null"
    assert gen.ts_type(tuple[int | None, ...], {}) == "(number | null)[]"
    assert gen.ts_type(tuple[str, int], {}) == "[string, number]"
    with pytest.raises(TypeError, match="no TypeScript type"):
        gen.ts_type(complex, {})
