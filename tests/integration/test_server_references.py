"""The sidebar's preview says what a run mounts and which of the notebook's own code it copies, and why.

A real jupyter_server with the extension, a real notebook that reads ``data/x.csv`` beside it and
imports a package from ``../src`` through ``sys.path.append``; the preview needs no engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.notebooks import write_notebook

pytest_plugins = ("pytest_jupyter.jupyter_server",)

NOTEBOOK = "nb/analysis.ipynb"


@pytest.fixture
def jp_server_config(job_store: Path) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    (jp_root_dir / "src" / "mylib").mkdir(parents=True)
    (jp_root_dir / "src" / "mylib" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    (jp_root_dir / "nb" / "data").mkdir(parents=True)
    (jp_root_dir / "nb" / "data" / "x.csv").write_text("a,b\n1,2\n")
    write_notebook(
        jp_root_dir / NOTEBOOK,
        "import sys\nsys.path.append('../src')\nimport mylib",
        "import csv\nrows = list(csv.reader(open('data/x.csv')))\nprint(mylib.double(len(rows)))",
    )
    return jp_root_dir


async def _preview(fetch: Any, options: dict[str, Any]) -> dict[str, Any]:
    response = await fetch("containerize", "preview", method="POST",
                           body=json.dumps({"path": NOTEBOOK, "options": options}))
    return json.loads(response.body)  # type: ignore[no-any-return]


def _code(preview: dict[str, Any]) -> dict[str, str]:
    return {c["path"]: c["why"] for c in preview["local_code"]}


async def test_preview_names_the_mounts_and_the_code_with_why(jp_fetch: Any, root: Path) -> None:
    preview = await _preview(jp_fetch, {})
    # The data beside the notebook: mounted read-only at the same place relative to the notebook.
    assert len(preview["mounts"]) == 1, preview["mounts"]
    mount = preview["mounts"][0]
    assert mount["path"] in ("data", "data/x.csv"), mount
    assert mount["target"] == f"/work/nb/{mount['path']}"
    assert "cell 2" in mount["why"] and mount["why"].startswith("read by"), mount
    # The package found through sys.path.append('../src'): copied into the image, with the cell that imports it.
    assert _code(preview) == {"../src/mylib": "imported by cell 1"}
    assert "work/src/mylib/__init__.py" in preview["files"]
    # Data is mounted, never copied into the build context.
    assert not any(f.endswith("x.csv") for f in preview["files"]), preview["files"]


async def test_no_auto_mount_leaves_the_mounts_out_but_not_the_code(jp_fetch: Any, root: Path) -> None:
    preview = await _preview(jp_fetch, {"no_auto_mount": True})  # the sidebar's unchecked "Mount the data…"
    assert preview["mounts"] == []
    assert _code(preview) == {"../src/mylib": "imported by cell 1"}


async def test_a_volume_over_the_same_place_replaces_the_automatic_mount(jp_fetch: Any, root: Path) -> None:
    other = root / "elsewhere"
    other.mkdir()
    preview = await _preview(jp_fetch, {"volume": [f"{other}:/work/nb/data:ro"]})
    assert preview["mounts"] == []  # what the run would do: -v already mounts something there
