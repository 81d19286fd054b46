"""``%pip install`` and ``!pip install`` inside a container job: the image already holds them.

The capture records a notebook's install lines as requirements and pins them from the
kernel, so in a job such a line has nothing to do; run for real it would reach for the
network (often absent) and cost seconds. The job's kernel loads this module at start
(``--ext`` in the image's kernelspec): it replaces the ``%pip``/``%uv`` line magics and
wraps ``shell.system`` (what ``!cmd`` calls) so that an install prints one line,
``already in the image: six==1.17.0``, and a requirement the image does not satisfy
fails the cell with a clear message. Every other command runs as before.

This module is copied into the image beside the metrics shim (``/opt/jc/shim``), where
the package is not installed: it imports only the standard library and IPython, and
``packaging`` when the job's environment has it. Its install-line parser is the one the
capture uses too (:mod:`jupyter_containerize.capture.imports`).
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

PIP_RE = re.compile(
    r"(?:^|[\s/;&])(?:pip[0-9.]*|uv\s+pip|\S*python[0-9.]*\s+-m\s+pip|\{sys\.executable\}\s+-m\s+pip|"
    r"\$\{?sys\.executable\}?\s+-m\s+pip)\s+install\s+(.*)$"
)
PIP_OPTS_WITH_VALUE = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
     "--trusted-host", "-t", "--target", "--prefix", "--root", "--python", "--platform", "--python-version",
     "--implementation", "--abi", "--src", "--cache-dir", "--log", "--proxy", "--cert", "--client-cert",
     "--timeout", "--retries", "--progress-bar", "--upgrade-strategy", "-C", "--config-settings", "--only-binary",
     "--no-binary", "--global-option"}
)
REQUIREMENT_FILE_OPTS = frozenset({"-r", "--requirement"})
# Installer tools a venv made by uv may lack: asking to upgrade them is no reason to fail a job.
TOOLS = frozenset({"pip", "setuptools", "wheel", "uv"})
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_CLAUSE = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,]+)\s*$")


class PackageNotInImage(Exception):
    """A ``pip install`` line asks for something the job's image does not hold."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"PackageNotInImage: {self}"]


def install_arguments(command: str) -> tuple[list[str], list[str]] | None:
    """Requirements and ``-r`` files of a shell ``pip install …`` command; ``None`` if it is none."""
    m = PIP_RE.search(command.strip())
    if not m:
        return None
    try:
        tokens = shlex.split(re.split(r"&&|\|\||;|\s\|\s|\s[12]?>", m.group(1))[0])
    except ValueError:
        return [], []
    reqs: list[str] = []
    files: list[str] = []
    skip = ""
    for tok in tokens:
        if skip:
            if skip in REQUIREMENT_FILE_OPTS:
                files.append(tok)
            skip = ""
        elif tok in PIP_OPTS_WITH_VALUE:
            skip = tok
        elif tok.startswith("--requirement="):
            files.append(tok.partition("=")[2])
        elif tok.startswith("-r") and len(tok) > 2:
            files.append(tok[2:])
        elif not tok.startswith("-") and not tok.startswith("{") and "$" not in tok:
            reqs.append(tok)
    return reqs, files


def file_requirements(path: Path) -> list[str] | None:
    """The requirement lines of a requirements file (options and comments dropped); ``None`` if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def _release(version: str) -> tuple[int, ...] | None:
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _padded(a: tuple[int, ...], size: int) -> tuple[int, ...]:
    return a + (0,) * (size - len(a))


def clause_holds(installed: str, op: str, wanted: str) -> bool:
    """One specifier clause, on release numbers (the fallback when ``packaging`` is absent)."""
    if op == "===":
        return installed == wanted
    have = _release(installed)
    if wanted.endswith(".*") and op in ("==", "!="):
        prefix = _release(wanted[:-2])
        if have is None or prefix is None:
            return True
        same = _padded(have, len(prefix))[:len(prefix)] == prefix
        return same if op == "==" else not same
    want = _release(wanted)
    if have is None or want is None:
        return True  # cannot tell: the capture pinned what the kernel had
    size = max(len(have), len(want))
    h, w = _padded(have, size), _padded(want, size)
    if op == "~=":
        prefix = want[:max(1, len(want) - 1)]
        return h >= w and _padded(have, len(prefix))[:len(prefix)] == prefix
    return {"==": h == w, "!=": h != w, ">=": h >= w, "<=": h <= w, ">": h > w, "<": h < w}[op]


def parse_requirement(text: str) -> tuple[str, Callable[[str], bool], bool] | None:
    """``(name, does a version satisfy it, does it apply here)``; ``None`` if it names no package (a path, a URL)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return _parse_plain(text)
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    applies = req.marker is None or req.marker.evaluate()
    if req.url:
        return req.name, lambda version: True, applies
    return req.name, lambda version: req.specifier.contains(version, prereleases=True), applies


