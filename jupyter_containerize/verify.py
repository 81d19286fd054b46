"""``jupyter containerize verify NOTEBOOK|JOB``: does the rebuilt image reproduce the notebook?

Two checks, both reported in full:

1. Environment: the image's Python version and installed distributions (read with
   ``importlib.metadata`` by the user venv's own interpreter, ``/opt/venv/bin/python``:
   uv venvs have no pip) against the captured snapshot; every missing or different pin
   is a drift.
2. Outputs: the notebook runs again in the image (the same runner and hardening as a
   job) and each code cell's outputs are compared with the ones saved in the notebook:
   text and streams exactly, numbers within ``rtol``, images by content hash, memory
   addresses (``0x7f…``) ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContainerizeError
from .jobspec import JobSpec
from .notebook_file import read_notebook

USER_PYTHON = "/opt/venv/bin/python"
_PROBE = ("import importlib.metadata as m, json, platform; print(json.dumps({'python': platform.python_version(), "
          "'dists': {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml", "application/pdf")


class VerifyError(ContainerizeError):
    """Verification could not run."""


@dataclass(frozen=True)
class CellResult:
    """One code cell: reproduced or not, and how it differs."""

    index: int  # 0-based among code cells
    ok: bool
    first_line: str = ""
    expected: str = ""
    found: str = ""


@dataclass
class VerifyReport:
    """What ``verify`` found; ``ok`` only when nothing drifted and every cell reproduced."""

    image: str
    python_expected: str = ""
    python_found: str = ""
    drifts: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    run_error: str = ""
    pins_checked: int = 0

    @property
    def reproduced(self) -> int:
        return sum(c.ok for c in self.cells)

    @property
    def ok(self) -> bool:
        return not self.drifts and not self.run_error and all(c.ok for c in self.cells)

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
        if self.run_error:
            lines.append(f"re-execution failed: {self.run_error}")
        lines.append(f"{self.reproduced} of {len(self.cells)} cells reproduced")
        for c in self.cells:
            if not c.ok:
                lines.append(f"  cell {c.index} ({c.first_line[:60]}) differs:")
                lines += ["    saved: " + _indent(c.expected), "    now:   " + _indent(c.found)]
        lines.append("verified: the image reproduces the notebook" if self.ok else "NOT reproduced")
        return "\n".join(lines)


def _indent(text: str) -> str:
    text = text if len(text) <= 800 else text[:800] + " …"
    return text.replace("\n", "\n           ")


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

def normalized_outputs(outputs: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """A cell's outputs as comparable tuples: streams merged, images hashed, counts and metadata dropped."""
    out: list[tuple[str, ...]] = []
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream":
            text = _text(o.get("text", ""))
            if out and out[-1][0] == "stream" and out[-1][1] == o.get("name"):
                out[-1] = ("stream", out[-1][1], out[-1][2] + text)
            else:
                out.append(("stream", str(o.get("name")), text))
        elif kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            for mime in sorted(data):
                value = data[mime]
                if mime in _IMAGE_MIMES:
                    raw = _text(value)
                    blob = raw.encode() if mime == "image/svg+xml" else base64.b64decode(raw.replace("\n", ""))
                    out.append(("data", mime, "sha256:" + hashlib.sha256(blob).hexdigest()))
                elif isinstance(value, dict) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
                    out.append(("data", mime, json.dumps(value, sort_keys=True)))
                else:
                    out.append(("data", mime, _text(value)))
        elif kind == "error":
            out.append(("error", str(o.get("ename")), str(o.get("evalue"))))
    return out


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def texts_match(expected: str, found: str, rtol: float) -> bool:
    """Equal text outside numbers; numbers equal within ``rtol``; memory addresses ignored."""
    expected, found = _ADDRESS.sub("0x…", expected), _ADDRESS.sub("0x…", found)
    if expected == found:
        return True
    if _NUMBER.split(expected) != _NUMBER.split(found):
        return False
    a, b = _NUMBER.findall(expected), _NUMBER.findall(found)
    return len(a) == len(b) and all(math.isclose(float(x), float(y), rel_tol=rtol, abs_tol=0.0) for x, y in zip(a, b))


def outputs_match(expected: list[tuple[str, ...]], found: list[tuple[str, ...]], rtol: float) -> bool:
    if len(expected) != len(found):
        return False
    for e, f in zip(expected, found):
        if e[:2] != f[:2]:
            return False
        if e[0] == "data" and e[1] in _IMAGE_MIMES:
            if e[2] != f[2]:
                return False
        elif not texts_match(e[2], f[2], rtol):
            return False
    return True


