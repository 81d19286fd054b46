"""What a notebook refers to: path expressions, sys.path edits, %run/%load targets, data to mount."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jupyter_containerize.capture.imports import scan_notebook
from jupyter_containerize.capture.references import in_work, mount_units, notebook_folder
from tests.support.notebooks import write_notebook

STDLIB = sys.stdlib_module_names


def _files(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")


def test_path_expressions_are_followed_as_python_would(tmp_path: Path) -> None:
    _files(tmp_path, "data/a.csv", "data/raw/b.csv", "tables/t.json", "img/p.png", "notes.txt", "cfg/c.yml",
           "assigned/v.csv", "globbed/g1.csv", "globbed/g2.csv", "joined/j.txt")
    nb = write_notebook(
        tmp_path / "nb.ipynb",
        "import pandas as pd\ndf = pd.read_csv('data/a.csv')",
        "name = 'b'\nraw = open(f'data/raw/{name}.csv')",
        "from pathlib import Path\nimport json\njson.load(open(Path('tables') / 't.json'))",
        "Image.open(Path.cwd() / 'img' / 'p.png')\nPath('notes.txt').read_text()",
        "import os\nyaml.safe_load(open(os.path.join('cfg', 'c.yml')))",
        "SRC = 'assigned/v.csv'\nnp.loadtxt(SRC)",
        "import glob\nfiles = glob.glob('globbed/*.csv')\nos.listdir('joined')",
        "print('hello world')\nrequests.get('https://example.com/data.csv')",
    )
    found = scan_notebook(nb, STDLIB)
    # files in the notebook's folder are mounted alone: that folder stays the job's writable working folder
    assert found.data_paths == ("assigned", "cfg", "data", "globbed", "img", "joined", "notes.txt", "tables")
    why = dict(found.why)
    assert why["data"] == "read by cell 1" and why["notes.txt"] == "read by cell 4"


def test_what_the_notebook_writes_is_not_mounted(tmp_path: Path) -> None:
    _files(tmp_path, "data/in.csv", "out.dat", "models/old.pt", "figs/f.png", "both/read.csv", "both/keep.csv")
    nb = write_notebook(
        tmp_path / "nb.ipynb",
        "x = np.loadtxt('data/in.csv')\nnp.savetxt('out.dat', x)\ntorch.save(m, 'models/old.pt')",
        "plt.savefig('figs/f.png')\nopen('out.dat').read()",
        "pd.read_csv('both/read.csv')\nwith open('both/new.csv', 'w') as f:\n    f.write('1')",
        "shutil.copy('both/keep.csv', 'copied.csv')",
    )
    found = scan_notebook(nb, STDLIB)
    # out.dat is written (then read): not mounted; both/ is written into: its read files are mounted one by one
    assert found.data_paths == ("both/keep.csv", "both/read.csv", "data")


def test_os_chdir_and_cd_move_the_working_folder(tmp_path: Path) -> None:
    _files(tmp_path, "project/data/d.csv", "project/notebooks/x.txt")
    nb = write_notebook(tmp_path / "project" / "notebooks" / "nb.ipynb",
                        "open('x.txt')", "%cd ..", "open('data/d.csv')", "import os\nos.chdir('notebooks')")
    assert scan_notebook(nb, STDLIB).data_paths == ("../data", "x.txt")


@pytest.mark.parametrize("cell", [
    "import sys\nsys.path.append('../src')",
    "import sys\nsys.path.insert(0, '../src')",
    "import sys, os\nsys.path.insert(0, os.path.abspath(os.path.join('..', 'src')))",
    "import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path.cwd().parent / 'src'))",
    "import sys\nfrom pathlib import Path\nsys.path.append(str(Path('..').resolve() / 'src'))",
    "import sys\nsys.path += ['../src']",
    "import sys\nsys.path.extend(['../src'])",
    "import sys\nsys.path = ['../src'] + sys.path",
])
def test_sys_path_edits_find_local_code(tmp_path: Path, cell: str) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("from pkg.inner import f\n")
    (tmp_path / "src" / "pkg" / "inner.py").write_text("import util\nimport yaml\n")
    (tmp_path / "src" / "util.py").write_text("import numpy\n")
    nb = write_notebook(tmp_path / "notebooks" / "nb.ipynb", cell, "import pkg")
    found = scan_notebook(nb, STDLIB)
    assert found.local_modules == ("../src/pkg", "../src/util.py")
    assert found.modules == ("numpy", "yaml")  # the local code's own imports, two levels down
    assert found.search_folders == (".", "../src")
    assert found.data_paths == ()  # a folder to import from is not data


def test_run_and_load_targets_are_local_code(tmp_path: Path) -> None:
    (tmp_path / "setup_vars.py").write_text("import scipy\nX = 1\n")
    (tmp_path / "plots.py").write_text("import seaborn\n")
    write_notebook(tmp_path / "other.ipynb", "import sympy\nY = 2")
    nb = write_notebook(tmp_path / "nb.ipynb", "%run setup_vars.py\n%run -i other.ipynb", "%load plots.py",
                        "%run -m timeit -n 1 pass", "%run missing.py")
    found = scan_notebook(nb, STDLIB)
    assert found.local_modules == ("other.ipynb", "plots.py", "setup_vars.py")
    assert set(found.modules) == {"nbformat", "scipy", "seaborn", "sympy"}  # %run of a notebook needs nbformat
    assert dict(found.why)["other.ipynb"] == "%run in cell 1"


def test_mount_units_never_take_the_working_folder_whole(tmp_path: Path) -> None:
    _files(tmp_path, "a.csv", "sub/b.csv", "sub/deep/c.csv")
    units = mount_units([tmp_path / "a.csv", tmp_path / "sub" / "deep" / "c.csv", tmp_path / "sub" / "b.csv"],
                        [], tmp_path)
    assert units == [tmp_path / "a.csv", tmp_path / "sub"]
    assert mount_units([tmp_path / "sub" / "b.csv"], [tmp_path / "sub" / "b.csv"], tmp_path) == []
    assert mount_units([tmp_path / "sub" / "b.csv"], [], tmp_path, keep_out=[tmp_path / "sub"]) == []


def test_the_notebooks_folder_keeps_its_place_under_work() -> None:
    assert notebook_folder(Path("/home/u/proj/notebooks/nb.ipynb"), ["data", "helper.py"]) == ""
    assert notebook_folder(Path("/home/u/proj/notebooks/nb.ipynb"), ["../src/pkg", "data"]) == "notebooks"
    assert notebook_folder(Path("/home/u/proj/a/b/nb.ipynb"), ["../../lib.py", "../x"]) == "a/b"
    assert in_work("notebooks", "../src/pkg") == "src/pkg" and in_work("", "data/x.csv") == "data/x.csv"
    with pytest.raises(ValueError):
        notebook_folder(Path("/nb/nb.ipynb"), ["../../etc"])


def test_the_live_kernel_shows_where_it_found_local_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_containerize.capture import capture

    src = tmp_path / "src"
    src.mkdir()
    (src / "kernel_only_mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(src))  # as PYTHONPATH or a computed sys.path edit would
    monkeypatch.delitem(sys.modules, "kernel_only_mod", raising=False)
    __import__("kernel_only_mod")
    nb = write_notebook(tmp_path / "notebooks" / "nb.ipynb", "import kernel_only_mod")
    snap = capture(nb, in_process=True)
    assert "../src/kernel_only_mod.py" in snap.local_modules
    assert snap.notebook_folder == "notebooks"


def test_a_module_name_built_at_run_time_finds_its_local_package(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    (tmp_path / "plugins" / "alpha.py").write_text("import toolz\n")
    nb = write_notebook(tmp_path / "nb.ipynb", "import importlib\nfor name in ['alpha']:\n"
                        "    importlib.import_module('plugins.' + name)\n    importlib.import_module(f'plugins.{name}')")
    found = scan_notebook(nb, STDLIB)
    assert found.local_modules == ("plugins",) and found.modules == ("toolz",)


def test_expressions_it_cannot_follow_are_left_alone(tmp_path: Path) -> None:
    _files(tmp_path, "data/a.csv")
    nb = write_notebook(tmp_path / "nb.ipynb",
                        "from pathlib import Path\nroot = Path.cwd().parents[99]\nup = Path.cwd().parents[0]",
                        "x = open(Path.cwd().parents[-1] / 'a.csv')\nopen(f'{root}/data/a.csv')\nopen(2)",
                        "import sys\nsys.path.append(some_call())\nopen('data/a.csv')")
    found = scan_notebook(nb, STDLIB)
    assert found.data_paths == ("data",) and found.search_folders == (".",)
