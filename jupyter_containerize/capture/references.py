"""What a notebook refers to beside itself: the files it reads, the folders it imports from, the code it runs.

The same walk serves data and code. Literal path expressions are evaluated as Python would
see them in the kernel: strings, f-strings up to their first placeholder, ``Path(...) / ...``,
``os.path.join``, ``.parent``, ``Path.cwd()``, names assigned such a value earlier, all
relative to the working folder, which ``os.chdir(...)`` and ``%cd`` move. From that:

* **search folders** for local imports: the working folder, then ``sys.path`` edits
  (``append``/``insert``/``extend``/``+=``) in the order the notebook makes them;
* **run targets**: ``%run [-i] file.py|file.ipynb`` and ``%load file.py``;
* **inputs**: every evaluated path that exists when captured and that no writer call
  (``open(..., "w")``, ``to_csv``, ``savefig``, ``torch.save``…) names; glob patterns are
  expanded on the host;
* **outputs**: the paths writer calls name (never mounted: the job writes them).

:func:`mount_units` turns inputs into the folders (or single files) to mount read-only, and
:func:`notebook_folder` places the notebook's folder under ``/work`` so that paths above it
(``../src``, ``../data``) keep their relative place.
"""

from __future__ import annotations

import ast
import glob
import os
import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Calls that write the path they are given (any argument); methods of a path receiver included.
_WRITERS = frozenset({
    "savefig", "savetxt", "save", "savez", "savez_compressed", "dump", "to_csv", "to_json", "to_parquet",
    "to_excel", "to_pickle", "to_hdf", "to_feather", "to_html", "to_latex", "to_stata", "to_sql", "to_netcdf",
    "to_file", "write_text", "write_bytes", "mkdir", "makedirs", "touch", "imwrite", "imsave", "savemat",
    "save_model", "save_pretrained", "save_weights", "write", "write_image", "write_html", "export",
    "to_zarr", "mkdtemp",
})
_COPIERS = frozenset({"copy", "copyfile", "copy2", "copytree", "move", "rename", "replace"})  # from, to
_OPENERS = frozenset({"open"})
_PATH_CALLS = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath", "fspath", "str", "abspath",
                         "realpath", "normpath", "expanduser", "resolve", "absolute"})
_WILDCARDS = frozenset("*?[")
_RUN_OPTIONS_WITH_VALUE = frozenset({"-N", "-p", "-e", "-G", "-b"})
_LOAD_OPTIONS_WITH_VALUE = frozenset({"-r", "-s", "-n"})
_MAX_GLOB = 1000


@dataclass
class References:
    """What the walk found, as absolute, normalised paths of this machine.

    Attributes:
        cwd: the working folder after the cells seen so far (``os.chdir``/``%cd`` move it).
        search: folders that imports resolve against after the working folder, in order.
        inputs: existing paths read (or named) by the code, each with where it was seen.
        outputs: paths that writer calls name.
        run_targets: ``%run``/``%load`` files, with the magic that names them.
    """

    cwd: Path
    search: list[Path] = field(default_factory=list)
    inputs: dict[Path, str] = field(default_factory=dict)
    outputs: set[Path] = field(default_factory=set)
    run_targets: dict[Path, str] = field(default_factory=dict)

    def folders(self) -> list[Path]:
        """Where a top-level import is looked for: the working folder, then the ``sys.path`` edits."""
        return list(dict.fromkeys([self.cwd, *self.search]))


