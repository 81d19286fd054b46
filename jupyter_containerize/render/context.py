"""Write a complete build context to a folder, atomically and deterministically.

Layout (every path relative to the context folder)::

    Dockerfile  .dockerignore  requirements.lock  [kernel.lock]  runner.lock
    jc/runner.py  jc/parameters_cell.py  jc/papermill_record.py   → /opt/jc/
    jc/shim/jupyter_containerize/                  → log_metric, no-op magics, offline pip lines in the job
    jc/share/kernels/python3/kernel.json           → the kernelspec the runner starts
    work/[<folder>/]<notebook>  work/<local code>  work/<--include paths>  → /work
      (<folder>: the notebook's folder below the one that also holds ``../src``-style local code)
    wheels/*.whl                                   → local projects built on the host
    certs/ca.crt                                   → the pip CA bundle (builder stage only)

Same inputs, same bytes: files are written in a fixed order with fixed modes (0644,
folders 0755), no timestamps, the notebook normalised (outputs and execution counts
cleared, keys sorted) so re-running it locally does not change the image.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import re
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..capture.distributions import find_uv
from ..capture.references import in_work
from ..capture.snapshot import EnvironmentSnapshot, PinnedDistribution
from ..errors import ContainerizeError, OptionError
from ..jobspec import WORK_DIR_IN_CONTAINER, JobSpec
from ..notebook_file import read_notebook
from . import locks
from .dockerfile import JC_DIR, LABEL_PREFIX, VENV, Plan, dockerfile_text, make_plan, precompile_lists
from .ignore import dockerignore, keep_file, skip_dir

Source = bytes | Path  # in-memory content, or a host file copied as is

RUNNER_SOURCE = Path(__file__).resolve().parent.parent / "runner" / "main.py"
PARAMETERS_CELL_SOURCE = Path(__file__).resolve().parent.parent / "parameters_cell.py"  # imported by the runner
PAPERMILL_RECORD_SOURCE = Path(__file__).resolve().parent.parent / "papermill_record.py"  # imported by the runner
METRICS_SOURCE = Path(__file__).resolve().parent.parent / "metrics.py"
INJOB_SOURCE = Path(__file__).resolve().parent.parent / "injob.py"
INJOB_PIP_SOURCE = Path(__file__).resolve().parent.parent / "injob_pip.py"
PRECOMPILE_SOURCE = Path(__file__).resolve().parent.parent / "runner" / "precompile.py"
# The package as a notebook sees it inside the job: log_metric, no-op magics, install lines that need no network.
SHIM_INIT = b"from .metrics import log_metric\nfrom .injob import load_ipython_extension\n"
INJOB_PIP_MODULE = "jupyter_containerize.injob_pip"
_CHUNK = 1024 * 1024


class ContextError(ContainerizeError):
    """The build context cannot be written."""


@dataclass(frozen=True)
class BuildContext:
    """A rendered build context on disk.

    Attributes:
        path: The context folder.
        content_hash: sha256 over the base image and every context file (path and bytes).
        image_tag: ``jupyter-containerize/<notebook slug>:<hash[:16]>``.
        base_image: The final stage's base image.
        dockerfile: The Dockerfile's text.
        notebook_in_container: Where the notebook is in the image.
        build_args: Secret build-arg values (credentialed index URLs); in memory only.
        files: Context-relative paths written, sorted.
        warnings: Things the user should know (files left out, version mismatches).
        buildkit: The Dockerfile needs BuildKit (cache and bind mounts).
        indexes: The package indexes the lock's install reaches: ``""`` for the installer's
            default, ``${NAME}`` for a credentialed one whose URL is ``build_args[NAME]``; none
            when every pin is a wheel of the context (see :meth:`.dockerfile.Plan.lock_indexes`).
        index_project: A project the lock takes from an index (its page answers a reachability check).
        trusted_hosts: Hosts whose TLS certificate is not verified (pip's ``trusted-host``).
    """

    path: Path
    content_hash: str
    image_tag: str
    base_image: str
    dockerfile: str
    notebook_in_container: str
    build_args: dict[str, str]
    files: tuple[str, ...]
    warnings: tuple[str, ...]
    buildkit: bool = False
    indexes: tuple[str, ...] = ()
    index_project: str | None = None
    trusted_hosts: tuple[str, ...] = ()
    offline: bool = False  # every step installs from the context: it builds with no network at all

    def __repr__(self) -> str:  # never print secret values
        return f"BuildContext(path={self.path!s}, image_tag={self.image_tag!r}, files={len(self.files)})"


@functools.lru_cache(maxsize=1)
def default_runner_pins() -> tuple[PinnedDistribution, ...]:
    """The runner venv's pins: nbclient, nbformat and their closure, from this process."""
    from ..capture.distributions import pin_closure

    from ..capture.api import RUNNER_PACKAGES

    return tuple(pin_closure(list(RUNNER_PACKAGES), None))


def slug(name: str) -> str:
    """A Docker repository path component made from a notebook stem."""
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s[:64].strip("-") or "notebook"


def normalized_notebook(path: Path) -> bytes:
    """The notebook as nbformat 4 without outputs, execution counts or widget state, keys sorted.

    An older notebook (nbformat 2 or 3) is upgraded first: the image holds the v4 one.

    Raises:
        NotebookError: the file cannot be read or is not a notebook.
    """
    data = read_notebook(path)
    for cell in data["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("widgets", None)
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def kernel_json() -> bytes:
    """The kernelspec that makes ``python3`` the user's venv, with the metrics shim importable."""
    spec = {
        # The kernel's own log stays quiet: its one warning here (TCP without encryption) is about a
        # loopback connection to the runner inside the same container. Cell output is unaffected.
        # --ext: pip/uv install lines find their packages in the image instead of the network.
        "argv": [f"{VENV}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=ERROR", f"--ext={INJOB_PIP_MODULE}"],
        "display_name": "Python 3 (captured environment)",
        "language": "python",
        "env": {"PYTHONPATH": f"{JC_DIR}/shim"},
        "metadata": {"debugger": False},
    }
    return (json.dumps(spec, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _inside(base: Path, rel: str, what: str) -> Path:
    """``base / rel`` if it stays inside ``base``."""
    path = (base / rel).resolve()
    if path != base and base not in path.parents:
        raise OptionError(f"The {what} {rel!r} is outside the notebook's folder {base}",
                          "Only files under the notebook's folder can be copied to /work.")
    return path


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Files under ``root`` in sorted order, skipping VCS/caches and our own output folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not skip_dir(d) and (here / d).resolve() not in skip)
        for name in sorted(filenames):
            yield here / name


class _Files:
    """The context's files before they are written: path → source, with warnings."""

    def __init__(self, nb_dir: Path, skip: set[Path]) -> None:
        self.items: dict[str, Source] = {}
        self.warnings: list[str] = []
        self.nb_dir = nb_dir
        self.skip = skip

    def add(self, rel: str, source: Source) -> None:
        self.items[rel] = source

    def add_local(self, rel: str, *, forced: bool, folder: str = "") -> None:
        """Copy a file or folder to ``work/<folder>/<rel>``: ``--include`` paths only from under the notebook's folder."""
        path = _inside(self.nb_dir, rel, "--include path") if forced else (self.nb_dir / rel).resolve()
        if not path.exists():
            self.warnings.append(f"{rel} does not exist next to the notebook and is left out.")
            return
        files = [path] if path.is_file() else list(_walk(path, self.skip))
        for file in files:
            if not file.is_file():
                continue  # sockets, broken links
            target = "work/" + in_work(folder, os.path.relpath(file, self.nb_dir))
            if not forced:
                reason = keep_file(file.name, file.stat().st_size)
                if reason:
                    self.warnings.append(f"{target[5:]} is left out of the image: {reason}.")
                    continue
            self.items[target] = file


def _size_and_chunks(source: Source) -> tuple[int, Iterator[bytes]]:
    if isinstance(source, bytes):
        return len(source), iter((source,))

    def chunks() -> Iterator[bytes]:
        with source.open("rb") as fh:
            while block := fh.read(_CHUNK):
                yield block

    return source.stat().st_size, chunks()


def content_hash(base_image: str, items: dict[str, Source]) -> str:
    """sha256 over the base image and each (path, size, bytes), in sorted path order."""
    h = hashlib.sha256()
    h.update(b"jupyter-containerize context v1\0base\0" + base_image.encode() + b"\0")
    for rel in sorted(items):
        size, chunks = _size_and_chunks(items[rel])
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + str(size).encode() + b"\0")
        for block in chunks:
            h.update(block)
    return h.hexdigest()


def _check_no_secrets(items: dict[str, Source], secrets: Sequence[str]) -> None:
    words = set(secrets)
    for url in secrets:  # the token alone must not leak either
        password = urllib.parse.urlsplit(url).password
        if password:
            words.add(urllib.parse.unquote(password))
            words.add(password)
    needles = [w.encode() for w in sorted(words) if len(w) >= 6]
    for rel, source in items.items():
        if rel.startswith("wheels/") or not needles:
            continue
        data = source if isinstance(source, bytes) else source.read_bytes()
        if any(n in data for n in needles):
            raise ContextError(f"A credential from the pip configuration would be written to {rel}",
                               "Remove it from that file; credentials are passed only as build arguments.")


def _is_previous_context(path: Path) -> bool:
    dockerfile = path / "Dockerfile"
    try:
        return f"{LABEL_PREFIX}.lock-hash=" in dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _write_tree(root: Path, items: dict[str, Source]) -> None:
    os.chmod(root, 0o755)
    for rel in sorted(items):
        target = root.joinpath(*PurePosixPath(rel).parts)
        for parent in reversed(target.relative_to(root).parents[:-1]):
            d = root / parent
            if not d.is_dir():
                d.mkdir()
                os.chmod(d, 0o755)
        source = items[rel]
        if rel.endswith("/"):  # a folder of its own (one that data is mounted into)
            target.mkdir(exist_ok=True)
            os.chmod(target, 0o755)
            continue
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        os.chmod(target, 0o644)


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Put the finished ``tmp`` at ``out_dir``, replacing a previous context of ours."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.jc-old-", dir=out_dir.parent))
    old.rmdir()
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def render_context(
    snapshot: EnvironmentSnapshot,
    spec: JobSpec | None,
    out_dir: Path,
    *,
    runner_pins: Sequence[PinnedDistribution] | None = None,
    buildkit: bool = False,
) -> BuildContext:
    """Write the build context for ``snapshot`` into ``out_dir`` and describe it.

    The folder is built beside ``out_dir`` and renamed into place, so on any error
    nothing half-written remains. An existing ``out_dir`` must be empty or a
    previous context written by this function.

    Args:
        snapshot: The captured environment.
        spec: The job's options (base image, UID, ``--include``, freeze mode); ``None``: defaults.
        out_dir: The context folder to (re)create.
        runner_pins: The runner venv's pins; default: nbclient and nbformat as installed here.
        buildkit: Render for BuildKit (see :func:`.dockerfile.make_plan` for when it still cannot).

    Raises:
        NotebookError: the notebook cannot be read.
        OptionError: an option value cannot be used (base image, UID, include path…).
        ContextError: ``out_dir`` holds something else, or a credential would be written.
    """
    out_dir = Path(os.path.abspath(out_dir))
    _check_out_dir(out_dir)
    notebook = Path(os.path.abspath(snapshot.notebook))
    nb_dir = notebook.parent
    config = snapshot.pip_config
    warnings = list(snapshot.warnings)
    cert, cert_warnings = _read_cert(config.cert_file)
    warnings += cert_warnings
    plan = make_plan(snapshot, spec, has_cert=cert is not None, buildkit=buildkit)
    pins = tuple(runner_pins) if runner_pins is not None else (snapshot.runner_distributions or default_runner_pins())
    if snapshot.python_version.split(".")[:2] != [str(v) for v in sys.version_info[:2]]:
        warnings.append(f"The runner's pins come from Python {sys.version_info[0]}.{sys.version_info[1]} and the image "
                        f"has Python {snapshot.python_version}; the runner venv resolves any difference.")
    if plan.python_kind == "path":
        warnings.append(f"The base image {plan.base_image} must provide python3 {snapshot.python_version} on PATH.")

    skip = {out_dir}  # never copy a context into itself
    files = _Files(nb_dir, skip)
    dockerfile = dockerfile_text(plan)
    _add_image_files(files, plan, dockerfile, pins, cert)
    _add_wheels(files, (*snapshot.distributions, *(snapshot.runner_distributions if runner_pins is None else ())))
    folder = plan.notebook_folder
    _add_work_files(files, snapshot, spec, notebook, folder)
    secrets = {name: config.secret_values[name] for name in plan.secret_args if name in config.secret_values}
    _check_no_secrets(files.items, list(secrets.values()))

    digest = content_hash(plan.base_image, files.items)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.jc-tmp-", dir=out_dir.parent))
    try:
        _write_tree(tmp, files.items)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildContext(
        path=out_dir,
        content_hash=digest,
        image_tag=f"jupyter-containerize/{slug(notebook.stem)}:{digest[:16]}",
        base_image=plan.base_image,
        dockerfile=dockerfile,
        notebook_in_container=f"{WORK_DIR_IN_CONTAINER}/{in_work(folder, notebook.name)}",
        build_args=secrets,
        files=tuple(sorted(files.items)),
        warnings=tuple(dict.fromkeys(warnings + files.warnings)),
        buildkit=plan.buildkit,
        indexes=plan.lock_indexes(),
        index_project=next((d.name for d in snapshot.distributions if d.source == "index"), None),
        trusted_hosts=plan.trusted_hosts,
        offline=plan.carry_uv and not plan.system_packages and not plan.needs_git,
    )


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that is a file, or a folder holding something other than a previous context."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ContextError(f"{out_dir} exists and is not a folder", "Choose another output folder.")
        if any(out_dir.iterdir()) and not _is_previous_context(out_dir):
            raise ContextError(f"{out_dir} is not empty and is not a build context written by jupyter-containerize",
                               "Choose an empty or new folder; nothing was written.")


