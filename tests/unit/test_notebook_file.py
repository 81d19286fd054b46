"""Every notebook format Jupyter opens (nbformat 2, 3, 4) reads as nbformat 4, through one reader."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.errors import NotebookError
from jupyter_containerize.jobs.pipeline import checked_spec
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.notebook_file import read_notebook
from jupyter_containerize.notebook_script import notebook_to_script
from jupyter_containerize.render.context import normalized_notebook
from jupyter_containerize.server.parameters import notebook_parameters

V3 = {
    "metadata": {"name": "old"},
    "nbformat": 3,
    "nbformat_minor": 0,
    "worksheets": [{
        "metadata": {},
        "cells": [
            {"cell_type": "heading", "level": 1, "metadata": {}, "source": ["An old notebook"]},
            {"cell_type": "code", "collapsed": False, "input": ["x = 41\n", "print(x + 1)"], "language": "python",
             "metadata": {}, "outputs": [{"output_type": "stream", "stream": "stdout", "text": ["42\n"]}],
             "prompt_number": 3},
            {"cell_type": "markdown", "metadata": {}, "source": "Done."},
        ],
    }],
}
V2 = {
    "metadata": {"name": "older"},
    "nbformat": 2,
    "worksheets": [{"cells": [{"cell_type": "code", "input": "y = 2", "language": "python", "outputs": [],
                               "prompt_number": 1}]}],
}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_nbformat_3_is_upgraded_with_stable_ids(tmp_path: Path) -> None:
    nb = read_notebook(write(tmp_path / "old.ipynb", V3))
    assert nb.nbformat == 4
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert nb.cells[1].source == "x = 41\nprint(x + 1)"
    assert [c.id for c in nb.cells] == ["cell-0", "cell-1", "cell-2"]
    nbformat.validate(nb)  # a valid v4 notebook, as the runner reads it
    assert read_notebook(tmp_path / "old.ipynb") == nb  # deterministic: no random ids


def test_nbformat_2_is_upgraded(tmp_path: Path) -> None:
    nb = read_notebook(write(tmp_path / "older.ipynb", V2))
    assert nb.nbformat == 4 and nb.cells[0].source == "y = 2"


def test_render_copies_the_upgraded_notebook_and_is_deterministic(tmp_path: Path) -> None:
    path = write(tmp_path / "old.ipynb", V3)
    first = normalized_notebook(path)
    assert first == normalized_notebook(path)
    data = json.loads(first)
    assert data["nbformat"] == 4 and "worksheets" not in data
    code = next(c for c in data["cells"] if c["cell_type"] == "code")
    assert code["outputs"] == [] and code["execution_count"] is None


def test_a_v4_notebook_is_taken_as_written(tmp_path: Path) -> None:
    raw = {"cells": [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [], "execution_count": 2}],
           "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb = read_notebook(write(tmp_path / "new.ipynb", raw))
    assert "id" not in nb.cells[0]  # nothing added (nbformat would add a random id)
    assert json.loads(normalized_notebook(tmp_path / "new.ipynb"))["cells"][0]["execution_count"] is None


@pytest.mark.parametrize("content, message", [
    ('{"a": 1}', "is not a Jupyter notebook"),
    ("[1, 2]", "is not a Jupyter notebook"),
    ('{"nbformat": 3, "cells": 7}', "is not a Jupyter notebook"),
    ('{"nbformat": 5, "cells": []}', "newer than this tool reads"),
    ("not json", "is not valid JSON"),
])
def test_what_is_not_a_notebook_keeps_its_message(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match=message):
        read_notebook(path)
    with pytest.raises(NotebookError, match=message):
        normalized_notebook(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="cannot be read"):
        read_notebook(tmp_path / "nope.ipynb")


def test_every_host_reader_takes_nbformat_3(tmp_path: Path) -> None:
    path = write(tmp_path / "old.ipynb", V3)
    assert notebook_parameters(path) == {"has_cell": False, "parameters": []}
    assert "print(x + 1)" in notebook_to_script(path)
    checked_spec(JobSpec(notebook=path))  # has code cells; no parameters asked
    with pytest.raises(NotebookError, match="no cell tagged 'parameters'"):
        checked_spec(JobSpec(notebook=path, parameters={"x": 1}))
