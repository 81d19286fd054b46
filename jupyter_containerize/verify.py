"""``jupyter containerize verify NOTEBOOK|JOB``: does the rebuilt image reproduce the notebook?

Two checks, both reported in full:

1. Environment: the image's Python version and installed distributions (read with
   ``importlib.metadata`` by the user venv's own interpreter, ``/opt/venv/bin/python``:
   uv venvs have no pip) against the captured snapshot; every missing or different pin
   is a drift.
2. Outputs: the notebook runs ``runs`` times in the image (the same runner and hardening as a
   job) and each code cell's outputs are compared with a reference: the outputs saved in the
   notebook, or, for a notebook saved without outputs (``against="kernel"``), as many runs of it in
   its own kernel (nbclient, the kernel's interpreter, a copy of the notebook's folder, the same
   parameters and environment). Outputs are masked first (:mod:`.output_masks`: install paths,
   clocks, elapsed times, addresses, stream interleaving), then text is compared exactly and numbers
   within ``rtol``; images by content hash.

A cell is *reproduced* when its outputs agree; *nondeterministic* when they differ between two runs
of one side (no image can reproduce it); *drift* when the runs of each side agree but the sides
differ; *unchecked* when there is nothing to compare it with (never run in the saved notebook, past
the cell where the reference run stopped, or a ``pip install`` line, whose report differs in a job
by design).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ContainerizeError
from .jobspec import WORK_DIR_IN_CONTAINER, JobSpec
from .notebook_file import read_notebook
from .output_masks import BINARY_MIMES, is_install_cell, mask_outputs
from .papermill_record import output_notebook_name
from .render.dockerfile import VENV as IMAGE_VENV

if TYPE_CHECKING:
    from .backends.docker import DockerBackend
    from .jobs.manager import JobManager

USER_PYTHON = f"{IMAGE_VENV}/bin/python"
_PROBE = ("import importlib.metadata as m, json, platform; print(json.dumps({'python': platform.python_version(), "
          "'dists': {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_SHOWN = 160  # characters of a differing line shown

Against = Literal["kernel", "saved"]
CellStatus = Literal["reproduced", "nondeterministic", "drift", "unchecked"]


class VerifyError(ContainerizeError):
    """Verification could not run."""


@dataclass(frozen=True)
class CellResult:
    """One code cell, numbered as ``run`` numbers it (1-based among code cells)."""

    number: int
    total: int
    status: CellStatus
    source_line: str = ""
    where: str = ""  # nondeterministic: which runs differ; unchecked: why
    line: int = 0  # 1-based output line of the first difference
    expected: str = ""
    found: str = ""
    labels: tuple[str, str] = ("expected", "found")  # of the two lines shown: the reference's, the image's

    @property
    def ok(self) -> bool:
        """Not a drift: the image is not at fault for this cell."""
        return self.status != "drift"


@dataclass
class VerifyReport:
    """What ``verify`` found; ``ok`` when no package and no cell drifted."""

    image: str
    python_expected: str = ""
    python_found: str = ""
    drifts: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    run_error: str = ""
    reference_error: str = ""
    pins_checked: int = 0
    against: Against = "saved"
    runs: int = 1
    kernel: str = ""  # the kernel's interpreter, for a kernel reference

    def count(self, status: CellStatus) -> int:
        return sum(c.status == status for c in self.cells)

    @property
    def reproduced(self) -> int:
        return self.count("reproduced")

    @property
    def ok(self) -> bool:
        return not self.drifts and not self.count("drift")

    def summary(self) -> str:
        """``reproduced 42 of 44 cells; 2 nondeterministic; 0 drift`` (and the unchecked, if any)."""
        text = (f"reproduced {self.reproduced} of {len(self.cells)} cells; {self.count('nondeterministic')} "
                f"nondeterministic; {self.count('drift')} drift")
        unchecked = self.count("unchecked")
        return text + (f"; {unchecked} unchecked" if unchecked else "")

    def text(self) -> str:
        lines = [f"image {self.image}"]
        same = self.python_expected == self.python_found
        lines.append(f"Python: captured {self.python_expected}, image {self.python_found}" + ("" if same else "  DRIFT"))
        if self.drifts:
            lines.append(f"{len(self.drifts)} package drift(s):")
            lines += [f"  - {d}" for d in self.drifts]
        else:
            lines.append(f"packages: all {self.pins_checked} captured pins installed at their versions")
        if self.extras:
            lines.append(f"{len(self.extras)} package(s) in the image beyond the capture (runner/kernel support): "
                         + ", ".join(self.extras[:12]) + (" …" if len(self.extras) > 12 else ""))
        times = _times(self.runs)
        reference = (f"the notebook run {times} in its kernel ({self.kernel})" if self.against == "kernel"
                     else "the outputs saved in the notebook")
        lines.append(f"outputs: run {times} in the image, compared with {reference}")
        if self.reference_error:
            lines.append(f"the run in the kernel failed: {self.reference_error}")
        if self.run_error:
            lines.append(f"the run in the image failed: {self.run_error}")
        for c in self.cells:
            if c.status in ("reproduced", "unchecked"):
                continue
            what = f"nondeterministic: {c.where} differ" if c.status == "nondeterministic" else "drift"
            lines.append(f"  cell {c.number} of {c.total} ({c.source_line[:60]}) {what} at output line {c.line}:")
            width = max(len(label) for label in c.labels) + 1
            shown = zip(c.labels, (c.expected, c.found), strict=True)
            lines += [f"      {label + ':':<{width}} {text}" for label, text in shown]
        unchecked = [c for c in self.cells if c.status == "unchecked"]
        if unchecked:
            lines.append("  unchecked: " + "; ".join(f"cell {c.number} ({c.where})" for c in unchecked))
        lines.append(self.summary())
        if not self.ok:
            lines.append("NOT reproduced")
        elif self.count("nondeterministic") or unchecked:
            lines.append("verified: the image reproduces every deterministic cell"
                         + (" with a reference" if unchecked else ""))
        else:
            lines.append("verified: the image reproduces the notebook")
        return "\n".join(lines)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


# -- environment -----------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_drift(pins: Sequence[tuple[str, str]], installed: dict[str, str],
                  python_expected: str, python_found: str) -> tuple[list[str], list[str]]:
    """Drifts (missing or other-version pins, a different Python) and extras, from plain values."""
    found = {_norm(k): v for k, v in installed.items()}
    drifts = []
    if python_expected != python_found:
        drifts.append(f"python: captured {python_expected}, image {python_found}")
    for name, version in pins:
        have = found.get(_norm(name))
        if have is None:
            drifts.append(f"{name}: captured {version}, missing from the image")
        elif have != version:
            drifts.append(f"{name}: captured {version}, image {have}")
    pinned = {_norm(n) for n, _ in pins}
    extras = sorted(f"{k}=={v}" for k, v in found.items() if k not in pinned)
    return drifts, extras


# -- outputs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Runs:
    """The executed copies of the notebook from one side, and the absolute paths their outputs name."""

    label: str  # "saved", "kernel" or "image": whose runs differ, in the report
    notebooks: Sequence[Any]
    paths: Mapping[str, str] = field(default_factory=dict)


Line = tuple[str, bool]  # (text, compared exactly)
NOT_EXECUTED: list[Line] = [("(not executed)", True)]


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def output_lines(outputs: Sequence[Mapping[str, Any]], paths: Mapping[str, str] | None = None) -> list[Line]:
    """A cell's outputs, masked, as the lines verify compares and shows: ``stdout: …``, ``text/plain: …``,
    ``image/png: sha256:…``, ``error: ValueError: …`` (a traceback's frames are not compared)."""
    lines: list[Line] = []
    for o in mask_outputs(outputs, paths):
        kind = o["output_type"]
        if kind == "stream":
            lines += [(f"{o['name']}: {ln}", False) for ln in o["text"].splitlines()]
        elif kind == "error":
            lines.append((f"error: {o['ename']}: {o['evalue']}".rstrip(), False))
        elif kind in ("execute_result", "display_data"):
            data = o["data"]
            for mime in sorted(data, key=lambda m: (m != "text/plain", m)):  # the readable one first
                value = data[mime]
                if mime in BINARY_MIMES:
                    blob = base64.b64decode(_text(value).replace("\n", ""))
                    lines.append((f"{mime}: sha256:{hashlib.sha256(blob).hexdigest()}", True))
                elif isinstance(value, str):
                    lines += [(f"{mime}: {ln}", False) for ln in value.splitlines()]
                else:
                    lines.append((f"{mime}: {json.dumps(value, sort_keys=True)}", False))
    return lines


def texts_match(expected: str, found: str, rtol: float) -> bool:
    """Equal text outside numbers; numbers equal within ``rtol``."""
    if expected == found:
        return True
    if _NUMBER.split(expected) != _NUMBER.split(found):
        return False
    a, b = _NUMBER.findall(expected), _NUMBER.findall(found)
    return len(a) == len(b) and all(math.isclose(float(x), float(y), rel_tol=rtol, abs_tol=0.0)
                                    for x, y in zip(a, b, strict=True))


def first_difference(expected: Sequence[Line], found: Sequence[Line], rtol: float) -> tuple[int, str, str] | None:
    """The first differing line (1-based number, expected text, found text), or ``None`` when they agree."""
    end = "(end of output)"
    for i in range(max(len(expected), len(found))):
        if i >= len(expected) or i >= len(found):
            a, b = expected[i][0] if i < len(expected) else end, found[i][0] if i < len(found) else end
        else:
            (a, exact), (b, _) = expected[i], found[i]
            if a == b if exact else texts_match(a, b, rtol):
                continue
        return i + 1, _short(a), _short(b)
    return None


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + " …"


def _code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def _executed(cell: Mapping[str, Any]) -> bool:
    return cell.get("execution_count") is not None or bool(cell.get("outputs"))


def _cell_lines(cells: Sequence[Any], index: int, paths: Mapping[str, str]) -> list[Line]:
    if index >= len(cells) or not _executed(cells[index]):
        return NOT_EXECUTED
    return output_lines(cells[index].get("outputs", []), paths)


def compare_runs(reference: Runs, image: Runs, rtol: float) -> list[CellResult]:
    """Every code cell of the reference: reproduced, nondeterministic, drift or unchecked (see the module)."""
    ref_cells = [_code_cells(nb) for nb in reference.notebooks]
    img_cells = [_code_cells(nb) for nb in image.notebooks] or [[]]
    total = len(ref_cells[0])
    results = []
    for i, cell in enumerate(ref_cells[0]):
        source = _text(cell.get("source", ""))
        first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
        why = _unchecked(cell, source, reference.label)
        if why:
            results.append(CellResult(i + 1, total, "unchecked", first, why))
            continue
        ref_views = [_cell_lines(cells, i, reference.paths) for cells in ref_cells]
        img_views = [_cell_lines(cells, i, image.paths) for cells in img_cells]
        unstable = _unstable(ref_views, reference.label, rtol) or _unstable(img_views, image.label, rtol)
        if unstable:
            where, k, between = unstable
            results.append(CellResult(i + 1, total, "nondeterministic", first, where, *between,
                                      labels=("run 1", f"run {k}")))
            continue
        diff = first_difference(ref_views[0], img_views[0], rtol)
        results.append(CellResult(i + 1, total, "drift", first, "", *diff) if diff
                       else CellResult(i + 1, total, "reproduced", first))
    return results


def _unstable(views: Sequence[Sequence[Line]], label: str,
              rtol: float) -> tuple[str, int, tuple[int, str, str]] | None:
    """The first run of one side whose lines differ from its run 1: (which runs, run number, difference)."""
    for k in range(2, len(views) + 1):
        diff = first_difference(views[0], views[k - 1], rtol)
        if diff:
            return f"the runs 1 and {k} in the {label}", k, diff
    return None


def _unchecked(cell: Mapping[str, Any], source: str, label: str) -> str:
    """Why a reference cell cannot be compared, or ``""``."""
    if is_install_cell(source):
        return "a pip install line: its report differs in a job by design"
    if "injected-parameters" in cell.get("metadata", {}).get("tags", []) and label == "saved":
        return "the injected parameters"
    if not _executed(cell):
        return "never run in the saved notebook" if label == "saved" else "the run in the kernel stopped before it"
    return ""


# -- the reference: the notebook in its own kernel -------------------------------------------------

def kernel_of(spec: JobSpec) -> tuple[str, dict[str, str]]:
    """The kernel's interpreter and its kernelspec's environment, as capture chose them."""
    if spec.build.python:
        return spec.build.python, {}
    from .capture.interpreter import kernel_spec

    return kernel_spec(spec.notebook)


def install_prefix(python: str) -> str:
    """``sys.prefix`` of ``python`` (a venv's folder), or ``""`` when it cannot be asked."""
    try:
        done = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def reference_notebook(spec: JobSpec, *, clear: bool) -> Any:
    """The notebook as the runner executes it: the spec's parameters injected (papermill-style, by the runner's
    own rule); ``clear``: without outputs and execution counts, as the image holds it."""
    from .runner.main import inject_parameters

    nb = read_notebook(Path(spec.notebook))
    if clear:
        for cell in _code_cells(nb):
            cell["outputs"] = []
            cell["execution_count"] = None
    if spec.parameters:
        inject_parameters(nb, dict(spec.parameters))
    return nb


def _copy_folder(source: Path, dest: Path, scratch: Path) -> None:
    """A fresh copy of the notebook's folder: what the notebook reads, without job folders, caches, VCS and venvs."""
    from .render.ignore import skip_dir

    def ignored(folder: str, names: list[str]) -> list[str]:
        here = Path(folder)
        return [n for n in names if (skip_dir(n) and (here / n).is_dir()) or here / n == scratch]

    shutil.copytree(source, dest, symlinks=True, ignore=ignored)


def run_in_kernel(spec: JobSpec, python: str, kernel_env: Mapping[str, str], scratch: Path) -> tuple[Any, str]:
    """Execute the notebook with nbclient in its own kernel, in a copy of its folder: (executed notebook, error).

    The kernel gets this process's environment (less ``JC_*``), the kernelspec's and the spec's ``-e``
    variables; the run stops at the first failing cell, as a job does.

    Raises:
        VerifyError: the kernel did not start (no ipykernel in that interpreter?).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    folder = scratch / "work"  # the same path at every run, as /work is in the image
    shutil.rmtree(folder, ignore_errors=True)
    _copy_folder(Path(spec.notebook).resolve().parent, folder, scratch)
    kernels = scratch / "kernels"
    (kernels / "jc-verify").mkdir(parents=True, exist_ok=True)
    (kernels / "jc-verify" / "kernel.json").write_text(json.dumps({
        # the kernel's own log stays quiet, as in the image (its TCP warning is about a loopback connection)
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.log_level=ERROR"],
        "display_name": "the notebook's kernel", "language": "python", "env": dict(kernel_env)}))
    km = AsyncKernelManager(kernel_name="jc-verify", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    nb = reference_notebook(spec, clear=True)
    client = NotebookClient(nb, km=km, kernel_name="jc-verify", timeout=None, allow_errors=False,
                            resources={"metadata": {"path": str(folder)}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("JC_")}
    env.update(spec.env)
    try:
        client.execute(env=env, cwd=str(folder))
    except CellExecutionError as e:
        return nb, f"{e.ename}: {e.evalue}"
    except Exception as e:  # noqa: BLE001 - nbclient raises RuntimeError and others when a kernel dies
        if not any(c.get("execution_count") for c in _code_cells(nb)):
            raise VerifyError(f"The notebook's kernel ({python}) did not start: {type(e).__name__}: {e}",
                              "Check that ipykernel is installed in that interpreter, or compare with the "
                              "saved outputs (--against saved).") from None
        return nb, f"{type(e).__name__}: {e}"
    finally:
        with contextlib.suppress(Exception):  # already gone
            run_sync(km.shutdown_kernel)(now=True)  # nbclient leaves a kernel it was handed running
    return nb, ""


# -- orchestration ---------------------------------------------------------------------------------

def verify(spec: JobSpec | None, target: str | None, rtol: float = 1e-6, *, against: Against | None = None,
           runs: int = 2, manager: JobManager | None = None) -> VerifyReport:
    """Verify a notebook (build its image as `build` would) or a finished job's image (``target`` = job id)."""
    from .backends.builder import build_image
    from .capture import capture
    from .jobs.manager import JobManager
    from .jobs.pipeline import prepare

    manager = manager or JobManager()
    if spec is not None:
        prepared = prepare(spec)
        try:
            image = build_image(prepared.context, lambda e: None, no_cache=spec.build.no_cache).reference
        finally:
            prepared.cleanup()
        snapshot = prepared.snapshot
    else:
        if not target:
            raise VerifyError("Nothing to verify", "Give a notebook or a job id.")
        record = manager.store.get(target)
        spec = JobSpec.from_dict(record.spec)
        image = record.digest or record.image_id or record.image_tag
        if not image:
            raise VerifyError(f"Job {record.id} has no image recorded", "Verify the notebook instead.")
        snapshot = capture(spec.notebook, spec.build.python, freeze=spec.build.freeze)
    return verify_image(image, spec, [(p.name, p.version) for p in snapshot.distributions], snapshot.python_version,
                        rtol, against=against, runs=runs, manager=manager)


def has_saved_outputs(nb: Any) -> bool:
    """Whether any code cell of the notebook was saved with outputs."""
    return any(c.get("outputs") for c in _code_cells(nb))


def verify_image(image: str, spec: JobSpec, pins: Sequence[tuple[str, str]], python_version: str,
                 rtol: float = 1e-6, *, against: Against | None = None, runs: int = 2,
                 manager: JobManager | None = None) -> VerifyReport:
    """Both checks against an existing image; ``against``: ``None`` picks the saved outputs when the
    notebook has some, else runs in its kernel. The image runs through ``manager`` (default: a new one
    on the default store) and its Docker backend."""
    if runs < 1:
        raise VerifyError(f"--runs {runs} is not a number of runs", "Give 1 or more (2 finds nondeterministic cells).")
    if manager is None:
        from .jobs.manager import JobManager

        manager = JobManager()
    report = VerifyReport(image=image, python_expected=python_version, pins_checked=len(pins), runs=runs)
    probe = _probe_image(image, manager)
    report.python_found = str(probe["python"])
    report.drifts, report.extras = package_drift(pins, dict(probe["dists"]), python_version, report.python_found)

    saved = reference_notebook(spec, clear=False)
    report.against = against or ("saved" if has_saved_outputs(saved) else "kernel")
    notebook_dir = str(Path(spec.notebook).resolve().parent)
    try:
        python, kernel_env = kernel_of(spec)
    except ContainerizeError:
        if report.against == "kernel":
            raise
        python, kernel_env = "", {}  # saved outputs: the kernel only names the install prefix to mask
    prefix = install_prefix(python) if python else ""
    host_paths = {notebook_dir: "<cwd>", **({prefix: "<venv>"} if prefix else {})}
    scratch = Path(tempfile.mkdtemp(prefix="jc-verify-"))
    try:
        if report.against == "kernel":
            report.kernel = python
            kernel_runs = []
            for _ in range(runs):
                nb, error = run_in_kernel(spec, python, kernel_env, scratch)
                kernel_runs.append(nb)
                report.reference_error = report.reference_error or error
            reference = Runs("kernel", kernel_runs, {**host_paths, str(scratch / "work"): "<cwd>"})
        else:
            reference = Runs("saved", [saved], host_paths)
        executed = []
        for _ in range(runs):
            nb, error = rerun(image, spec, manager)
            executed.append(nb or {"cells": []})
            report.run_error = report.run_error or error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    image_runs = Runs("image", executed, {IMAGE_VENV: "<venv>", WORK_DIR_IN_CONTAINER: "<cwd>"})
    report.cells = compare_runs(reference, image_runs, rtol)
    return report


def _probe_image(image: str, manager: JobManager) -> dict[str, Any]:
    """The image's Python version and distributions, read by its user venv's interpreter."""
    raw = _docker(manager).run_command(image, ["-c", _PROBE], entrypoint=USER_PYTHON)
    try:
        return dict(json.loads(raw.strip().splitlines()[-1]))
    except (ValueError, IndexError) as e:
        raise VerifyError(f"The image's environment could not be read ({e})", "Rebuild the image.") from None


def _docker(manager: JobManager) -> DockerBackend:
    """The manager's Docker backend: verify runs images on the local engine, whatever the job's backend."""
    from .backends.docker import DockerBackend

    backend = manager.backend("docker")
    if not isinstance(backend, DockerBackend):
        raise VerifyError(f"verify needs the local Docker engine; the docker backend here is {type(backend).__name__}",
                          "Verify on a machine whose docker backend is the built-in one.")
    return backend


def rerun(image: str, spec: JobSpec, manager: JobManager | None = None) -> tuple[dict[str, Any] | None, str]:
    """Execute the notebook in ``image`` as a job of ``manager`` (recorded while it runs, then removed);
    the executed notebook, or an error."""
    from .backends.base import ImageRef

    if manager is None:
        from .jobs.manager import JobManager

        manager = JobManager()
    out = Path(tempfile.mkdtemp(prefix="jc-verify-"))
    try:
        job = manager.submit(spec.with_changes(backend="docker", output_dir=out, wait=False, detach=False),
                             image=ImageRef(tag=image, image_id=""))
        try:
            record = job.wait()
        except KeyboardInterrupt:
            job.cancel()
            job.wait(timeout=60)
            raise
        finally:
            manager.remove(job.id)
        executed = out / output_notebook_name(Path(spec.notebook).name, job.id)
        data = json.loads(executed.read_text()) if executed.is_file() else None
        error = "" if record.status == "succeeded" else (record.error or f"the job {record.status}")
        return data, error
    finally:
        shutil.rmtree(out, ignore_errors=True)
