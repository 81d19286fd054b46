"""papermill itself and ``jupyter containerize run`` on the same notebooks (issue 18): what a papermill user sees.

Each notebook is written the way people write them (a markdown title, a ``parameters`` cell with comments,
imports, a check that fails…) and run twice: by papermill's CLI (``python -m papermill IN OUT -p …`` in a new
process, on this interpreter's ``python3`` kernel) and by ``jupyter containerize run IN -p …`` on the real
engine. One module fixture runs every papermill run and every job once, side by side; the tests then compare
exit codes, the injected cell (source, place, tags), the notebook's and each cell's ``metadata.papermill``,
papermill's error-marker cells, the values the notebook saw, and scrapbook's reading of both outputs.

Where a job differs from papermill on purpose, the tests check the difference rather than hide it. In the
record (``jupyter_containerize/papermill_record.py`` lists them): ``input_path``/``output_path`` are the paths
in the container; ``default_parameters`` holds the parameters cell's literal defaults (papermill's stays
empty); no ``version`` key; no empty ``tags`` added to untagged cells. In the injected cell: a string is
written as ``repr`` writes it (papermill writes ``"…"``, escaped; the value is the same). Before the run
(README, "Parameters"; ``parameters_check.py``): a value is coerced to its parameters-cell default's type;
a name the parameters cell does not set is refused (papermill warns and injects it); parameters without a
``parameters`` cell are refused unless ``--inject-top``; a value no cell can receive (a set, bytes, a
complex) is refused (papermill crashes on it or garbles it).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import nbformat
import pytest

from jupyter_containerize.errors import OptionError
from jupyter_containerize.options import parse
from jupyter_containerize.papermill_record import output_notebook_name
from tests.support.cli import assert_one_clear_error, cli, store_rows
from tests.support.venvs import make_venv

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

MARKER_TAG = "papermill-error-cell-tag"
INJECTED_TAG = "injected-parameters"
Cell = tuple[str, str, tuple[str, ...]]  # kind ("code" or "markdown"), source, tags


def code(source: str, *tags: str) -> Cell:
    return ("code", source, tags)


def md(source: str) -> Cell:
    return ("markdown", source, ())


@dataclass(frozen=True)
class Case:
    """A notebook, the parameter flags papermill and the tool both get, and how both runs end."""

    cells: tuple[Cell, ...]
    flags: tuple[str, ...] = ()
    exit_code: int = 0
    tool_flags: tuple[str, ...] = ()  # flags only the tool takes (its way where papermill has no flag)
    injected_at: int | None = None  # where the injected cell lands in both outputs (None: no injection)
    files: dict[str, str] = field(default_factory=dict)  # beside the notebook (a -f file)


# -- the values: papermill's typing of `-p NAME VALUE`, and its other forms -----------------------------------
PAPERMILL_TYPED = {  # name -> the text after -p NAME
    "leading_zero": "01", "hex": "0x10", "nan": "nan", "quoted": "'5'", "list_text": "[1, 2]", "commas": "1,2",
    "huge": "1e999", "minus_huge": "-1e999", "lower_true": "true", "true": "True", "none": "None",
    "underscores": "1_000", "negative": "-7", "spaced": " 8 ", "decimal": "2.50", "exponent": "1e3", "empty": "",
    "accented": "café", "double_quotes": 'say "hi"', "backslash": "C:\\temp", "newline": "a\nb",
    "arabic_digits": "\u0661\u0662", "complex_text": "1+2j",
}
COERCED = {  # a typed default in the parameters cell: name -> (default, -p text, papermill's value, the tool's)
    "lr": ("0.01", "1", 1, 1.0),
    "layers": ("[64]", "1,2", "1,2", [1, 2]),
    "verbose": ("False", "true", "true", True),
}
OTHER_FORMS = ("-r", "raw", "007", "-y", "ymap: {a: 1, b: [x, 2.5]}", "-y", "yoct: 010", "-y", "yes_word: yes",
               "-y", "override: 1", "-f", "params.yaml", "-p", "override", "2")
PARAMS_YAML = "from_file: [1, null, text]\nfile_exponent: 1e-3\n"  # YAML 1.1: 1e-3 (no dot) is a string
VALUE_NAMES = [*PAPERMILL_TYPED, *COERCED, "raw", "ymap", "yoct", "yes_word", "override", "from_file",
               "file_exponent"]


def _values_case() -> Case:
    defaults = "\n".join(f"{n} = {COERCED[n][0]}" if n in COERCED else f"{n} = None" for n in VALUE_NAMES)
    flags = [arg for name, text in PAPERMILL_TYPED.items() for arg in ("-p", name, text)]
    flags += [arg for name, (_, text, _, _) in COERCED.items() for arg in ("-p", name, text)]
    probe = ("import json\n"
             f"names = {VALUE_NAMES!r}\n"
             "print(json.dumps({n: [type(globals()[n]).__name__, repr(globals()[n])] for n in names}))")
    return Case(cells=(md("# Every way to pass a value"), code("# defaults\n" + defaults, "parameters"), code(probe)),
                flags=(*flags, *OTHER_FORMS), injected_at=2, files={"params.yaml": PARAMS_YAML})


FAILING_TAIL = (code("print('never reached')"), md("## After"))
CASES: dict[str, Case] = {
    "simple": Case(
        cells=(md("# Train a small model"),
               code('# Parameters\nalpha = 0.1  # learning rate\nepochs = 3\nname = "baseline"', "parameters"),
               code("import json\nprint(json.dumps({'alpha': alpha, 'epochs': epochs, 'name': name}))"),
               md("## Results")),
        flags=("-p", "alpha", "0.5", "-p", "epochs", "10", "-p", "name", "adam"), injected_at=2),
    "two_cells": Case(
        cells=(md("# Two parameters cells"), code('data = "train.csv"', "parameters"), code("print('data', data)"),
               md("More knobs, tagged too:"), code("seed = 0", "parameters"), code("print('seed', seed)")),
        flags=("-p", "data", "valid.csv"), injected_at=2),  # after the FIRST parameters cell
    "stale": Case(  # the output of an earlier, failed papermill run (see _stale_notebook), run again
        cells=(md("# Check n"), code("n = 1  # must be positive", "parameters"),
               code("assert n > 0, f'n must be positive, got {n}'"), code("print('n is', n)")),
        flags=("-p", "n", "5"), injected_at=3),  # where the stale injected cell is, after the user's note
    "no_parameters_cell": Case(
        cells=(md("# Report"), code("import json"), code("print(json.dumps({'region': region, 'year': year}))")),
        flags=("-p", "region", "eu", "-p", "year", "2024"), tool_flags=("--inject-top",), injected_at=0),
    "failing": Case(
        cells=(md("# Validate the data"), code("rows = 100  # expected row count", "parameters"),
               code("import math\nprint('checking', rows, 'rows')"),
               code("if rows > 50:\n    raise ValueError(f'too many rows: {rows}')"), *FAILING_TAIL),
        flags=("-p", "rows", "500"), exit_code=1, injected_at=3),  # below the error marker on top
    "sys_exit_0": Case(cells=(code("import sys\nprint('stopping early')"), code("sys.exit(0)"), *FAILING_TAIL)),
    "sys_exit_1": Case(cells=(code("import sys\nprint('giving up')"), code("sys.exit(1)"), *FAILING_TAIL),
                       exit_code=1),
    "keyboard_interrupt": Case(cells=(code("print('working')"), code("raise KeyboardInterrupt"), *FAILING_TAIL),
                               exit_code=1),
    "values": _values_case(),
    "scraps": Case(
        cells=(code('accuracy = 0.5\nepochs = 1\nmodel = "linear"', "parameters"), code("import scrapbook as sb"),
               code('sb.glue("accuracy", accuracy)\nsb.glue("summary", {"epochs": epochs, "model": model})')),
        flags=("-p", "accuracy", "0.9", "-p", "epochs", "3", "-p", "model", "tree"), injected_at=1),
}
FAILED = [name for name, case in CASES.items() if case.exit_code != 0]
INJECTED = [name for name, case in CASES.items() if case.injected_at is not None]


# -- running both ---------------------------------------------------------------------------------------------
@dataclass
class Ran:
    """One run: its exit code, what it printed, its output notebook."""

    code: int
    output: str
    notebook: Any


@dataclass
class Pair:
    papermill: Ran
    tool: Ran
    job_id: str
    papermill_path: Path  # papermill's output notebook
    tool_path: Path  # the job's output notebook
    store: Path  # the job store the job is in


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:  # a failure, never a skip: the test extra installs it
        pytest.fail(f"{module} is not installed in this environment (pip install -e '.[test]')", pytrace=False)


def _papermill(folder: Path, notebook: str, out: Path, *flags: str, prepare_only: bool = False) -> Ran:
    """papermill's CLI in a new process, as a user runs it (input path relative to its folder)."""
    argv = [sys.executable, "-m", "papermill", notebook, str(out), *flags, *(["--prepare-only"] * prepare_only)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JC_")}
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Ran(proc.returncode, proc.stdout + proc.stderr, _read(out))


def _read(path: Path) -> Any:
    return nbformat.read(str(path), as_version=4) if path.exists() else None


def _write(path: Path, cells: tuple[Cell, ...]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _stale_notebook(folder: Path) -> Path:
    """An earlier papermill run that failed (``-p n -1``): its injected cell, error markers, error output and
    record; then the user added a note between the parameters cell and the injected one."""
    source = _write(folder / "earlier" / "stale.ipynb", CASES["stale"].cells)
    target = folder / "stale.ipynb"
    earlier = _papermill(source.parent, source.name, target, "-p", "n", "-1")
    assert earlier.code == 1 and earlier.notebook is not None, earlier.output[-3000:]
    nb = earlier.notebook
    assert [_tags(c) for c in nb.cells].count([MARKER_TAG]) == 2 and _injected(nb) == [3], _tags_of(nb)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in _tags(c))
    nb.cells.insert(at + 1, nbformat.v4.new_markdown_cell("Note: n = -1 failed the check below."))
    nbformat.write(nb, str(target))
    return target


def _job(folder: Path, name: str, store: Path, case: Case) -> tuple[Ran, str, Path]:
    """``jupyter containerize run`` in a new process; the job's output notebook."""
    done = cli("run", f"{name}.ipynb", *case.flags, *case.tool_flags, cwd=folder, store=store, timeout=900)
    first = done.stdout.split()
    job_id = first[1] if first[:1] == ["job"] else ""
    out = folder / f"{name}.jc-jobs" / job_id / output_notebook_name(f"{name}.ipynb", job_id)  # <name>.<job id>.ipynb
    return Ran(done.returncode, done.stdout + done.stderr, _read(out) if job_id else None), job_id, out


@pytest.fixture(scope="module")
def runs(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """Every case run once by papermill and once as a job, two jobs and two papermill runs at a time (the
    jobs share the engine's build cache). The slowest build (scrapbook's kernel) goes first."""
    for module in ("papermill", "scrapbook"):
        _require(module)
    root = tmp_path_factory.mktemp("papermill-compat")
    store = root / "jobs.sqlite"
    (root / "papermill").mkdir()  # papermill's outputs (it creates no folder)
    order = sorted(CASES, key=lambda name: name != "scraps")
    with ThreadPoolExecutor(max_workers=2) as jobs, ThreadPoolExecutor(max_workers=2) as papermills:
        # first in the papermill queue, so no task waiting on them can hold both workers
        kernel = papermills.submit(make_venv, root / "scraps-kernel", "ipykernel", "scrapbook", "six")
        stale = papermills.submit(_stale_notebook, root / "stale")
        for name in order:
            if name != "stale":
                _write(root / name / f"{name}.ipynb", CASES[name].cells)
            for file, text in CASES[name].files.items():
                (root / name / file).write_text(text)

        def job(name: str) -> tuple[Ran, str, Path]:
            case = CASES[name]
            if name == "stale":
                stale.result()
            if name == "scraps":  # scrapbook 0.5 imports six without requiring it: the whole kernel venv
                case = Case(case.cells, case.flags, tool_flags=("--python", str(kernel.result()), "--freeze", "all"))
            return _job(root / name, name, store, case)

        def papermill(name: str) -> Ran:
            if name == "stale":
                stale.result()
            return _papermill(root / name, f"{name}.ipynb", root / "papermill" / f"{name}.ipynb", *CASES[name].flags)

        started = {name: (jobs.submit(job, name), papermills.submit(papermill, name)) for name in order}
        pairs = {}
        for name, (tool_run, papermill_run) in started.items():
            tool, job_id, tool_path = tool_run.result()
            pairs[name] = Pair(papermill_run.result(), tool, job_id, root / "papermill" / f"{name}.ipynb", tool_path,
                               store)
    return pairs


@pytest.fixture(scope="module")
def papermill_version() -> str:
    return importlib.metadata.version("papermill")


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags") or [])  # papermill adds `tags: []` to every cell; no job does


def _tags_of(nb: Any) -> list[list[str]]:
    return [_tags(c) for c in nb.cells]


def _injected(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if INJECTED_TAG in _tags(c)]


def _markers(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if MARKER_TAG in _tags(c)]


def _both(pair: Pair) -> tuple[Any, Any]:
    assert pair.papermill.notebook is not None, pair.papermill.output[-3000:]
    assert pair.tool.notebook is not None, pair.tool.output[-3000:]
    return pair.papermill.notebook, pair.tool.notebook


def _canon(value: Any) -> str:
    """One text per value: 1 and 1.0, True and 1 stay apart, nan equals nan."""
    return json.dumps(value, sort_keys=True)


_NON_FINITE = {"float('nan')": math.nan, "float('inf')": math.inf, "float('-inf')": -math.inf}


def _value_of(text: str) -> Any:
    return _NON_FINITE[text] if text in _NON_FINITE else ast.literal_eval(text)


def _assignments(source: str) -> list[tuple[str, str]]:
    """The injected cell's ``name = value`` lines (after its ``# Parameters`` comment)."""
    lines = source.splitlines()
    assert lines[0] == "# Parameters", source
    return [(name, text) for name, _, text in (line.partition(" = ") for line in lines[1:])]


def _has_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, dict):
        return any(_has_text(k) or _has_text(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_text(v) for v in value)


def _failing_index(nb: Any) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("papermill", {}).get("status") == "failed")


# -- exit codes and papermill's record --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_exit_codes_are_papermills(runs: dict[str, Pair], name: str) -> None:
    pair = runs[name]
    expected = CASES[name].exit_code
    assert pair.papermill.code == expected, pair.papermill.output[-3000:]
    assert pair.tool.code == expected, pair.tool.output[-3000:]
    assert pair.job_id, pair.tool.output
    status = dict(store_rows(pair.store))[pair.job_id]
    assert status == ("succeeded" if expected == 0 else "failed")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_notebooks_record_is_papermills(runs: dict[str, Pair], name: str, papermill_version: str) -> None:
    papermill_nb, tool_nb = _both(runs[name])
    pm, jc = dict(papermill_nb.metadata["papermill"]), dict(tool_nb.metadata["papermill"])
    assert set(jc) == set(pm) - {"version"}  # no papermill ran the job: no version of it to write
    assert pm["version"] == papermill_version and "version" not in jc
    assert jc["exception"] is pm["exception"] is (True if CASES[name].exit_code or name == "sys_exit_0" else None)
    assert jc["environment_variables"] == pm["environment_variables"] == {}
    if name != "values":  # the values case compares its parameters one by one, coercions included
        assert _canon(jc["parameters"]) == _canon(pm["parameters"])
    assert list(jc["parameters"]) == list(pm["parameters"])  # in papermill's order
    for record in (pm, jc):
        start, end = datetime.fromisoformat(record["start_time"]), datetime.fromisoformat(record["end_time"])
        assert start.tzinfo is not None and end >= start, record
        assert isinstance(record["duration"], float) and abs((end - start).total_seconds() - record["duration"]) < 1
    # where a job differs on purpose: paths in the container, the parameters cell's defaults
    assert pm["input_path"] == f"{name}.ipynb" and pm["output_path"] == str(runs[name].papermill_path)
    assert PurePosixPath(jc["input_path"]).name == f"{name}.ipynb" and jc["input_path"].startswith("/work/")
    assert jc["output_path"] == f"/output/{name}.{runs[name].job_id}.ipynb"
    assert pm["default_parameters"] == {}
    cell = next((c for c in tool_nb.cells if "parameters" in _tags(c)), None)
    assert _canon(jc["default_parameters"]) == _canon({} if cell is None else _literals(cell.source))


def _literals(source: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cells_record_is_papermills(runs: dict[str, Pair], name: str) -> None:
    papermill_nb, tool_nb = _both(runs[name])
    assert [c.cell_type for c in tool_nb.cells] == [c.cell_type for c in papermill_nb.cells]
    for index, (pm_cell, jc_cell) in enumerate(zip(papermill_nb.cells, tool_nb.cells, strict=True)):
        where = f"cell {index}: {pm_cell.source[:40]!r}"
        assert _tags(jc_cell) == _tags(pm_cell), where
        pm, jc = pm_cell.metadata.get("papermill"), jc_cell.metadata.get("papermill")
        if MARKER_TAG in _tags(pm_cell):
            assert pm is None and jc is None, where  # error markers carry no record
            continue
        assert pm is not None and jc is not None, where
        assert set(jc) == set(pm) == {"exception", "status", "start_time", "end_time", "duration"}, where
        assert (jc["status"], jc["exception"]) == (pm["status"], pm["exception"]), where
        for key, kind in (("start_time", str), ("end_time", str), ("duration", float)):
            assert type(jc[key]) is type(pm[key]), (where, key, jc, pm)
            assert pm[key] is None or isinstance(pm[key], kind), (where, key)
        if jc_cell.cell_type == "code":
            assert jc_cell.execution_count == pm_cell.execution_count, where
            assert [o.output_type for o in jc_cell.outputs] == [o.output_type for o in pm_cell.outputs], where
            assert [o.get("ename") for o in jc_cell.outputs] == [o.get("ename") for o in pm_cell.outputs], where
    statuses = [(c.metadata.get("papermill") or {}).get("status") for c in tool_nb.cells]
    if CASES[name].exit_code or name == "sys_exit_0":  # the cells after the one that stopped the run: pending
        stop = _failing_index(tool_nb)
        assert set(statuses[stop + 1:]) == {"pending"} and statuses[stop] == "failed", statuses
    else:
        assert set(statuses) == {"completed"}, statuses


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_markers_are_papermills(runs: dict[str, Pair], name: str) -> None:
    papermill_nb, tool_nb = _both(runs[name])
    assert _markers(tool_nb) == _markers(papermill_nb)
    assert [tool_nb.cells[i].source for i in _markers(tool_nb)] == [papermill_nb.cells[i].source
                                                                     for i in _markers(papermill_nb)]
    if name in FAILED:
        failing = _failing_index(tool_nb)
        assert _markers(tool_nb) == [0, failing - 1]  # one on top, one right above the failing cell
        assert f"In [{tool_nb.cells[failing].execution_count}]" in tool_nb.cells[0].source
        assert 'id="papermill-error-cell"' in tool_nb.cells[failing - 1].source
    else:
        assert _markers(tool_nb) == []  # sys.exit(0) stops the run without markers, in papermill too


# -- the injected cell ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", INJECTED)
def test_the_injected_cell_is_papermills(runs: dict[str, Pair], name: str) -> None:
    papermill_nb, tool_nb = _both(runs[name])
    at = CASES[name].injected_at
    assert _injected(papermill_nb) == _injected(tool_nb) == [at]
    pm_cell, jc_cell = papermill_nb.cells[at], tool_nb.cells[at]
    assert pm_cell.cell_type == jc_cell.cell_type == "code"
    assert _tags(jc_cell) == _tags(pm_cell) == [INJECTED_TAG]
    pm_lines, jc_lines = _assignments(pm_cell.source), _assignments(jc_cell.source)
    assert [n for n, _ in jc_lines] == [n for n, _ in pm_lines]  # the same names in the same order
    for (param, pm_text), (_, jc_text) in zip(pm_lines, jc_lines, strict=True):
        pm_value, jc_value = _value_of(pm_text), _value_of(jc_text)
        if param in COERCED and name == "values":
            continue  # test_values_are_typed_as_papermill_types_them
        assert _canon(jc_value) == _canon(pm_value), (param, pm_text, jc_text)
        if _has_text(pm_value):  # the tool writes repr's quotes; papermill writes "…", escaped
            assert jc_text == repr(jc_value) and '"' in pm_text, (param, pm_text, jc_text)
        else:
            assert jc_text == pm_text, param


def test_parameters_go_after_the_first_of_two_parameters_cells(runs: dict[str, Pair]) -> None:
    papermill_nb, tool_nb = _both(runs["two_cells"])
    for nb in (papermill_nb, tool_nb):
        assert [i for i, t in enumerate(_tags_of(nb)) if "parameters" in t] == [1, 5]  # both still there
        printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert printed == "data valid.csv\nseed 0\n"


def test_a_stale_injected_cell_is_replaced_where_it_is(runs: dict[str, Pair]) -> None:
    """The earlier run's injected cell sits after the user's note, not right after the parameters cell:
    it is replaced there; its error markers and outputs are gone; the new value passes the check."""
    earlier = nbformat.read(str(runs["stale"].tool_path.parents[2] / "stale.ipynb"), as_version=4)
    assert _markers(earlier) and earlier.metadata["papermill"]["exception"] is True
    assert [earlier.cells[i].source for i in _injected(earlier)] == ["# Parameters\nn = -1\n"]
    papermill_nb, tool_nb = _both(runs["stale"])
    for nb in (papermill_nb, tool_nb):
        assert [c.source for c in nb.cells][:4] == ["# Check n", "n = 1  # must be positive",
                                                   "Note: n = -1 failed the check below.", "# Parameters\nn = 5\n"]
        assert _markers(nb) == [] and len(nb.cells) == len(earlier.cells) - 2
        assert [o.get("text") for o in nb.cells[-1].outputs] == ["n is 5\n"]
        assert all(o.output_type != "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert tool_nb.metadata["papermill"]["parameters"] == papermill_nb.metadata["papermill"]["parameters"] == {"n": 5}


def test_without_a_parameters_cell_the_tool_refuses_unless_inject_top(runs: dict[str, Pair], tmp_path: Path) -> None:
    """papermill warns and injects at the top; the tool says so in one sentence, and does papermill's thing
    with --inject-top (the job of the module fixture)."""
    pair = runs["no_parameters_cell"]
    assert "does not contain a cell with tag 'parameters'" in pair.papermill.output
    for nb in _both(pair):
        assert _injected(nb) == [0]
        printed = [o.get("text") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert printed == ['{"region": "eu", "year": 2024}\n']
    folder = pair.tool_path.parents[2]
    store = tmp_path / "refused.sqlite"
    refused = cli("run", "no_parameters_cell.ipynb", *CASES["no_parameters_cell"].flags, cwd=folder, store=store)
    assert_one_clear_error(refused, "no cell tagged 'parameters'", "--inject-top")
    assert store_rows(store) == []
    assert [p.name for p in (folder / "no_parameters_cell.jc-jobs").iterdir()] == [pair.job_id]  # no other job


def test_a_name_the_parameters_cell_does_not_set_is_refused_where_papermill_warns(runs: dict[str, Pair],
                                                                                  tmp_path: Path) -> None:
    folder = runs["simple"].tool_path.parents[2]
    warned = _papermill(folder, "simple.ipynb", tmp_path / "typo.ipynb", "-p", "alpah", "0.5", prepare_only=True)
    assert warned.code == 0 and "Passed unknown parameter: alpah" in warned.output, warned.output
    assert "alpah = 0.5" in warned.notebook.cells[2].source  # injected all the same: alpha keeps its default
    store = tmp_path / "typo.sqlite"
    refused = cli("run", "simple.ipynb", "-p", "alpah", "0.5", cwd=folder, store=store)
    assert_one_clear_error(refused, "no parameter alpah", "did you mean alpha")
    assert store_rows(store) == []


# -- values -----------------------------------------------------------------------------------------------------
def _seen(nb: Any) -> dict[str, list[str]]:
    """What the probe cell printed: name -> [type name, repr] as the notebook saw it."""
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    seen: dict[str, list[str]] = json.loads(text)
    return seen


def test_values_are_typed_as_papermill_types_them(runs: dict[str, Pair]) -> None:
    """``-p NAME VALUE`` (papermill's typing: True/False/None, int(), float(), else the text), ``-r``, ``-y``
    and ``-f``, merged in papermill's order: the notebook sees the same values, the record holds the same
    parameters. A typed default coerces the value in a job (parameters_check.py), never in papermill."""
    papermill_nb, tool_nb = _both(runs["values"])
    pm_seen, jc_seen = _seen(papermill_nb), _seen(tool_nb)
    assert set(pm_seen) == set(jc_seen) == set(VALUE_NAMES)
    pm_record, jc_record = papermill_nb.metadata["papermill"]["parameters"], tool_nb.metadata["papermill"]["parameters"]
    for name in VALUE_NAMES:
        if name in COERCED:
            _, _, papermill_value, tool_value = COERCED[name]
            assert pm_seen[name] == [type(papermill_value).__name__, repr(papermill_value)], name
            assert jc_seen[name] == [type(tool_value).__name__, repr(tool_value)], name
            assert (_canon(pm_record[name]), _canon(jc_record[name])) == (_canon(papermill_value), _canon(tool_value))
        else:
            assert jc_seen[name] == pm_seen[name], name
            assert _canon(jc_record[name]) == _canon(pm_record[name]), name
    assert pm_seen["leading_zero"] == ["int", "1"] and pm_seen["hex"] == ["str", "'0x10'"]
    assert pm_seen["nan"] == ["float", "nan"] and pm_seen["huge"] == ["float", "inf"]
    assert pm_seen["quoted"] == ["str", "\"'5'\""] and pm_seen["list_text"] == ["str", "'[1, 2]'"]
    assert pm_seen["commas"] == ["str", "'1,2'"] and pm_seen["lower_true"] == ["str", "'true'"]
    assert pm_seen["complex_text"] == ["str", "'1+2j'"]  # papermill's -p never makes a complex
    assert pm_seen["override"] == ["int", "2"] and pm_seen["file_exponent"] == ["str", "'1e-3'"]


def test_a_yaml_date_is_text_as_in_papermill(tmp_path: Path) -> None:
    """papermill reads -y/-f without YAML's timestamps (its NoDatesSafeLoader): ``day: 2024-01-31`` is text;
    so does the tool."""
    nb = _write(tmp_path / "dates.ipynb", (code("day = None", "parameters"), code("print(repr(day))")))
    prepared = _papermill(tmp_path, nb.name, tmp_path / "out.ipynb", "-y", "day: 2024-01-31", prepare_only=True)
    assert prepared.code == 0, prepared.output
    assert prepared.notebook.metadata["papermill"]["parameters"] == {"day": "2024-01-31"}
    spec = parse(["run", str(nb), "-y", "day: 2024-01-31", "-y", "at: 2024-01-31T10:00:00"]).spec
    assert spec is not None and spec.parameters == {"day": "2024-01-31", "at": "2024-01-31T10:00:00"}


@pytest.mark.parametrize(("flags", "papermill_did"), [
    (("-y", "{x: !!set {1, 2}}"), "crashed"),  # a set in its record cannot be written as JSON
    (("-y", "x: !!binary aGk="), "garbled"),  # bytes injected as the text "b'hi'"
], ids=["yaml-set", "yaml-bytes"])
def test_papermill_cannot_pass_what_the_tool_refuses(tmp_path: Path, flags: tuple[str, ...], papermill_did: str) -> None:
    """The values the tool refuses before any build (tests/reliability/test_bad_input.py checks the refusal:
    exit 2, one sentence, no job, no image, no container) are those papermill cannot pass either."""
    nb = _write(tmp_path / "odd.ipynb", (code("x = None", "parameters"), code("print(repr(x))")))
    prepared = _papermill(tmp_path, nb.name, tmp_path / "out.ipynb", *flags, prepare_only=True)
    if papermill_did == "crashed":
        assert prepared.code == 1 and "Traceback" in prepared.output and "not JSON serializable" in prepared.output
    else:
        assert prepared.code == 0 and "x = \"b'hi'\"" in prepared.notebook.cells[1].source
    with pytest.raises(OptionError, match="cannot be passed to the notebook"):
        parse(["run", str(nb), *flags])


# -- scrapbook ----------------------------------------------------------------------------------------------------
def test_scrapbook_reads_a_jobs_scraps_and_parameters_as_papermills(runs: dict[str, Pair]) -> None:
    sb: Any = importlib.import_module("scrapbook")
    pair = runs["scraps"]
    _both(pair)
    tool_book, papermill_book = sb.read_notebook(str(pair.tool_path)), sb.read_notebook(str(pair.papermill_path))
    assert tool_book.scraps["accuracy"].data == 0.9
    assert tool_book.scraps["summary"].data == {"epochs": 3, "model": "tree"}
    assert tool_book.parameters == {"accuracy": 0.9, "epochs": 3, "model": "tree"}
    assert {n: (s.data, s.encoder) for n, s in tool_book.scraps.items()} == {
        n: (s.data, s.encoder) for n, s in papermill_book.scraps.items()}
    assert tool_book.parameters == papermill_book.parameters
    assert list(tool_book.metrics["cell"]) == list(papermill_book.metrics["cell"])  # cell timings, from the record
    assert [t is None for t in tool_book.cell_timing] == [t is None for t in papermill_book.cell_timing]
