"""The stdlib-only probe and the interpreter lookup, against this real environment."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.capture import kernel_python, probe
from jupyter_containerize.capture.distributions import Environment
from jupyter_containerize.capture.interpreter import run_probe
from jupyter_containerize.errors import InterpreterError


def test_probe_matches_importlib_metadata() -> None:
    result = probe.collect()
    seen: dict[str, str] = {}
    for dist in md.distributions():
        seen.setdefault(probe.normalize(dist.metadata["Name"]), dist.version)
    assert {probe.normalize(d["name"]): d["version"] for d in result["distributions"]} == seen
    assert result["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert set(sys.stdlib_module_names) <= set(result["stdlib_module_names"])
    json.dumps(result)  # JSON-able


def test_probe_top_levels_cover_packages_distributions() -> None:
    ours = Environment(probe.collect()).packages_distributions
    for top, names in md.packages_distributions().items():
        if top.isidentifier() and not top.startswith("__"):
            assert {probe.normalize(n) for n in names} <= {probe.normalize(n) for n in ours.get(top, [])}, top


def test_subprocess_probe_equals_in_process() -> None:
    inproc = probe.collect()
    sub = run_probe(sys.executable)
    assert sub["distributions"] == inproc["distributions"]
    assert sub["marker_environment"] == inproc["marker_environment"]


def test_probe_source_is_stdlib_only() -> None:
    import ast

    tree = ast.parse(Path(probe.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods - {"__future__"} <= set(sys.stdlib_module_names)


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false", "/etc/hostname"])
def test_interpreter_that_cannot_run(python: str) -> None:
    with pytest.raises(InterpreterError) as err:
        run_probe(python)
    assert python in str(err.value) and err.value.hint


def _nb(path: Path, kernel: str | None) -> Path:
    nb = nbformat.v4.new_notebook()
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


def test_kernel_python_from_kernelspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kdir = tmp_path / "jupyter" / "kernels" / "custom"
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps(
        {"argv": ["/opt/some/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "Custom", "language": "python"}))
    rdir = tmp_path / "jupyter" / "kernels" / "ir"
    rdir.mkdir(parents=True)
    (rdir / "kernel.json").write_text(json.dumps({"argv": ["R"], "display_name": "R", "language": "R"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    assert kernel_python(_nb(tmp_path / "a.ipynb", "custom")) == "/opt/some/python"
    assert kernel_python(_nb(tmp_path / "b.ipynb", None)) == sys.executable
    assert kernel_python(_nb(tmp_path / "c.ipynb", "python3")) == sys.executable
    with pytest.raises(InterpreterError, match="not installed"):
        kernel_python(_nb(tmp_path / "d.ipynb", "no-such-kernel"))
    with pytest.raises(InterpreterError, match="not Python"):
        kernel_python(_nb(tmp_path / "e.ipynb", "ir"))


def test_pip_config_files_order_and_env(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex_url = https://a.example/simple\ntrusted-host = a.example\n"
                    "[install]\nextra-index-url =\n    https://b.example/simple\n    https://c.example/simple\n")
    env = {"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path), "PIP_TRUSTED_HOST": "b.example"}
    got = probe.pip_config(env)
    assert got["files"][-1] == str(conf)
    assert got["values"]["index-url"] == "https://a.example/simple"
    assert got["values"]["extra-index-url"].split() == ["https://b.example/simple", "https://c.example/simple"]
    assert got["values"]["trusted-host"] == "b.example"
    assert probe.pip_config({"PIP_CONFIG_FILE": os.devnull})["files"] == []