def _read_cert(cert_file: Path | None) -> tuple[bytes | None, list[str]]:
    """The pip CA bundle's bytes (``None``: none, or unreadable), and a warning when it cannot be read."""
    if cert_file is None:
        return None, []
    try:
        return Path(cert_file).read_bytes(), []
    except OSError as exc:
        return None, [f"The pip CA bundle {cert_file} cannot be read ({exc.strerror}); builds "
                      "behind a TLS-intercepting proxy will fail."]


def _add_image_files(files: _Files, plan: Plan, dockerfile: str, pins: Sequence[PinnedDistribution],
                     cert: bytes | None) -> None:
    """The Dockerfile, the locks, the runner and its shim, the CA bundle and the tools the build needs."""
    files.add("Dockerfile", dockerfile.encode("utf-8"))
    files.add("requirements.lock", plan.requirements_lock.encode("utf-8"))
    if plan.kernel_lock is not None:
        files.add("kernel.lock", plan.kernel_lock.encode("utf-8"))
    files.add("runner.lock", locks.runner_lock(pins).encode("utf-8"))
    files.add("jc/runner.py", RUNNER_SOURCE.read_bytes())
    files.add("jc/parameters_cell.py", PARAMETERS_CELL_SOURCE.read_bytes())
    files.add("jc/papermill_record.py", PAPERMILL_RECORD_SOURCE.read_bytes())
    files.add("jc/shim/jupyter_containerize/__init__.py", SHIM_INIT)
    files.add("jc/shim/jupyter_containerize/metrics.py", METRICS_SOURCE.read_bytes())
    files.add("jc/shim/jupyter_containerize/injob.py", INJOB_SOURCE.read_bytes())
    files.add("jc/shim/jupyter_containerize/injob_pip.py", INJOB_PIP_SOURCE.read_bytes())
    files.add("jc/share/kernels/python3/kernel.json", kernel_json())
    if plan.buildkit:
        files.add("build/precompile.py", PRECOMPILE_SOURCE.read_bytes())
        for rel, text in precompile_lists(plan).items():
            files.add(rel, text.encode("utf-8"))
    if cert is not None:
        files.add("certs/ca.crt", cert)
    if plan.carry_uv:
        uv = find_uv()
        if uv is None:
            raise ContextError("A build without a package index needs this machine's uv to carry, and none is "
                               "installed", "Install uv (pip install uv), or build without --wheels-from-kernel.")
        files.add("tools/uv", Path(uv))


