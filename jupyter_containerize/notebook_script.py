"""Notebook → ``train.py``: a plain Python script whose parameters cell became argparse flags.

Cells run in order at module level, as in the notebook. IPython syntax becomes plain
Python or a comment saying what was dropped: ``%%time``/``%%capture`` keep their body,
other cell magics (``%%bash``, ``%%writefile`` …) are commented out, line magics and
``!shell`` lines become ``pass  # dropped …``. The result is checked with ``ast.parse``;
a cell that still does not parse is commented out whole.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from .notebook_file import read_notebook
from .parameters_cell import assignments, parameters_cell_index

_KEEP_BODY_CELL_MAGICS = ("time", "capture", "timeit", "prun")
_IPY_LINE = re.compile(r"^(\s*)(%|!|\w[\w.]*\s*=\s*[!%])")
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?{1,2}\s*$")

PREAMBLE = '''\
import argparse
import ast
import os
import sys

if os.path.isdir("/opt/jc/shim"):  # jupyter_containerize.log_metric inside the image
    sys.path.append("/opt/jc/shim")
try:
    from IPython.display import display
except ImportError:  # not needed to run the script
    display = print


def _literal(text):
    """A flag value as a Python literal when it is one, else the string itself (papermill's rule)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _flag_bool(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean")

'''


def parameters_of(source: str) -> dict[str, Any]:
    """``name = literal`` assignments of a parameters cell (others are left as code)."""
    return {a.name: a.value for a in assignments(source) if a.kind != "expression"}


def plain_python(source: str) -> str:
    """Cell source with IPython syntax turned into plain Python (or comments)."""
    if _is_python(source):
        return source  # never rewrite valid Python (a "%d" line inside a string stays)
    lines = source.splitlines()
    first = lines[0].strip()
    if first.startswith("%%"):
        magic = first[2:].split()[0] if first[2:].split() else ""
        if magic in _KEEP_BODY_CELL_MAGICS:
            lines = [f"# dropped IPython cell magic: {first}", *lines[1:]]
        else:
            return "\n".join(f"# {line}" if line else "#" for line in
                             [f"dropped IPython cell magic %%{magic} (not plain Python):", *lines])
    out = []
    for line in lines:
        m = _IPY_LINE.match(line) or _HELP_LINE.match(line)
        if m and not _is_python(line.strip() or "pass"):
            out.append(f"{m.group(1)}pass  # dropped IPython: {line.strip()}")
        else:
            out.append(line)
    text = "\n".join(out)
    if not _is_python(text):
        return "\n".join(["# this cell is not plain Python and was left out:", *(f"# {line}" for line in lines)])
    return text


def _is_python(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _argparse_block(params: dict[str, Any], overrides: dict[str, Any]) -> list[str]:
    lines = ['parser = argparse.ArgumentParser(description="Parameters of the notebook\'s `parameters` cell.")']
    for name, default in params.items():
        value = overrides.get(name, default)
        if isinstance(value, bool):
            kind = "_flag_bool"
        elif isinstance(value, int):
            kind = "int"
        elif isinstance(value, float):
            kind = "float"
        elif isinstance(value, str):
            kind = "str"
        else:
            kind = "_literal"
        lines.append(f"parser.add_argument({('--' + name)!r}, type={kind}, default={value!r}, "
                     f"help={('default: ' + repr(value))!r})")
    lines.append("args = parser.parse_args()")
    lines += [f"{name} = args.{name}" for name in params]
    return lines


def notebook_to_script(notebook: Path, overrides: dict[str, Any] | None = None) -> str:
    """The whole ``train.py`` for ``notebook``; ``overrides`` (``-p`` values) become the flags' defaults."""
    nb = read_notebook(notebook)
    overrides = dict(overrides or {})
    header = (f"#!/usr/bin/env python3\n\"\"\"{notebook.name} as a script (written by jupyter-containerize export).\n\n"
              "Run: python train.py --help\n\"\"\"\n")
    parts = [header, PREAMBLE]
    parameters_at = parameters_cell_index(nb.cells)
    for index, cell in enumerate(nb.cells):
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "markdown":
            parts.append("\n".join(f"# {line}".rstrip() for line in source.splitlines()) + "\n")
            continue
        if cell.cell_type != "code" or not source.strip():
            continue
        code = plain_python(source)
        parts.append(f"# --- cell {index} " + "-" * 60)
        if index == parameters_at:
            params = parameters_of(code)
            parts.append(code)
            parts.append("# The parameters above, as command-line flags:")
            parts.append("\n".join(_argparse_block(params, overrides)) + "\n")
            continue
        parts.append(code + "\n")
    if parameters_at is None and overrides:
        parts.insert(2, "# -p values given at export (the notebook has no `parameters` cell):\n"
                     + "".join(f"{k} = {json.dumps(v) if isinstance(v, str) else repr(v)}\n"
                               for k, v in overrides.items()))
    script = "\n".join(parts)
    ast.parse(script)  # every path above yields plain Python
    return script