def _parse_plain(text: str) -> tuple[str, Callable[[str], bool], bool] | None:
    m = _NAME.match(text.split(";", 1)[0])
    if not m or "/" in text or text.startswith("."):
        return None
    rest = m.group(3).strip()
    if rest.startswith("@"):
        return m.group(1), lambda version: True, True
    clauses = [_CLAUSE.match(c) for c in rest.split(",")] if rest else []
    found = [(c.group(1), c.group(2)) for c in clauses if c is not None]
    if len(found) != len(clauses):
        return None
    return m.group(1), lambda version: all(clause_holds(version, op, v) for op, v in found), True


def check_install(command: str, cwd: Path | None = None) -> list[str] | None:
    """What an install command would do in this job: the lines to print, or ``None`` if it is no install.

    Raises:
        PackageNotInImage: a named package is missing, or its installed version does not satisfy the line.
    """
    found = install_arguments(command)
    if found is None:
        return None
    reqs, files = found
    unknown: list[str] = []
    for name in files:
        lines = file_requirements((cwd or Path.cwd()) / name)
        if lines is None:
            unknown.append(f"-r {name}")
        else:
            reqs += lines
    present: list[str] = []
    for text in reqs:
        parsed = parse_requirement(text)
        if parsed is None:
            unknown.append(text)
            continue
        name, satisfied, applies = parsed
        if not applies:
            continue
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name.lower() in TOOLS:
                unknown.append(text)
                continue
            raise PackageNotInImage(
                f"{text} is not installed in the job's image, and a job installs nothing: install it in the "
                "kernel you capture from (then run the job again), or remove the line") from None
        if not satisfied(version):
            raise PackageNotInImage(
                f"{text} is asked for but the job's image has {name} {version}, and a job installs nothing: "
                f"install {text!r} in the kernel you capture from (then run the job again), or change the line")
        present.append(f"{name}=={version}")
    out = []
    if present:
        out.append("already in the image: " + ", ".join(present))
    if unknown:
        out.append("not installed in the job (the image holds the captured environment): " + " ".join(unknown))
    if not out:
        out.append("already in the image: nothing to install")
    return out


def _report(lines: list[str]) -> None:
    for line in lines:
        print(line)


def load_ipython_extension(shell: Any) -> None:
    """Make install lines no-ops (or clear failures) in this kernel; every other command is untouched."""
    for magic in ("pip", "uv"):
        _replace_magic(shell, magic)
    original = shell.system

    def system(cmd: str) -> Any:
        expanded = shell.var_expand(cmd, depth=1)  # the caller's frame, as ``system`` itself would use
        lines = check_install(expanded)
        if lines is not None:
            _report(lines)
            shell.user_ns["_exit_code"] = 0
            return None
        return _run_expanded(shell, original, cmd, expanded)

    shell.system = system


def _replace_magic(shell: Any, magic: str) -> None:
    def install_or_pass(line: str) -> Any:
        lines = check_install(f"{magic} {line}")
        if lines is not None:
            _report(lines)
            return None
        # What IPython's own %pip/%uv do (theirs are lazily loaded and would find this function again).
        return shell.system(" ".join([shlex.quote(sys.executable), "-m", magic, line]))

    install_or_pass.__doc__ = (f"%{magic} inside a container job: installs are already in the image; "
                               "anything else runs as usual.")
    shell.register_magic_function(install_or_pass, magic_kind="line", magic_name=magic)


def _run_expanded(shell: Any, original: Callable[[str], Any], cmd: str, expanded: str) -> Any:
    """``original(cmd)``, its variable expansion answered with ``expanded`` (done in the caller's frame)."""
    def var_expand(text: str, depth: int = 0, **kw: Any) -> str:
        if text == cmd:
            return expanded
        return type(shell).var_expand(shell, text, depth + 1, **kw)  # type: ignore[no-any-return]

    shell.var_expand = var_expand
    try:
        return original(cmd)
    finally:
        del shell.var_expand