class PathWalker(ast.NodeVisitor):
    """Walks one cell or module, updating :class:`References` (the state carries across cells)."""

    def __init__(self, refs: References, where: str) -> None:
        self.refs = refs
        self.where = where
        self.names: dict[str, str] = {}

    # -- evaluation ----------------------------------------------------------------------------------
    def value(self, node: ast.AST | None) -> str | None:
        """The path a literal expression stands for (relative paths as written), else ``None``."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            head = ""
            for part in node.values:
                if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                    break
                head += part.value
            else:
                return head
            folder = head.rpartition("/")[0]
            return folder + "/" if folder else None
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add)):
            left, right = self.value(node.left), self.value(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Add):
                return left + right
            return right if os.path.isabs(right) else left.rstrip("/") + "/" + right
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            inner = self.value(node.value)
            return None if inner is None else os.path.dirname(self._absolute(inner).rstrip("/"))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            inner, index = self.value(node.value.value), node.slice
            parents = Path(self._absolute(inner)).parents if inner is not None else ()
            if not (isinstance(index, ast.Constant) and isinstance(index.value, int) and 0 <= index.value < len(parents)):
                return None
            return str(parents[index.value])
        if isinstance(node, ast.Call):
            return self._call_value(node)
        return None

    def _call_value(self, node: ast.Call) -> str | None:
        name = _name(node.func)
        if name in ("cwd", "getcwd"):
            return str(self.refs.cwd)
        if name == "join" and node.args:
            parts = [self.value(a) for a in node.args]
            return None if None in parts else os.path.join(*parts)  # type: ignore[arg-type]
        if name == "dirname" and len(node.args) == 1:
            inner = self.value(node.args[0])
            return None if inner is None else os.path.dirname(inner.rstrip("/"))
        if name in _PATH_CALLS:
            if isinstance(node.func, ast.Attribute) and name in ("resolve", "absolute", "expanduser"):
                return self.value(node.func.value)
            if not node.args:
                return "." if name in ("Path", "PurePath", "PosixPath") else None
            parts = [self.value(a) for a in node.args]
            return None if None in parts else os.path.join(*parts)  # type: ignore[arg-type]
        return None

    def _absolute(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.refs.cwd, value))

    # -- statements ----------------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.value(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if value is not None:
                    self.names[target.id] = value
                else:
                    self.names.pop(target.id, None)
        if _is_sys_path(node.targets[0]) and isinstance(node.value, ast.BinOp):
            self._add_search(node.value.left, front=True)  # sys.path = [x] + sys.path
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if _is_sys_path(node.target):
            self._add_search(node.value, front=False)  # sys.path += [x]
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _name(func)
        receiver = func.value if isinstance(func, ast.Attribute) else None
        args = [*node.args, *(k.value for k in node.keywords)]
        if receiver is not None and _is_sys_path(receiver) and name in ("append", "insert", "extend"):
            self._add_search(args[-1] if args else None, front=name == "insert")
            return  # a folder to import from, not data
        if name == "chdir" and node.args:
            self._chdir(self.value(node.args[0]))
            return
        if name == "run_line_magic" and len(node.args) > 1:
            magic, line = self.value(node.args[0]), self.value(node.args[1])
            if magic is not None and line is not None:
                self._line_magic(magic, line)
        elif name in _COPIERS and len(node.args) >= 2:
            self._input(self.value(node.args[0]))
            self._output(self.value(node.args[1]))
        elif name in _WRITERS:
            for arg in ([receiver] if receiver is not None else []) + args:
                self._output(self.value(arg))
        elif name in _OPENERS and node.args and _writes(node):
            self._output(self.value(node.args[0]))
        elif name == "open" and receiver is not None and _writes(node, mode_index=0):
            self._output(self.value(receiver))  # Path(...).open("w")
        else:
            for arg in ([receiver] if receiver is not None else []) + args:
                self._input(self.value(arg))  # Path("x").read_text(), pd.read_csv("x")…
        self.generic_visit(node)

    def _add_search(self, node: ast.AST | None, *, front: bool) -> None:
        items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
        for item in items:
            value = self.value(item)
            if value is not None:
                path = Path(self._absolute(value))
                if front:
                    self.refs.search.insert(0, path)
                else:
                    self.refs.search.append(path)

    def _chdir(self, value: str | None) -> None:
        if value is not None and os.path.isdir(self._absolute(value)):
            self.refs.cwd = Path(self._absolute(value))

    def _line_magic(self, magic: str, line: str) -> None:
        if magic == "cd":
            self._chdir(line.strip().strip("'\"") or None)
            return
        if magic not in ("run", "load"):
            return
        try:
            tokens = shlex.split(line)
        except ValueError:
            return
        takes_value = _RUN_OPTIONS_WITH_VALUE if magic == "run" else _LOAD_OPTIONS_WITH_VALUE
        skip = False
        for tok in tokens:
            if skip:
                skip = False
            elif tok == "-m":
                return  # %run -m module: an import, found by the import scan
            elif tok in takes_value:
                skip = True
            elif not tok.startswith("-"):
                path = Path(self._absolute(tok))
                if path.is_file():
                    self.refs.run_targets.setdefault(path, f"%{magic} in {self.where}")
                return

    def _input(self, value: str | None) -> None:
        if not value or "://" in value or value.strip() in (".", "./", "") or "\n" in value or len(value) > 4096:
            return
        if _WILDCARDS & set(value):
            for match in sorted(glob.glob(self._absolute(value), recursive=True))[:_MAX_GLOB]:
                self.refs.inputs.setdefault(Path(match), self.where)
            return
        path = Path(self._absolute(value))
        try:
            exists = path.exists()
        except (OSError, ValueError):
            return
        if exists:
            self.refs.inputs.setdefault(path, self.where)

    def _output(self, value: str | None) -> None:
        if value and "://" not in value:
            self.refs.outputs.add(Path(self._absolute(value)))


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_sys_path(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _writes(node: ast.Call, mode_index: int = 1) -> bool:
    """Whether an ``open`` call's mode writes (``w``, ``a``, ``x`` or ``+``)."""
    mode: ast.AST | None = node.args[mode_index] if len(node.args) > mode_index else None
    mode = next((k.value for k in node.keywords if k.arg == "mode"), mode)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))


