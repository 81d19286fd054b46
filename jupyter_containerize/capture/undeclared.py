"""Distributions a library imports without declaring them, found in the library's own code.

scrapbook imports ``six`` at the top of two of its modules but does not name it in its
Requires-Dist: a closure built from metadata alone misses it, and the job fails with
``ModuleNotFoundError: No module named 'six'`` although the kernel ran fine. This reads the
module-level imports (lines that start with ``import``/``from``: not indented, so not inside
``try``, ``if`` or a function, which are optional or lazy) of the library's package and its
modules one level down (deeper ones are often optional plugins), skipping tests, vendored
code and examples, and names the *installed* distributions they come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .distributions import Environment, InstalledDistribution

_IMPORT = re.compile(r"^(?:from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import\b|import[ \t]+([A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*))",
                     re.MULTILINE)
_SKIPPED = frozenset({"tests", "test", "testing", "_testing", "_vendor", "vendor", "vendored", "examples", "docs",
                      "benchmarks", "conftest.py", "setup.py", "__main__.py"})
MAX_DEPTH = 2  # pkg/__init__.py, pkg/module.py (and top-level modules)
MAX_FILE_BYTES = 1 << 20


def library_files(dist: InstalledDistribution) -> list[Path]:
    """The distribution's own top-level Python files (from its RECORD), tests and vendored code left out."""
    try:
        record = (dist.path / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []  # an egg, or a distribution without RECORD: nothing to read
    files = []
    for line in record.splitlines():
        relative = line.rsplit(",", 2)[0].strip('"')
        parts = relative.split("/")
        if (relative.endswith(".py") and len(parts) <= MAX_DEPTH and ".." not in parts
                and not _SKIPPED.intersection(parts) and not parts[-1].startswith("test_")):
            files.append(dist.path.parent / relative)
    return files


def module_level_imports(dist: InstalledDistribution) -> dict[str, str]:
    """Top-level module name → the first file of ``dist`` that imports it at module level."""
    found: dict[str, str] = {}
    for path in library_files(dist):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in _IMPORT.finditer(text):
            names = [match.group(1)] if match.group(1) else [n.strip() for n in match.group(2).split(",")]
            for name in names:
                found.setdefault(name.partition(".")[0], path.relative_to(dist.path.parent).as_posix())
    return found


def undeclared_imports(env: Environment, libraries: Iterable[str], found: Mapping[str, object]) -> dict[str, str]:
    """Installed distributions that ``libraries`` (keys) import at module level, are not in ``found``
    and are not declared: key → why it is needed (``imported by scrapbook (scrapbook/models.py)
    without declaring it``)."""
    needed: dict[str, str] = {}
    for key in libraries:
        dist = env.dists.get(key)
        if dist is None:
            continue
        own = set(dist.top_level)
        for module, where in sorted(module_level_imports(dist).items()):
            if module in own or module in env.stdlib or module == "__future__":
                continue
            for dep in env.distributions_of(module):
                if dep not in found and dep != key and dep not in needed:
                    needed[dep] = f"imported by {dist.name} ({where}) without declaring it"
    return needed
