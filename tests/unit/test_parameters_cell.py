"""One parameters-cell rule (papermill's: the first code cell tagged ``parameters``) for every reader."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.notebook_script import notebook_to_script
from jupyter_containerize.parameters_cell import assignments, parameters_cell_index
from jupyter_containerize.runner.main import inject_parameters
from jupyter_containerize.server.parameters import notebook_parameters


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# tagged markdown is no parameters cell", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import math"),
        nbformat.v4.new_code_cell("lr = 0.1\nepochs: int = 3\nname = 'run'\nsteps = epochs * 2",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("lr = 99.0", metadata={"tags": ["parameters"]}),  # a second one: not the rule's
        nbformat.v4.new_code_cell("print(lr, epochs)"),
    ]
    nbformat.write(nb, str(path))
    return path


def test_every_reader_takes_the_first_tagged_code_cell(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "nb.ipynb")
    nb = nbformat.read(str(path), as_version=4)
    assert parameters_cell_index(nb.cells) == 2
    # the runner injects right after it, replacing an injected cell of an earlier run
    assert inject_parameters(nb, {"lr": 0.5}) and inject_parameters(nb, {"lr": 0.7})
    assert [c.source.splitlines()[-1] for c in nb.cells[2:4]] == ["steps = epochs * 2", "lr = 0.7"]
    assert sum("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    # the sidebar's form and export's train.py read the same cell
    form = notebook_parameters(path)
    assert [(p["name"], p["value"], p["type"]) for p in form["parameters"]] == [
        ("lr", "0.1", "float"), ("epochs", "3", "int"), ("name", "'run'", "str"), ("steps", "epochs * 2", "expression")]
    script = notebook_to_script(path, {"lr": 0.2})
    assert "--lr" in script and "--epochs" in script and "--steps" not in script


def test_assignments_keep_source_text_and_literal_values() -> None:
    found = assignments("a = [1, 2]\nb = dict(x=1)\nc, d = 1, 2\nnot python(")
    assert found == []  # a cell that does not parse has none
    found = assignments("a = [1, 2]\nb = dict(x=1)\nc, d = 1, 2")
    assert [(x.name, x.kind, x.value) for x in found] == [("a", "list", [1, 2]), ("b", "expression", None)]


def test_help_notebook_lists_types_and_defaults_or_says_why_not(tmp_path: Path) -> None:
    from jupyter_containerize.options import HelpShown, parse

    path = _notebook(tmp_path / "nb.ipynb")
    with pytest.raises(HelpShown) as shown:
        parse(["run", str(path), "--help-notebook"])
    assert str(shown.value) == ("Parameters inferred for notebook 'nb.ipynb':\n  lr    : float (default 0.1)\n"
                                "  epochs: int (default 3)\n  name  : str (default 'run')\n"
                                "  steps : expression (default epochs * 2)\n")
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[2].source = "lr = (0.1"
    nbformat.write(nb, str(path))
    with pytest.raises(HelpShown) as shown:
        parse(["run", str(path), "--help-notebook"])
    assert "the parameters cell (cell 3) does not parse" in str(shown.value)


def test_inject_top_is_papermills_way_without_a_parameters_cell(tmp_path: Path) -> None:
    from jupyter_containerize.errors import NotebookError
    from jupyter_containerize.jobs.pipeline import checked_spec
    from jupyter_containerize.options import parse

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(lr)")]
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(NotebookError, match="--inject-top"):
        checked_spec(parse(["run", str(path), "-p", "lr", "0.1"]).spec)  # type: ignore[arg-type]
    spec = parse(["run", str(path), "-p", "lr", "0.1", "--inject-top"]).spec
    assert spec is not None and spec.inject_top
    checked_spec(spec)
    loaded = nbformat.read(str(path), as_version=4)
    assert not inject_parameters(loaded, spec.parameters) and loaded.cells[0].source == "# Parameters\nlr = 0.1\n"
