"""Notebook import scanning: IPython syntax, nested and dynamic imports, pip lines, local code."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.capture.imports import pip_requirements, read_notebook, scan_notebook, scan_source
from jupyter_containerize.errors import NotebookError

STDLIB = sys.stdlib_module_names


def write_nb(path: Path, *cells: str, markdown: str = "# title") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def test_magics_shell_lines_and_nested_imports(tmp_path: Path) -> None:
    nb = write_nb(
        tmp_path / "exp.ipynb",
        "%matplotlib inline\nimport numpy as np\nimport os, json",
        "%%time\nimport pandas as pd\nfrom sklearn.linear_model import LinearRegression",
        "!pip install -q 'xgboost==2.0.3' lightgbm --upgrade\n%pip install -U \"polars>=1\"",
        "!{sys.executable} -m pip install --index-url https://x.example/simple seaborn -r reqs.txt",
        "def train():\n    import torch.nn as nn\n    class M:\n        def f(self):\n            from scipy import stats\n",
        "import importlib\nmod = importlib.import_module('yaml')\nplt = __import__('matplotlib.pyplot')",
        "from importlib import import_module\nimport_module('PIL.Image')\nimport_module(name_from_variable)",
        "%load_ext autoreload\n%load_ext line_profiler\nx = !ls\n%timeit -n 3 import bokeh",
        "%%bash\nimport notpython\n",
        "import jupyter_containerize\nfrom __future__ import annotations",
    )
    found = scan_notebook(nb, STDLIB)
    assert set(found.modules) == {
        "numpy", "pandas", "sklearn.linear_model", "torch.nn", "scipy", "yaml", "matplotlib.pyplot",
        "matplotlib", "PIL.Image", "line_profiler", "bokeh",
    }
    assert found.requirements == ("xgboost==2.0.3", "lightgbm", "polars>=1", "seaborn")
    assert "scipy.stats" in found.from_names
    assert found.local_modules == ()
    assert found.warnings == ()


def test_local_modules_are_code_and_their_imports_count(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("import requests\nfrom . import nothing\n")
    pkg = tmp_path / "mylib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("import attrs\nfrom mylib import helpers2\n")
    nb = write_nb(tmp_path / "nb.ipynb", "import helpers\nfrom mylib.core import thing\nimport numpy",
                  "%run helpers.py")
    found = scan_notebook(nb, STDLIB)
    assert found.local_modules == ("helpers.py", "mylib")
    assert set(found.modules) == {"requests", "attrs", "numpy"}


def test_cell_that_does_not_parse_is_a_warning(tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import numpy", "def broken(:\n    pass")
    found = scan_notebook(nb, STDLIB)
    assert found.modules == ("numpy",)
    assert len(found.warnings) == 1 and "cell 2" in found.warnings[0]


def test_invalid_and_missing_notebooks_raise_notebook_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(NotebookError, match="not a valid notebook"):
        read_notebook(bad)
    (tmp_path / "nocells.ipynb").write_text('{"metadata": {}}')
    with pytest.raises(NotebookError, match="no list of cells"):
        scan_notebook(tmp_path / "nocells.ipynb")
    with pytest.raises(NotebookError, match="Cannot read"):
        scan_notebook(tmp_path / "missing.ipynb")


def test_imports_guarded_by_import_error_handlers_are_optional(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("try:\n    import ujson as json\nexcept ImportError:\n    import json\n")
    nb = write_nb(
        tmp_path / "nb.ipynb",
        "try:\n    import xgboost\nexcept ImportError:\n    xgboost = None",
        "try:\n    from lightgbm import LGBMClassifier\nexcept (ValueError, ModuleNotFoundError):\n    pass",
        "try:\n    import catboost\nexcept:\n    pass\ntry:\n    import_module('polars')\nexcept Exception:\n    pass",
        "try:\n    import torch\nexcept builtins.ImportError:\n    pass",
        "try:\n    import pandas\nexcept KeyError:\n    pass",  # does not catch ImportError: required
        "try:\n    import numpy\nexcept ImportError:\n    import scipy\nelse:\n    import sympy",
        "import numpy as np",  # also imported unguarded: required
        "import helpers",
    )
    found = scan_notebook(nb, STDLIB)
    assert set(found.modules) == {"xgboost", "lightgbm", "catboost", "polars", "torch", "pandas", "numpy",
                                  "scipy", "sympy", "ujson"}
    assert found.guarded == ("catboost", "lightgbm", "polars", "torch", "ujson", "xgboost")
    assert "lightgbm.LGBMClassifier" in found.from_names


def test_requirement_files_of_pip_lines(tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "!pip install -r requirements.txt numpy\n%pip install -rdev.txt",
                  "!pip install --requirement=more.txt -c constraints.txt")
    found = scan_notebook(nb, STDLIB)
    assert found.requirements == ("numpy",)
    assert found.requirement_files == ("requirements.txt", "dev.txt", "more.txt")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pip install numpy pandas==2.2.0", ["numpy", "pandas==2.2.0"]),
        ("pip3 install -q --no-deps 'scikit-learn>=1.3' && echo done", ["scikit-learn>=1.3"]),
        ("{sys.executable} -m pip install -i https://h/simple torch", ["torch"]),
        ("/usr/bin/python3 -m pip install -c c.txt 'a[b]'", ["a[b]"]),
        ("uv pip install httpx", ["httpx"]),
        ("pip list", []),
        ("ls -l", []),
    ],
)
def test_pip_install_lines(command: str, expected: list[str]) -> None:
    assert pip_requirements(command) == expected


def test_scan_source_without_ipython_for_plain_modules() -> None:
    visitor = scan_source("import a.b\nfrom c import d\n", ipython=False)
    assert visitor.modules == ["a.b", "c"]
    assert visitor.from_names == ["c.d"]
