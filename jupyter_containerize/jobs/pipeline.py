"""The steps before a job runs: check the notebook, capture and render, build and push.

Plain functions over plain values; :mod:`.manager` strings them together with the
store and a backend, and the CLI's ``dockerfile`` and ``build`` call them directly.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..backends.base import ImageRef
from ..backends.builder import build_image
from ..errors import NotebookError
from ..events import Event
from ..jobspec import JobSpec

EventCallback = Callable[[Event], None]


@dataclass(frozen=True)
class Prepared:
    """A captured environment and its rendered build context."""

    snapshot: Any  # EnvironmentSnapshot
    context: Any  # BuildContext
    workdir: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def default_output_dir(notebook: Path, job_id: str) -> Path:
    """A per-job folder beside the notebook."""
    return notebook.resolve().parent / f"{notebook.stem}.jc-jobs" / job_id


def prepare(spec: JobSpec, *, in_process: bool = False, extra_modules: tuple[str, ...] = (),
            runs_notebook: bool = True) -> Prepared:
    """Capture the environment for ``spec`` and render its build context into a temp folder.

    ``runs_notebook=False``: the image runs another command (a cell job), so the captured
    notebook may have no code cells.
    """
    from ..capture import capture
    from ..render import render_context

    check_notebook(spec, runs_notebook=runs_notebook)
    workdir = Path(tempfile.mkdtemp(prefix="jc-context-"))
    try:
        snapshot = capture(spec.notebook, spec.build.python, freeze=spec.build.freeze, in_process=in_process,
                           extra_modules=extra_modules, wheel_dir=workdir / "wheels")
        context = render_context(snapshot, spec, workdir / "context", buildkit=use_buildkit(spec))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Prepared(snapshot=snapshot, context=context, workdir=workdir)


def use_buildkit(spec: JobSpec) -> bool:
    """Whether to render for BuildKit: asked for, or ``auto`` on an engine that has it.

    ``--cache-from`` reuses the classic builder's stage images, so ``auto`` stays classic with it.
    """
    mode = spec.build.builder
    if mode != "auto":
        return mode == "buildkit"
    if spec.build.cache_from:
        return False
    from ..backends.engine import engine_has_buildkit

    return engine_has_buildkit()


def build_and_push(context: Any, spec: JobSpec, on_event: EventCallback, *, cancel: threading.Event | None = None,
                   on_push: Callable[[], None] | None = None) -> ImageRef:
    """Build the context (reusing ``--cache-from`` layers), then push it and the cache tag when asked."""
    cache_from = spec.build.cache_from
    if cache_from:
        from ..backends.registry import pull_cache

        pull_cache(cache_from, on_event)
    image = build_image(context, on_event, no_cache=spec.build.no_cache,
                        extra_tags=tuple(t for t in (spec.build.tag,) if t),
                        cache_from=(cache_from,) if cache_from else (), cancel=cancel)
    if spec.build.push:
        from ..backends.registry import push_image

        if on_push is not None:
            on_push()
        image = push_image(image, spec.build.push, on_event)
    if cache_from:
        from ..backends.registry import push_cache

        push_cache(image, cache_from, on_event)
    return image


def check_notebook(spec: JobSpec, *, runs_notebook: bool = True) -> None:
    """Refuse a notebook without code to run, and parameters (or a sweep) without a ``parameters`` cell."""
    if runs_notebook:
        from ..capture.imports import require_code_cells

        require_code_cells(spec.notebook)
    if not (spec.parameters or spec.sweep):
        return
    import nbformat

    try:
        nb = nbformat.read(str(spec.notebook), as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as e:
        raise NotebookError(f"The notebook {spec.notebook} cannot be read ({e})", "Check the path.") from None
    tagged = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells if c.cell_type == "code")
    if not tagged:
        raise NotebookError(
            f"-p/--sweep was given but {spec.notebook.name} has no cell tagged 'parameters'",
            "Tag the cell that sets the defaults with 'parameters' (View > Cell Toolbar > Tags).",
        )


def sweep_specs(spec: JobSpec) -> list[JobSpec]:
    """One spec per combination of the sweep's values (parameters given with -p stay fixed)."""
    if not spec.sweep:
        return [spec]
    names = sorted(spec.sweep)
    combos = itertools.product(*(spec.sweep[n] for n in names))
    return [replace(spec, sweep={}, parameters={**spec.parameters, **dict(zip(names, values))}) for values in combos]




def read_metrics(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


