"""A library's undeclared imports (scrapbook imports six) are found in its code and pinned with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_containerize.capture.api import capture
from jupyter_containerize.capture.distributions import Environment
from jupyter_containerize.capture.undeclared import undeclared_imports

FILES = {
    "lib/__init__.py": "from .mod import run\n",
    "lib/mod.py": "import os, helper.sub\nfrom otherlib import thing\ntry:\n    import optional_one\nexcept ImportError:\n    pass\n"
                  "def lazy():\n    import lazy_one\n",
    "lib/tests/test_mod.py": "import pytest\n",
    "lib/plugins/deep.py": "import deep_one\n",
    "lib/conftest.py": "import pytest\n",
}


def _dist(site: Path, name: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> dict[str, Any]:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    (info / "RECORD").write_text("".join(f"{f},sha256=x,1\n" for f in files) + f"{info.name}/RECORD,,\n")
    tops = sorted({f.split("/")[0].removesuffix(".py") for f in files})
    return {"name": name, "version": "1.0", "requires": list(requires), "path": str(info), "top_level": tops}


def test_module_level_imports_of_installed_distributions_are_needed(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    probe = {"stdlib_module_names": ["os"], "distributions": [
        _dist(site, "lib", FILES, requires=("otherlib",)),
        _dist(site, "helper", {"helper/__init__.py": "", "helper/sub.py": ""}),
        _dist(site, "otherlib", {"otherlib.py": ""}),
        *(_dist(site, n, {f"{n}.py": ""}) for n in ("optional_one", "lazy_one", "deep_one", "pytest")),
    ]}
    env = Environment(probe)
    found: dict[str, set[str]] = {"lib": set(), "otherlib": set()}  # lib's declared closure
    # Not: os (stdlib), otherlib (declared), optional_one (guarded), lazy_one (in a function),
    # deep_one (a plugin two levels down), pytest (tests and conftest).
    assert undeclared_imports(env, ["lib"], found) == {"helper": "imported by lib (lib/mod.py) without declaring it"}
    assert undeclared_imports(env, ["lib"], {**found, "helper": set()}) == {}


def test_scrapbooks_six_is_pinned_with_the_reason(tmp_path: Path) -> None:
    # scrapbook 0.5 imports six (scrapbook/encoders.py, models.py) and does not declare it: a real case.
    nb = tmp_path / "read.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                         "source": "import scrapbook as sb\nnb = sb.read_notebook('out.ipynb')"}],
                              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    pins = {p.name.lower(): p for p in capture(nb, freeze="imports-only").distributions}
    assert "six" in pins, sorted(pins)
    assert pins["six"].reason.startswith("imported by scrapbook (scrapbook/") and "without declaring it" in pins["six"].reason
