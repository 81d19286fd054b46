"""The CLI and the magics share each command's implementation (jobs/commands.py); no engine needed.

``dockerfile -o DIR`` captures and renders once, straight into DIR, from either front end, and both
front ends write the same context and print the same Dockerfile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize import cli
from jupyter_containerize.jobs import commands
from jupyter_containerize.options import parse
from tests.support.notebooks import write_notebook

CLASSIC = "--builder=classic"  # render for the classic builder: no engine is asked whether it has BuildKit


@pytest.fixture()
def notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "nb" / "tiny.ipynb", "import json\nprint(json.dumps([1, 2]))")


@pytest.fixture()
def renders(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every folder render_context writes (a spy: it checks how often, the real function still renders)."""
    from jupyter_containerize import render

    real = render.render_context
    calls: list[Path] = []

    def spy(snapshot: Any, spec: Any, out_dir: Path, **kwargs: Any) -> Any:
        calls.append(Path(out_dir))
        return real(snapshot, spec, out_dir, **kwargs)

    monkeypatch.setattr(render, "render_context", spy)
    return calls


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dockerfile_o_renders_once_into_the_folder_it_keeps(notebook: Path, tmp_path: Path,
                                                           renders: list[Path]) -> None:
    out = tmp_path / "ctx"
    spec = parse(["dockerfile", str(notebook), CLASSIC]).spec
    assert spec is not None
    result = commands.dockerfile(spec, out)
    assert renders == [out]  # not a temp folder first and DIR again
    assert result.path == out and (out / "Dockerfile").read_text() == result.dockerfile
    assert sorted(result.files) == sorted(_files(out))
    assert not list(Path(renders[0].parent).glob(".ctx.jc-*"))  # nothing half-written beside it


def test_dockerfile_without_o_renders_once_and_keeps_nothing(notebook: Path, renders: list[Path]) -> None:
    spec = parse(["dockerfile", str(notebook), CLASSIC]).spec
    assert spec is not None
    result = commands.dockerfile(spec)
    assert len(renders) == 1 and not renders[0].exists()  # the temp context is cleaned up
    assert result.path is None and result.dockerfile.startswith(("#", "FROM", "ARG", "# syntax"))


def test_cli_and_magic_dockerfile_o_each_render_once(notebook: Path, tmp_path: Path, shell: Any,
                                                    renders: list[Path], capsys: Any) -> None:
    """(That both write the same context is checked in a real kernel: tests/integration/test_commands.py;
    here the magic captures from the test process, whose modules include pytest.)"""
    by_cli, by_magic = tmp_path / "cli-ctx", tmp_path / "magic-ctx"
    assert cli.main(["dockerfile", str(notebook), "-o", str(by_cli), CLASSIC]) == 0
    assert renders == [by_cli]
    result = shell.run_cell(f"%containerize dockerfile --notebook {notebook} -o {by_magic} {CLASSIC}")
    assert result.success, result.error_in_exec
    assert renders == [by_cli, by_magic]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")]
    pattern = re.compile(r"^wrote \d+ files to (\S+) \(content hash [0-9a-f]{16}\)$")
    assert [m.group(1) for m in map(pattern.match, lines) if m] == [str(by_cli), str(by_magic)]
    assert (by_cli / "Dockerfile").is_file() and (by_magic / "Dockerfile").is_file()


def test_a_refused_output_folder_is_one_clear_error_and_left_as_it_was(notebook: Path, tmp_path: Path,
                                                                      capsys: Any) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert cli.main(["dockerfile", str(notebook), "-o", str(out), CLASSIC]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not empty" in err and "Traceback" not in err
    assert _files(out) == {"mine.txt": b"keep me"}