def _add_wheels(files: _Files, pins: Sequence[PinnedDistribution]) -> None:
    """The wheel files of the ``local-wheel`` pins."""
    for pin in pins:
        if pin.source == "local-wheel":
            if pin.wheel_path is None or not Path(pin.wheel_path).is_file():
                raise ContextError(f"The wheel built for {pin.name} is missing ({pin.wheel_path})",
                                   "Capture the environment again.")
            files.add(f"wheels/{Path(pin.wheel_path).name}", Path(pin.wheel_path))


def _add_work_files(files: _Files, snapshot: EnvironmentSnapshot, spec: JobSpec | None, notebook: Path,
                    folder: str) -> None:
    """The work folder: local modules, ``--include`` paths, the notebook, the data folders; and .dockerignore."""
    nb_dir = notebook.parent
    for module in sorted(snapshot.local_modules):
        files.add_local(module, forced=False, folder=folder)
    included: list[str] = []
    for raw in sorted(spec.build.include if spec is not None else ()):
        rel = _include_rel(raw, nb_dir)
        files.add_local(rel, forced=True, folder=folder)
        included.append("work/" + in_work(folder, rel) if folder or rel != "." else "work")
    files.add(f"work/{in_work(folder, notebook.name)}", normalized_notebook(notebook))
    for rel in snapshot.data_paths:  # folders that data is mounted into stay the job user's, so it can write there
        parent = posixpath.dirname(posixpath.normpath(rel))
        if parent and parent != "..":
            files.add(f"work/{in_work(folder, parent)}/", b"")
    try:
        files.add(".dockerignore", dockerignore(tuple(included)).encode("utf-8"))
    except ValueError as exc:
        raise OptionError(f"An --include path cannot be used: {exc}", "Rename the file.") from None


def _include_rel(raw: str, nb_dir: Path) -> str:
    """An ``--include`` path as a path relative to the notebook's folder."""
    path = Path(raw)
    if not path.is_absolute():
        near = nb_dir / path
        path = near if near.exists() or not Path(raw).exists() else Path(os.path.abspath(raw))
    resolved = _inside(nb_dir, os.path.relpath(path, nb_dir), "--include path")
    return resolved.relative_to(nb_dir).as_posix() if resolved != nb_dir else "."
