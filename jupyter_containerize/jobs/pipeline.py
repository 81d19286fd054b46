"""The steps before a job runs: check the notebook, capture and render, check the indexes, build and push.

Plain functions over plain values; :mod:`.manager` strings them together with the
store and a backend, and :mod:`.commands` (``dockerfile``, ``build``) calls them directly.
"""

from __future__ import annotations

import base64
import itertools
import json
import posixpath
import shutil
import ssl
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import ImageRef
from ..backends.builder import build_image
from ..errors import BuildError, NotebookError, OptionError, listing
from ..events import Event
from ..jobspec import JobSpec

if TYPE_CHECKING:  # imported where used: capture and render are heavy for the commands that need neither
    from ..capture.snapshot import EnvironmentSnapshot
    from ..render.context import BuildContext

EventCallback = Callable[[Event], None]
LARGE_DATA_BYTES = 2**30  # data over this is named when mounted
INDEX_TIMEOUT_S = 5.0  # one request per index: an answer in seconds, not a failed install minutes in


@dataclass(frozen=True)
class Prepared:
    """A captured environment and its rendered build context."""

    snapshot: EnvironmentSnapshot
    context: BuildContext
    workdir: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def default_output_dir(notebook: Path, job_id: str) -> Path:
    """A per-job folder beside the notebook."""
    return notebook.resolve().parent / f"{notebook.stem}.jc-jobs" / job_id


def prepare(spec: JobSpec, *, in_process: bool = False, extra_modules: tuple[str, ...] = (),
            runs_notebook: bool = True, context_dir: Path | None = None) -> Prepared:
    """Capture the environment for ``spec`` and render its build context into a temp folder.

    ``runs_notebook=False``: the image runs another command (a cell job), so the captured
    notebook may have no code cells. ``context_dir``: render there instead (``dockerfile -o``);
    it outlives :meth:`Prepared.cleanup`.
    """
    from ..capture import capture
    from ..render import render_context

    spec = checked_spec(spec, runs_notebook=runs_notebook)
    workdir = Path(tempfile.mkdtemp(prefix="jc-context-"))
    try:
        snapshot = capture(spec.notebook, spec.build.python, freeze=spec.build.freeze, in_process=in_process,
                           extra_modules=extra_modules, wheel_dir=workdir / "wheels",
                           wheels_from_kernel=spec.build.wheels_from_kernel)
        context = render_context(snapshot, spec, context_dir or workdir / "context", buildkit=use_buildkit(spec))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Prepared(snapshot=snapshot, context=context, workdir=workdir)


def with_data_mounts(spec: JobSpec, snapshot: EnvironmentSnapshot, *, host_paths: bool = True) -> tuple[JobSpec, list[str]]:
    """``spec`` with the data the notebook reads mounted read-only where it reads it, and what to tell the user.

    Each of the snapshot's data paths (see :mod:`..capture.references`) is bound at the same
    place relative to the notebook in the image, unless ``-v`` already mounts something there
    or ``--no-auto-mount`` was given. Paths outside the notebook's folder and large ones are named.

    Raises:
        OptionError: the backend cannot mount host paths (Kubernetes) and the notebook reads some.
    """
    from ..capture.references import in_work, size_of
    from ..jobspec import WORK_DIR_IN_CONTAINER, VolumeMount

    rels = snapshot.data_paths
    if not rels or not spec.auto_mount:
        return spec, []
    if not host_paths:
        raise OptionError(
            f"The notebook reads {listing(rels)} beside it, and a {spec.backend} job cannot mount this "
            "machine's folders",
            "Put them on a PersistentVolumeClaim and pass -v CLAIM:/work/PATH, copy them into the image with "
            "--include, or pass --no-auto-mount.")
    folder = Path(snapshot.notebook).resolve().parent
    taken = {posixpath.normpath(v.target) for v in spec.volumes}
    mounts: list[VolumeMount] = []
    notes: list[str] = []
    for rel in rels:
        target = posixpath.join(WORK_DIR_IN_CONTAINER, in_work(snapshot.notebook_folder, rel))
        if any(target == t or target.startswith(t.rstrip("/") + "/") for t in taken):
            continue
        source = (folder / rel).resolve()
        mounts.append(VolumeMount(source=str(source), target=target, read_only=True))
        size = size_of(source, LARGE_DATA_BYTES)
        if rel.startswith("../"):
            notes.append(f"{rel} is outside the notebook's folder; it is mounted read-only at {target} "
                         "(--no-auto-mount leaves it out).")
        elif size > LARGE_DATA_BYTES:
            notes.append(f"{rel} holds more than {LARGE_DATA_BYTES // 2**30} GiB; it is mounted read-only at {target}, "
                         "not copied into the image.")
    names = ", ".join(f"{m.target} (from {m.source})" for m in mounts)
    if names:
        notes.insert(0, f"mounted read-only as the notebook reads them: {names}")
    return replace(spec, volumes=(*spec.volumes, *mounts)), notes


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


def build_and_push(context: BuildContext, spec: JobSpec, on_event: EventCallback, *, cancel: threading.Event | None = None,
                   on_push: Callable[[], None] | None = None) -> ImageRef:
    """Check the indexes, build the context (reusing ``--cache-from`` layers), then push it and the cache tag."""
    check_indexes(context)
    cache_from = spec.build.cache_from
    if cache_from:
        from ..backends.registry import pull_cache

        pull_cache(cache_from, on_event)
    image = build_image(context, on_event, no_cache=spec.build.no_cache,
                        extra_tags=tuple(t for t in (spec.build.tag,) if t),
                        cache_from=(cache_from,) if cache_from else (), cancel=cancel,
                        network_mode="none" if context.offline else None)
    if spec.build.push:
        from ..backends.registry import push_image

        if on_push is not None:
            on_push()
        image = push_image(image, spec.build.push, on_event)
    if cache_from:
        from ..backends.registry import push_cache

        push_cache(image, cache_from, on_event)
    return image


