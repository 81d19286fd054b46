"""What the REST layer lets a client reach: paths stay in the root, options go through THE parser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jupyter_containerize.errors import NotebookError, OptionError
from jupyter_containerize.parameters_cell import assignments
from jupyter_containerize.server.paths import api_path_of, resolve_in_root
from jupyter_containerize.server.payload import options_argv, spec_from_payload


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "root" / "sub" / "a.ipynb").write_text(json.dumps(nb))
    (tmp_path / "outside.ipynb").write_text(json.dumps(nb))
    return tmp_path / "root"


def test_paths_inside_the_root_resolve(root: Path) -> None:
    assert resolve_in_root(root, "sub/a.ipynb") == (root / "sub" / "a.ipynb").resolve()
    assert api_path_of(root, root / "sub" / "a.ipynb") == "sub/a.ipynb"
    assert api_path_of(root, root.parent / "outside.ipynb") is None


@pytest.mark.parametrize("path", ["../outside.ipynb", "sub/../../outside.ipynb", "/etc/passwd", "", "sub\\..\\..\\x",
                                  "a\x00b.ipynb", "sub/missing.ipynb"])
def test_paths_leaving_the_root_or_missing_are_refused(root: Path, path: str) -> None:
    with pytest.raises(NotebookError):
        resolve_in_root(root, path)


def test_a_symlink_out_of_the_root_is_refused(root: Path) -> None:
    (root / "link.ipynb").symlink_to(root.parent / "outside.ipynb")
    with pytest.raises(NotebookError, match="leaves the Jupyter root"):
        resolve_in_root(root, "link.ipynb")


def test_options_become_the_clis_flags() -> None:
    argv = options_argv({"gpus": "all", "volume": ["./d:/data:ro"], "env": {"SEED": "1"}, "no_cache": True,
                         "parameters": {"lr": 0.01, "name": "x"}, "cpus": 2, "tag": None, "writable_root": False})
    assert argv == ["--cpus=2", "--env=SEED=1", "--gpus=all", "--no-cache", "--parameter=lr=0.01",
                    "--parameter=name=x", "--volume=./d:/data:ro"]


@pytest.mark.parametrize("options", [{"python": "/bin/sh"}, {"detach": True}, {"gpus": {"a": 1}}, {"bad key": 1},
                                     {"unknown_flag": 1}, {"gpus": "lots"}, {"volume": ["/:/host"]}, {"uid": 0}])
def test_bad_or_refused_options_raise_one_sentence(root: Path, options: dict[str, object]) -> None:
    with pytest.raises(OptionError):
        spec_from_payload("run", root / "sub" / "a.ipynb", options, python=None, root=root)


@pytest.mark.parametrize(("options", "said"), [
    ({"output": "/tmp/elsewhere"}, "The output names /tmp/elsewhere, outside the Jupyter root"),
    ({"output": "../../out"}, "The output names"),
    ({"volume": ["/usr/share:/data:ro"]}, "The volume '/usr/share:/data:ro' names /usr/share, outside the Jupyter root"),
    ({"volume": ["../..:/data"]}, "outside the Jupyter root"),
    ({"allow_dangerous_mounts": True, "volume": ["/:/host"]}, "'allow_dangerous_mounts' cannot be set over the REST API"),
])
def test_host_folders_outside_the_root_are_refused_over_rest(root: Path, options: dict[str, object], said: str) -> None:
    with pytest.raises(OptionError, match=re.escape(said)):
        spec_from_payload("run", root / "sub" / "a.ipynb", options, python=None, root=root)


def test_host_folders_under_the_root_and_named_volumes_are_taken(root: Path) -> None:
    (root / "sub" / "data").mkdir()
    spec = spec_from_payload("run", root / "sub" / "a.ipynb",
                             {"output": "out", "volume": ["./data:/data:ro", "cache:/cache"]}, python=None, root=root)
    assert spec.output_dir == (root / "sub" / "out").resolve() and len(spec.volumes) == 2


def test_the_server_chooses_the_interpreter(root: Path) -> None:
    spec = spec_from_payload("run", root / "sub" / "a.ipynb", {"env": ["A=-x"]}, python="/usr/bin/python3", root=root)
    assert spec.build.python == "/usr/bin/python3" and spec.env == {"A": "-x"}


def test_parameter_cell_assignments_keep_their_source_text() -> None:
    source = "# defaults\nlr = 1e-3\nname: str = 'adam'\nlayers = [64, 64]\nx, y = 1, 2\nsteps = 10 * 2\nprint(lr)\n"
    assert [{"name": a.name, "value": a.text, "type": a.kind} for a in assignments(source)] == [
        {"name": "lr", "value": "1e-3", "type": "float"},
        {"name": "name", "value": "'adam'", "type": "str"},
        {"name": "layers", "value": "[64, 64]", "type": "list"},
        {"name": "steps", "value": "10 * 2", "type": "expression"},
    ]
    assert assignments("def (:") == []