def compare_notebooks(saved: dict[str, Any], executed: dict[str, Any], rtol: float) -> list[CellResult]:
    """Cell-by-cell comparison of two notebooks' code-cell outputs (both as nbformat JSON dicts)."""
    old = [c for c in saved.get("cells", []) if c.get("cell_type") == "code"]
    new = [c for c in executed.get("cells", []) if c.get("cell_type") == "code"]
    results = []
    for i, cell in enumerate(old):
        source = _text(cell.get("source", ""))
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        first = source.strip().splitlines()[0] if source.strip() else ""
        e = normalized_outputs(cell.get("outputs", []))
        missing: list[tuple[str, ...]] = [("missing", "cell", "not executed")]
        f = normalized_outputs(new[i].get("outputs", [])) if i < len(new) else missing
        ok = outputs_match(e, f, rtol)
        results.append(CellResult(i, ok, first, "" if ok else _show(e), "" if ok else _show(f)))
    return results


def _show(outputs: list[tuple[str, ...]]) -> str:
    return "\n".join(f"[{o[0]}:{o[1]}] {o[2].rstrip()}" for o in outputs) or "(no output)"


# -- orchestration ---------------------------------------------------------------------------------

def verify(spec: JobSpec | None, target: str | None, rtol: float = 1e-6) -> VerifyReport:
    """Verify a notebook (build its image as `build` would) or a finished job's image (``target`` = job id)."""
    from .backends.builder import build_image
    from .capture import capture
    from .jobs.pipeline import prepare

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
        from .jobs.store import JobStore

        record = JobStore().get(target)
        spec = JobSpec.from_dict(record.spec)
        image = record.digest or record.image_id or record.image_tag
        if not image:
            raise VerifyError(f"Job {record.id} has no image recorded", "Verify the notebook instead.")
        snapshot = capture(spec.notebook, spec.build.python, freeze=spec.build.freeze)
    return verify_image(image, spec, [(p.name, p.version) for p in snapshot.distributions], snapshot.python_version,
                        rtol)


def verify_image(image: str, spec: JobSpec, pins: Sequence[tuple[str, str]], python_version: str,
                 rtol: float = 1e-6) -> VerifyReport:
    """Both checks against an existing image."""
    import docker.errors

    from .backends.engine import connect

    client = connect()
    try:
        try:
            raw = client.containers.run(image, ["-c", _PROBE], entrypoint=USER_PYTHON, remove=True,
                                        read_only=True, network_mode="none", cap_drop=["ALL"])
            probe = json.loads(raw.decode().strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            raise VerifyError(f"The image's environment could not be read ({e})", "Rebuild the image.") from None
        except docker.errors.DockerException as e:  # image missing, no /opt/venv
            raise VerifyError(f"The image {image} could not be inspected ({e})", "Build it first.") from None
    finally:
        client.close()
    report = VerifyReport(image=image, python_expected=python_version, python_found=str(probe["python"]))
    report.pins_checked = len(pins)
    report.drifts, report.extras = package_drift(pins, dict(probe["dists"]), python_version, report.python_found)
    saved = read_notebook(Path(spec.notebook))
    executed, error = rerun(image, spec)
    report.run_error = error
    report.cells = compare_notebooks(saved, executed or {"cells": []}, rtol)
    return report


def rerun(image: str, spec: JobSpec) -> tuple[dict[str, Any] | None, str]:
    """Execute the notebook in ``image`` as a job would; the executed notebook, or an error."""
    from .backends.base import ImageRef, RunRequest
    from .backends.docker import DockerBackend
    from .events import Finished

    out = Path(tempfile.mkdtemp(prefix="jc-verify-"))
    backend = DockerBackend()
    job_id = "verify-" + hashlib.sha256(str(out).encode()).hexdigest()[:10]
    request = RunRequest(job_id=job_id, image=ImageRef(tag=image, image_id=""), spec=spec,
                         output_dir=out)
    ends: list[Finished] = []
    try:
        ref = backend.start(request)
        try:
            outcome = backend.follow(job_id, ref, lambda e: ends.append(e) if isinstance(e, Finished) else None)
        finally:
            backend.remove(job_id, ref)
        executed = out / Path(spec.notebook).name
        data = json.loads(executed.read_text()) if executed.is_file() else None
        error = "" if outcome.exit_code == 0 else (ends[-1].error if ends else f"exit code {outcome.exit_code}")
        return data, error
    finally:
        shutil.rmtree(out, ignore_errors=True)