def check_indexes(context: BuildContext, *, timeout: float = INDEX_TIMEOUT_S) -> None:
    """Reach every package index the build's lock install uses, once each, before the build starts.

    One request per index (the page of a pinned project, else the simple API root), with the
    kernel's CA bundle from the context (not verified for its trusted hosts, as pip and uv do);
    none when every pin is a wheel of the context. Any HTTP answer but 401/403 and 5xx counts
    as reachable (a 404 is an index without that project).

    Raises:
        BuildError: an index cannot be reached or refuses the credentials; it is named without them.
    """
    indexes = tuple(dict.fromkeys(context.indexes))
    if not indexes:
        return
    from ..capture.distributions import PYPI_SIMPLE

    cert = Path(context.path) / "certs" / "ca.crt"
    verified = ssl.create_default_context(cafile=str(cert) if cert.is_file() else None)
    trusted = set(context.trusted_hosts)
    urls = [PYPI_SIMPLE if not raw else context.build_args.get(raw[2:-1], "") if raw.startswith("${") else raw
            for raw in indexes]
    project = context.index_project
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        failures = list(pool.map(lambda url: _reach(url, project, timeout, _tls(url, trusted, verified)),
                                 [u for u in urls if u]))
    for failure in failures:
        if failure is not None:
            raise failure


def _tls(url: str, trusted: set[str], verified: ssl.SSLContext) -> ssl.SSLContext:
    parts = urllib.parse.urlsplit(url)
    if not trusted & {parts.hostname or "", parts.netloc.rsplit("@", 1)[-1]}:
        return verified
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    return unverified


def _reach(url: str, project: str | None, timeout: float, tls: ssl.SSLContext) -> BuildError | None:
    """``None`` if the index answers, else the error that names it (credentials stripped)."""
    from ..capture.pipconfig import split_credentials
    from ..capture.probe import normalize

    parts = urllib.parse.urlsplit(url)
    clean = split_credentials(url)[0]
    page = clean.rstrip("/") + "/" + (f"{normalize(project)}/" if project else "")
    headers = {"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"}
    if parts.username:
        secret = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    hint = ("Check the network and the index URL of the kernel's pip configuration (pip config list), or pass "
            "--wheels-from-kernel to install the kernel's own wheels without an index.")
    try:
        with urllib.request.urlopen(urllib.request.Request(page, headers=headers), timeout=timeout, context=tls):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return BuildError(f"The package index {clean} refused the credentials of the kernel's pip "
                              f"configuration (HTTP {exc.code})", "Check the user and token in its index URL or .netrc.")
        if exc.code < 500:
            return None
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cause = getattr(exc, "reason", exc)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return BuildError(f"The package index {clean} presents a TLS certificate that is not trusted "
                              f"({cause.verify_message})",
                              "Point pip's cert setting at the CA bundle that signs it (pip config set global.cert "
                              "PATH), or list the host in pip's trusted-host.")
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            reason = f"no answer within {timeout:g} s"
        elif isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror.rstrip(".")
        else:
            reason = str(cause).rstrip(".") or type(cause).__name__
    for word in (parts.password, parts.username):
        if word:
            reason = reason.replace(word, "***")
    return BuildError(f"The package index {clean} cannot be reached ({reason}), so the build would fail installing "
                      "the lock", hint)


def checked_spec(spec: JobSpec, *, runs_notebook: bool = True) -> JobSpec:
    """``spec`` with its parameters checked against the notebook's parameters cell, before any slow work.

    Refuses a notebook without code to run; parameters (or a sweep) without a ``parameters`` cell
    (unless ``--inject-top``); names the cell does not set; values not of the cell's types (see
    :mod:`..parameters_check`). Returns the spec with the values coerced to those types.
    """
    if runs_notebook:
        from ..capture.imports import require_code_cells

        require_code_cells(spec.notebook)
    if not (spec.parameters or spec.sweep):
        return spec
    from ..notebook_file import read_notebook
    from ..parameters_cell import parameters_cell_index
    from ..parameters_check import check_parameters, check_sweep

    nb = read_notebook(spec.notebook)
    index = parameters_cell_index(nb.cells)
    if index is None:
        if spec.inject_top:
            return spec
        raise NotebookError(
            f"-p/--sweep was given but {spec.notebook.name} has no cell tagged 'parameters'",
            "Tag the cell that sets the defaults with 'parameters' (View > Cell Toolbar > Tags), or pass "
            "--inject-top to inject them at the top as papermill does.",
        )
    source = str(nb.cells[index].source)
    return replace(spec, parameters=check_parameters(source, spec.parameters, spec.notebook.name),
                   sweep=check_sweep(source, spec.sweep, spec.notebook.name))


def sweep_specs(spec: JobSpec) -> list[JobSpec]:
    """One spec per combination of the sweep's values (parameters given with -p stay fixed)."""
    if not spec.sweep:
        return [spec]
    names = sorted(spec.sweep)
    combos = itertools.product(*(spec.sweep[n] for n in names))
    return [replace(spec, sweep={}, parameters={**spec.parameters, **dict(zip(names, values, strict=True))})
            for values in combos]




def read_metrics(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


