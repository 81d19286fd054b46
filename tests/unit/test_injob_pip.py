"""Install lines inside a job: no network, one line saying the image has it, or a clear failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_containerize import injob_pip
from jupyter_containerize.injob_pip import PackageNotInImage, check_install, clause_holds, install_arguments
from jupyter_containerize.render.context import INJOB_PIP_MODULE, kernel_json

SIX = __import__("importlib.metadata").metadata.version("six")


@pytest.mark.parametrize("line, expected", [
    ("pip install six", (["six"], [])),
    ("pip3 install -q --upgrade six numpy==1.26.4", (["six", "numpy==1.26.4"], [])),
    ("/opt/venv/bin/python -m pip install six && echo ok", (["six"], [])),
    ("{sys.executable} -m pip install -r requirements.txt", ([], ["requirements.txt"])),
    ("pip list", None),
    ("echo hello", None),
])
def test_install_arguments(line: str, expected: Any) -> None:
    assert install_arguments(line) == expected


def test_installed_package_is_one_line() -> None:
    assert check_install("pip install six") == [f"already in the image: six=={SIX}"]
    assert check_install(f"pip install 'six>={SIX}' six") == [f"already in the image: six=={SIX}, six=={SIX}"]
    assert check_install("ls -l") is None


def test_unsatisfied_or_missing_package_fails_clearly() -> None:
    with pytest.raises(PackageNotInImage, match=rf"six==0\.0\.1 is asked for but the job's image has six {SIX}"):
        check_install("pip install six==0.0.1")
    with pytest.raises(PackageNotInImage, match="no-such-package-jc is not installed in the job's image"):
        check_install("pip install no-such-package-jc")


def test_what_names_no_package_is_skipped_not_failed(tmp_path: Path) -> None:
    lines = check_install("pip install ./local git+https://example.com/x.git", tmp_path)
    assert lines == [("not installed in the job (the image holds the captured environment): "
                     "./local git+https://example.com/x.git")]
    assert check_install("pip install -r missing.txt", tmp_path) == [
        "not installed in the job (the image holds the captured environment): -r missing.txt"]
    (tmp_path / "req.txt").write_text("# pinned\nsix  # a comment\n--index-url https://x\n")
    assert check_install("pip install -r req.txt", tmp_path) == [f"already in the image: six=={SIX}"]
    parsed = injob_pip.parse_requirement("six; sys_platform == 'nonesuch'")
    assert parsed is not None and parsed[2] is False  # not for this platform: nothing to check


@pytest.mark.parametrize("installed, op, wanted, holds", [
    ("1.17.0", "==", "1.17", True), ("1.17.0", "==", "1.16", False), ("1.17.0", "!=", "1.16", True),
    ("1.17.0", ">=", "1.2", True), ("1.17.0", "<", "1.2", False), ("1.17.0", "~=", "1.16", True),
    ("2.0", "~=", "1.16", False), ("1.17.0", "==", "1.*", True), ("1.17.0", "!=", "1.*", False),
    ("1.17.0", "===", "1.17.0", True),
])
def test_fallback_specifiers(installed: str, op: str, wanted: str, holds: bool) -> None:
    assert clause_holds(installed, op, wanted) is holds


def test_fallback_parser_without_packaging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "packaging.requirements", None)
    assert check_install("pip install 'six>=1,<99'") == [f"already in the image: six=={SIX}"]
    with pytest.raises(PackageNotInImage):
        check_install("pip install six==0.0.1")


@pytest.fixture(scope="module")
def shell() -> Any:
    sh = InteractiveShell.instance()
    injob_pip.load_ipython_extension(sh)
    return sh


def test_the_kernel_lines_never_reach_pip(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for cell in ("!pip install six", "%pip install six", "import sys\n!{sys.executable} -m pip install six",
                 "%uv pip install six"):
        assert shell.run_cell(cell).success, cell
        assert capsys.readouterr().out.strip() == f"already in the image: six=={SIX}"
    failed = shell.run_cell("!pip install six==0.0.1")
    assert isinstance(failed.error_in_exec, PackageNotInImage)
    assert "PackageNotInImage: six==0.0.1 is asked for" in capsys.readouterr().out


def test_other_commands_run_with_the_callers_variables(shell: Any, capfd: pytest.CaptureFixture[str]) -> None:
    assert shell.run_cell("def f():\n    where = 'inside'\n    !echo {where} $where\nf()\nv = 3\n!echo {v} '$v'").success
    out = capfd.readouterr().out
    assert "inside inside" in out and "3 $v" in out
    assert shell.run_cell("%pip --version").success
    assert "pip " in capfd.readouterr().out


def test_the_image_kernel_loads_the_extension() -> None:
    argv = json.loads(kernel_json())["argv"]
    assert f"--ext={INJOB_PIP_MODULE}" in argv
    assert "jupyter_containerize." + Path(injob_pip.__file__).stem == INJOB_PIP_MODULE


def test_the_extension_imports_only_stdlib_and_ipython() -> None:
    import ast
    import sys

    tree = ast.parse(Path(injob_pip.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert roots - set(sys.stdlib_module_names) <= {"packaging"}  # optional, imported inside a try
