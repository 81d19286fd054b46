"""What a notebook imports: IPython syntax first, then an AST walk of every code cell.

Collected: ``import``/``from`` statements anywhere (top level, functions, classes),
``importlib.import_module("lit")`` / ``import_module("lit")`` / ``__import__("lit")``
with literal names, ``%load_ext``, ``%matplotlib`` and the bodies of Python cell
magics (``%%time``…). ``%pip install`` / ``!pip install`` / ``!{sys.executable} -m pip
install`` lines become explicit requirements. Modules that are ``.py`` files or package
folders in the working folder or a folder the notebook adds to ``sys.path``, and the targets of
``%run``/``%load``, are local code, and their own imports are followed (:mod:`.references`
follows those paths, and finds the data files the code reads, on the same walk).
Imports inside a ``try`` whose handlers catch ImportError (or a base of it) are optional:
the notebook runs without them.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import NotebookError
from ..injob_pip import install_arguments
from .references import PathWalker, References, mount_units

SELF_MODULES = frozenset({"jupyter_containerize"})
# Cell magics whose body is Python code run in the kernel.
_PYTHON_CELL_MAGICS = frozenset(
    {"time", "timeit", "capture", "prun", "debug", "memit", "mprun", "snakeviz", "containerize", "lprun"}
)
_BUILTIN_EXTENSIONS = frozenset({"autoreload", "storemagic"})
_MAX_LOCAL_FILES = 500
# Handlers that catch ImportError: those names, its bases, or a bare ``except:``.
_IMPORT_ERROR_NAMES = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class NotebookImports:
    """Imports and install lines found in a notebook (and its local modules).

    Attributes:
        modules: dotted module names as imported (``google.protobuf``), stdlib dropped.
        from_names: ``module.name`` candidates of ``from module import name`` (a name may be a
            submodule, which decides namespace packages such as ``from google import protobuf``).
        requirements: requirement strings from ``pip install`` lines, in order.
        local_modules: paths of local modules, packages and ``%run`` targets, relative to the
            notebook's folder (``../src/pkg`` for a folder above it).
        warnings: cells that could not be parsed.
        guarded: the ``modules`` imported only inside ``try`` blocks that catch ImportError.
        requirement_files: files of ``pip install -r FILE`` lines (what they install is unknown here).
    """

    modules: tuple[str, ...]
    from_names: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    local_modules: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    guarded: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    data_paths: tuple[str, ...] = ()
    why: tuple[tuple[str, str], ...] = ()
    search_folders: tuple[str, ...] = ()
    """data_paths: folders and files the code reads, to mount read-only (relative to the notebook's
    folder); why: (path, where it was seen) for each local module and data path; search_folders:
    where imports were looked for."""


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook as JSON (nbformat 3 or 4), checked just enough to find its cells.

    Raises:
        NotebookError: the file is missing, unreadable or not a notebook.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"Cannot read the notebook {str(path)!r}: {exc.strerror or exc}.",
                            "Check the path and its permissions.") from None
    try:
        nb = json.loads(raw)
    except ValueError as exc:
        raise NotebookError(f"{str(path)!r} is not a valid notebook (invalid JSON: {exc}).",
                            "Open and save it in Jupyter, or pass the right file.") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        raise NotebookError(f"{str(path)!r} is not a valid notebook (it has no list of cells).",
                            "Open and save it in Jupyter, or pass the right file.")
    return nb


def code_cells(nb: dict[str, Any]) -> list[str]:
    """Source of every code cell, nbformat 4 (``cells``) or 3 (``worksheets``)."""
    cells = nb.get("cells")
    if cells is None:
        cells = [c for ws in nb.get("worksheets", []) if isinstance(ws, dict) for c in ws.get("cells", [])]
    out: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", cell.get("input", ""))
        out.append("".join(src) if isinstance(src, list) else str(src))
    return out


def require_code_cells(path: Path) -> None:
    """Refuse a notebook with no non-empty code cell: a job that runs nothing is a mistake.

    Raises:
        NotebookError: the notebook cannot be read, or it has no code to run.
    """
    if not any(src.strip() for src in code_cells(read_notebook(path))):
        raise NotebookError(f"The notebook {Path(path).name!r} has no code cells, so a job would run nothing",
                            "Add (and save) a code cell, or pass the right notebook.")


@lru_cache(maxsize=1)
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()  # type: ignore[no-untyped-call]


def pip_requirements(command: str) -> list[str]:
    """Requirement strings of a shell ``pip install …`` command (empty if it is none)."""
    return _pip_install(command)[0]


def _pip_install(command: str) -> tuple[list[str], list[str]]:
    """Requirement strings and ``-r`` files of a shell ``pip install …`` command (both empty if it is none)."""
    return install_arguments(command) or ([], [])


def _catches_import_error(handlers: list[ast.ExceptHandler]) -> bool:
    for handler in handlers:
        kind = handler.type
        caught = kind.elts if isinstance(kind, ast.Tuple) else [kind]
        for c in caught:
            name = c.attr if isinstance(c, ast.Attribute) else c.id if isinstance(c, ast.Name) else None
            if c is None or name in _IMPORT_ERROR_NAMES:
                return True
    return False


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.modules: list[str] = []
        self.guarded: list[str] = []  # imported inside a try that catches ImportError
        self.from_names: list[str] = []
        self.requirements: list[str] = []
        self.requirement_files: list[str] = []
        self.bodies: list[str] = []
        self._guard = 0

    def _add(self, module: str) -> None:
        (self.guarded if self._guard else self.modules).append(module)

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        guards = _catches_import_error(node.handlers)
        self._guard += guards
        for stmt in node.body:
            self.visit(stmt)
        self._guard -= guards
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self.visit_Try(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module)
            self.from_names += [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        first = args[0] if args else None
        if name in ("import_module", "__import__") and node.args:
            module = first or _package_prefix(node.args[0])  # import_module("pkg." + name): pkg at least
            if module and not module.startswith("."):
                self._add(module)
        elif name == "system" and first:  # !cmd
            self._pip(first)
        elif name == "run_line_magic" and len(args) > 1 and first and args[1] is not None:
            self._line_magic(first, args[1])
        elif name == "run_cell_magic" and len(args) > 2 and first in _PYTHON_CELL_MAGICS and args[2] is not None:
            self.bodies.append(args[2])
        self.generic_visit(node)

    def _line_magic(self, magic: str, line: str) -> None:
        if magic in ("pip", "uv"):
            self._pip(f"{magic} {line}")
        elif magic == "load_ext" and line.strip() and line.split()[0] not in _BUILTIN_EXTENSIONS:
            self._add(line.split()[0])
        elif magic == "matplotlib":
            self._add("matplotlib")
        elif magic in ("time", "timeit", "prun"):
            self.bodies.append(re.sub(r"^(\s*-\S+(\s+\S+)?\s+)*", "", line) if magic == "timeit" else line)

    def _pip(self, command: str) -> None:
        reqs, files = _pip_install(command)
        self.requirements += reqs
        self.requirement_files += files


def _package_prefix(node: ast.expr) -> str | None:
    """``pkg.sub`` of a module name built at run time: ``"pkg.sub." + name`` or ``f"pkg.sub.{name}"``."""
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        node = node.left
    if isinstance(node, ast.JoinedStr) and node.values:
        node = node.values[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
        return node.value.rpartition(".")[0] or None
    return None


def scan_source(source: str, ipython: bool = True, paths: PathWalker | None = None) -> _Visitor:
    """Walk one cell (or module) of source; ``ipython`` first applies IPython's transformer.

    ``paths`` also walks each parsed tree, following the paths the code names.

    Raises:
        SyntaxError: the source does not parse even after the transformation.
    """
    visitor = _Visitor()
    pending = [source]
    while pending:
        code = pending.pop()
        if ipython:
            with contextlib.suppress(Exception):  # IPython raises assorted errors on odd input; ast decides
                code = _transformer().transform_cell(code)
        tree = ast.parse(code)
        visitor.visit(tree)
        if paths is not None:
            paths.visit(tree)
        pending += visitor.bodies
        visitor.bodies = []
    return visitor


def _local_path(folders: Iterable[Path], top: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / f"{top}.py", folder / top):
            if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.py"))):
                return candidate
    return None


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def scan_notebook(notebook: Path, stdlib: Iterable[str] = ()) -> NotebookImports:
    """Imports, pip install lines, local code and data paths of a notebook.

    Args:
        notebook: the ``.ipynb`` file.
        stdlib: top-level names of the target's standard library (``sys.stdlib_module_names``).

    Raises:
        NotebookError: the notebook (or a notebook it ``%run``s) cannot be read.
    """
    notebook = Path(notebook)
    folder = notebook.resolve().parent
    drop = set(stdlib) | SELF_MODULES | {"__future__", "__main__"}
    modules: list[str] = []
    guarded: list[str] = []
    from_names: list[str] = []
    requirements: list[str] = []
    requirement_files: list[str] = []
    warnings: list[str] = []
    local: dict[str, Path] = {}
    why: dict[Path, str] = {}
    refs = References(cwd=folder)
    cells = PathWalker(refs, "the notebook")
    queue: list[tuple[str, str, bool, PathWalker]] = [
        (src, f"cell {i + 1}", True, cells) for i, src in enumerate(code_cells(read_notebook(notebook)))]
    scanned_files: set[Path] = {notebook.resolve()}

    def take(path: Path, reason: str) -> None:
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))[:_MAX_LOCAL_FILES]
        why.setdefault(path, reason)
        for f in files:
            if f in scanned_files:
                continue
            scanned_files.add(f)
            label = _relative(f, folder)
            if f.suffix == ".ipynb":
                queue.extend((src, f"cell {i + 1} of {label}", True, PathWalker(refs, label))
                             for i, src in enumerate(code_cells(read_notebook(f))))
            else:
                text = f.read_text(encoding="utf-8", errors="replace")
                queue.append((text, label, f.suffix == ".ipy", PathWalker(refs, label)))

    while queue:
        source, where, is_cell, walker = queue.pop(0)
        walker.where = where
        try:
            found = scan_source(source, ipython=is_cell, paths=walker)
        except (SyntaxError, ValueError) as exc:
            warnings.append(f"{where} of {notebook.name} does not parse ({exc.__class__.__name__}); "
                            "its imports were not captured.")
            continue
        requirements += found.requirements
        requirement_files += found.requirement_files
        for target, reason in list(refs.run_targets.items()):
            if target not in why:
                take(target, reason)
                if target.suffix == ".ipynb":
                    modules.append("nbformat")  # IPython's %run reads notebooks with it
        for name, optional in [(n, False) for n in found.modules] + [(n, True) for n in found.guarded]:
            top = name.split(".", 1)[0]
            path = local.get(top) or _local_path(refs.folders(), top)
            if path is not None:
                if top not in local:
                    local[top] = path
                    take(path, f"imported by {where}")
            elif top not in drop and top.isidentifier():
                (guarded if optional else modules).append(name)
        from_names += [n for n in found.from_names if n.split(".", 1)[0] not in drop | set(local)]
    code = set(local.values()) | set(refs.run_targets)
    outputs = {folder / f"{notebook.stem}.jc-jobs", folder / f"{notebook.stem}.jc-context"}
    data = mount_units(refs.inputs, refs.outputs, folder, keep_out=code | outputs | {notebook.resolve()})
    for unit in data:
        why[unit] = "read by " + next(w for p, w in refs.inputs.items() if p == unit or unit in p.parents
                                      or p in unit.parents)
    return NotebookImports(
        modules=tuple(sorted(set(modules) | set(guarded))),
        from_names=tuple(sorted(set(from_names) - set(modules) - set(guarded))),
        requirements=tuple(dict.fromkeys(requirements)),
        local_modules=tuple(sorted(_relative(p, folder) for p in code)),
        warnings=tuple(warnings),
        guarded=tuple(sorted(set(guarded) - set(modules))),
        requirement_files=tuple(dict.fromkeys(requirement_files)),
        data_paths=tuple(_relative(p, folder) for p in data),
        why=tuple(sorted((_relative(p, folder), w) for p, w in why.items() if p in code or p in data)),
        search_folders=tuple(_relative(p, folder) for p in refs.folders()),
    )