def mount_units(inputs: Iterable[Path], outputs: Iterable[Path], notebook_dir: Path,
                keep_out: Iterable[Path] = ()) -> list[Path]:
    """The folders (or single files) to mount read-only so that every input is found.

    A file is found through the folder it sits in, except in the notebook's folder (or one
    above it), which stays the job's writable working folder: then the file itself. A folder
    that an output lies in is split into its entries, so that the job can write there. Paths
    under ``keep_out`` (code copied into the image, the job's own output folders) are not mounted.
    """
    outs = [Path(p) for p in outputs]
    skip = [Path(p) for p in keep_out]
    read = {Path(p) for p in inputs}
    units: set[Path] = set()

    def under(path: Path, base: Path) -> bool:
        return path == base or base in path.parents

    def add(path: Path) -> None:
        if any(under(path, s) for s in skip):
            return
        written = [o for o in outs if under(o, path)]
        if not written:
            units.add(path)
        elif path.is_dir() and not path.is_symlink():
            whole = path in read  # a folder the code reads as such: all of it, else what it reads in it
            for child in sorted(path.iterdir()):
                if whole or any(under(r, child) for r in read):
                    add(child)

    for path in sorted(read):
        if any(under(path, s) for s in skip):
            continue
        holder = path.parent if path.is_file() else path
        if under(notebook_dir, holder):  # the working folder or above: never mounted whole
            if path.is_file():
                add(path)
        else:
            add(holder)
    return [u for u in sorted(units) if not any(p != u and under(u, p) for p in units)]


def notebook_folder(notebook: Path, paths: Iterable[str]) -> str:
    """The notebook's folder relative to ``/work`` (``""`` or e.g. ``"notebooks"``).

    ``/work`` is the deepest host folder that holds the notebook's folder and every path of
    ``paths`` (relative to the notebook's folder), so ``../src`` keeps its place beside it.

    Raises:
        ValueError: a path climbs above the filesystem's root.
    """
    ups = 0
    for rel in paths:
        parts = PurePosixPath(posixpath.normpath(rel)).parts
        ups = max(ups, next((i for i, part in enumerate(parts) if part != ".."), len(parts)))
    folder = Path(os.path.abspath(notebook)).parent
    if ups >= len(folder.parts):
        raise ValueError(f"{'../' * ups} climbs above {folder}")
    return "/".join(folder.parts[len(folder.parts) - ups:]) if ups else ""


def in_work(folder: str, rel: str) -> str:
    """``rel`` (relative to the notebook's folder) as a path relative to ``/work``."""
    return posixpath.normpath(posixpath.join(folder, rel)) if folder or rel != "." else "."


def size_of(path: Path, stop_at: int) -> int:
    """Bytes under ``path`` (links not followed), counting no further than ``stop_at``."""
    if not path.is_dir():
        try:
            return path.stat().st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
            if total > stop_at:
                return total
    return total
