"""The reproduction corpus: every notebook that runs in its kernel must run, the same, as a job.

Run: ``.venv/bin/python bench/corpus.py [--only NAME,...] [--jobs N] [--quick] [--keep-images]``.

Each folder of ``bench/corpus/`` holds one notebook as its author left it, the files it reads
and ``requirements.txt``, what the author pip-installed into a fresh venv. For each notebook:

1. the author's venv: ``uv venv --seed`` + ``uv pip install -r requirements.txt ipykernel`` on this
   interpreter, cached by recipe hash under ``~/.cache/jc-corpus/venvs/`` (``JC_CORPUS_CACHE``);
2. two native runs with nbclient, in that venv's kernel (a kernelspec naming its python, its
   ``bin`` first on ``PATH`` as an activated venv has it), each in a fresh copy of the folder:
   a code cell whose outputs differ between the two is non-deterministic and left out of the
   comparison;
3. one job (``jupyter containerize run NB --python VENV/bin/python``, through the same option
   parser and job manager as the CLI) in a third copy; its executed notebook in the job's output
   folder is compared, cell by cell, with the first native run;
4. (not with ``--quick``) the cold build of a new environment, as ``bench/run.py`` measures it
   (the rendered lock changed by a comment, so every step that depends on it runs), against the
   naive seed Dockerfile (``COPY . .`` + ``pip install -r``, ``--no-cache``) of the same lock.

Outputs are compared after the masks ``jupyter containerize verify`` applies
(``jupyter_containerize/output_masks.py``, stated in the results): stream text per stream name,
concatenated; install locations (``<site-packages>/``, ``<stdlib>/``), the absolute paths of the venv
and of the working folder (host or container) read as ``<venv>`` / ``<cwd>``; ipykernel's per-process
cell files (``/tmp/ipykernel_PID/``) as ``<ipykernel>/``; clocks, elapsed times and memory addresses.
Cells identical before masking are counted too. ``--jobs N`` builds venvs and runs the native
notebooks of N notebooks at once; jobs and builds run one at a time so that their timings are not
shared. Nothing is written into ``bench/corpus/``. Results: ``bench/results/corpus.json`` (a run of some notebooks keeps
the others' last results, and says so).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CORPUS = BENCH / "corpus"
RESULTS = BENCH / "results"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

# bench/run.py's helpers: the naive Dockerfile, the builds, image cleanup
from run import (  # noqa: E402 - needs the sys.path above
    RUN_ID,
    UV,
    Images,
    docker_build,
    log,
    machine,
    naive_folder,
    ours_build,
    spec_for,
    teed_builder,
)

from jupyter_containerize.output_masks import is_install_cell, mask_outputs  # noqa: E402 - needs the sys.path above
from jupyter_containerize.papermill_record import output_notebook_name  # noqa: E402

CACHE = Path(os.environ.get("JC_CORPUS_CACHE", Path.home() / ".cache" / "jc-corpus"))
FIND_LINKS = Path("/opt/wheels")  # this machine's torch CPU wheel (pip's find-links here)
KERNEL_NAME = "jc-corpus"
NATIVE_TIMEOUT = 300
JOB_TIMEOUT = 1800
CONTAINER_VENV = "/opt/venv"
TARGETS = {"jobs_run": 1.0, "identical_cells": 0.95, "cold_build_ratio": 0.35}
# Variables of this harness (and of a surrounding job or Jupyter) that an author's kernel would not have.
DROPPED_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MPLBACKEND", "JPY_SESSION_NAME", "JPY_PARENT_PID")


# -- the corpus ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One corpus folder: its notebook and the author's venv recipe."""

    name: str
    folder: Path

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.name}.ipynb"

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"


def entries(only: list[str] | None = None) -> list[Entry]:
    """The corpus's notebooks, by folder name; ``only`` picks some (an unknown name is an error)."""
    found = {p.name: Entry(p.name, p) for p in sorted(CORPUS.iterdir()) if (p / f"{p.name}.ipynb").is_file()}
    if not only:
        return list(found.values())
    unknown = [n for n in only if n not in found]
    if unknown:
        raise SystemExit(f"not in bench/corpus/: {', '.join(unknown)} (have: {', '.join(found)})")
    return [found[n] for n in only]


def recipe(entry: Entry) -> str:
    """What makes the author's venv: interpreter, requirements, the kernel and where torch comes from."""
    reqs = sorted(ln.strip() for ln in entry.requirements.read_text().splitlines()
                  if ln.strip() and not ln.lstrip().startswith("#"))
    links = sorted(p.name for p in FIND_LINKS.glob("*.whl")) if FIND_LINKS.is_dir() else []
    return json.dumps({"python": platform.python_version(), "requirements": reqs, "kernel": "ipykernel",
                       "seed": True, "find_links": links})


def recipe_hash(entry: Entry) -> str:
    return hashlib.sha256(recipe(entry).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def author_venv(entry: Entry) -> tuple[Path, float]:
    """The author's venv for ``entry`` (built once per recipe); returns (venv, seconds spent building)."""
    venv = CACHE / "venvs" / recipe_hash(entry)
    ready = venv / ".jc-corpus-ready"
    t = time.perf_counter()
    with locked(venv.with_suffix(".lock")):
        if ready.exists():
            return venv, 0.0
        shutil.rmtree(venv, ignore_errors=True)  # a half-built one
        subprocess.run([UV, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)
        links = ["--find-links", str(FIND_LINKS)] if FIND_LINKS.is_dir() else []
        done = subprocess.run([UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *links,
                               "-r", str(entry.requirements), "ipykernel"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"uv pip install -r {entry.name}/requirements.txt failed: {done.stderr.strip()}")
        (venv / "recipe.json").write_text(recipe(entry) + "\n")
        ready.touch()
    return venv, time.perf_counter() - t


def workdir(entry: Entry, root: Path, label: str) -> Path:
    """A fresh copy of the notebook's folder (the corpus itself is never written to)."""
    dest = root / entry.name / label
    shutil.copytree(entry.folder, dest, ignore=shutil.ignore_patterns("*.jc-jobs", "__pycache__", ".ipynb_checkpoints"))
    return dest / entry.notebook.name


# -- native runs ---------------------------------------------------------------------------------
def kernel_env(venv: Path) -> dict[str, str]:
    """The environment of a kernel started from the author's activated venv."""
    harness_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not k.startswith("JC_")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != harness_bin]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    return env


def write_kernelspec(venv: Path, root: Path) -> Path:
    """A kernelspec naming the venv's python (its folder is what a KernelSpecManager searches)."""
    kernels = root / "kernels" / venv.name
    spec = kernels / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"corpus ({venv.name})", "language": "python"}))
    return kernels


def run_native(notebook: Path, venv: Path, root: Path) -> tuple[Any, str, float]:
    """Execute ``notebook`` in place with nbclient in the venv's kernel: (executed nb, error or "", seconds)."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    ksm = KernelSpecManager(kernel_dirs=[str(write_kernelspec(venv, root))])
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    nb = nbformat.read(str(notebook), as_version=4)
    client = NotebookClient(nb, km=km, timeout=NATIVE_TIMEOUT, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(notebook.parent)}})
    error = ""
    t = time.perf_counter()
    try:
        client.execute(env=kernel_env(venv), cwd=str(notebook.parent))
    except Exception as e:  # noqa: BLE001 - a failing notebook is a result, not a crash
        error = f"{type(e).__name__}: {e}"
    finally:
        seconds = time.perf_counter() - t
        with contextlib.suppress(Exception):  # nbclient leaves a kernel it was handed running
            run_sync(km.shutdown_kernel)(now=True)
    return nb, error, seconds


# -- comparing outputs ---------------------------------------------------------------------------
def raw(outputs: list[Any]) -> str:
    return json.dumps([{k: v for k, v in o.items() if k != "execution_count"} for o in outputs], sort_keys=True)


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def short(outputs: list[dict[str, Any]], limit: int = 400) -> str:
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
        else:
            data = o.get("data", {})
            parts.append(data.get("text/plain", "") if "text/plain" in data else f"[{', '.join(data)}]")
            parts += [f"[{m}, {len(str(v))} chars]" for m, v in data.items() if m.startswith("image/")]
    text = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
    return text if len(text) <= limit else text[:limit] + "…"


def compare(native: list[tuple[Any, dict[str, str]]], job: tuple[Any, dict[str, str]] | None) -> dict[str, Any]:
    """Per code cell: deterministic (two native runs agree) and identical (the job agrees with them)."""
    (first, first_paths), (second, second_paths) = native
    cells_a, cells_b = code_cells(first), code_cells(second)
    cells_j = code_cells(job[0]) if job else []
    result: dict[str, Any] = {"code_cells": len(cells_a), "deterministic": 0, "identical": 0, "identical_raw": 0,
                              "non_deterministic_cells": [], "install_cells": [], "differences": []}
    for i, cell in enumerate(cells_a):
        if is_install_cell(cell.source):  # pip's own report natively, "already in the image: …" in a job
            result["install_cells"].append(i)
            continue
        a = mask_outputs(cell.get("outputs", []), first_paths)
        if a != mask_outputs(cells_b[i].get("outputs", []), second_paths):
            result["non_deterministic_cells"].append(i)
            continue
        result["deterministic"] += 1
        j = mask_outputs(cells_j[i].get("outputs", []), job[1]) if job and i < len(cells_j) else None
        if j == a:
            result["identical"] += 1
            result["identical_raw"] += raw(cell.get("outputs", [])) == raw(cells_j[i].get("outputs", []))
        else:
            result["differences"].append({"cell": i, "source": cell.source[:200], "native": short(a),
                                          "job": "(no cell)" if j is None else short(j)})
    return result


# -- jobs and builds -----------------------------------------------------------------------------
def run_job(notebook: Path, venv: Path, store: Path, images: Any | None) -> dict[str, Any]:
    """The notebook as a job: ``run NB --python VENV/bin/python``, as the CLI parses and submits it."""
    import nbformat

    from jupyter_containerize.events import BuildFinished, Finished, Log
    from jupyter_containerize.jobs.manager import JobManager
    from jupyter_containerize.jobs.store import JobStore

    spec = spec_for(notebook, "--python", str(venv / "bin" / "python"))
    t = time.perf_counter()
    printed: set[str] = set()
    with (images.building() if images else contextlib.nullcontext(printed)) as printed, teed_builder(printed):
        job = JobManager(JobStore(store)).submit(spec)
        record = job.wait(timeout=JOB_TIMEOUT)
    seconds = time.perf_counter() - t
    if images and record.image_tag:
        images.tags.add(record.image_tag)
    events = [e for _, e in job.events()]
    built = next((e for e in events if isinstance(e, BuildFinished)), None)
    finished = next((e for e in events if isinstance(e, Finished)), None)
    out: dict[str, Any] = {"id": job.id, "status": record.status, "seconds": round(seconds, 2),
                           "error": record.error or "", "image": record.image_tag,
                           "build_seconds": round(built.seconds, 2) if built else None,
                           "build_cached": built.cached if built else None,
                           "build_steps_run": built.steps_run if built else None,
                           "warnings": [e.text.strip() for e in events
                                        if isinstance(e, Log) and e.text.startswith("warning:")][:10]}
    if finished and finished.traceback:
        out["traceback"] = finished.traceback[-3000:]
    executed = Path(record.output_dir) / output_notebook_name(notebook.name, job.id) if record.output_dir else None
    out["output_notebook"] = str(executed) if executed else None
    out["nb"] = nbformat.read(str(executed), as_version=4) if executed and executed.exists() else None
    out["outputs"] = sorted(str(p.relative_to(record.output_dir)) for p in Path(record.output_dir).rglob("*")
                            if p.is_file() and p != executed) if record.output_dir else []
    return out


def measure_builds(entry: Entry, notebook: Path, venv: Path, root: Path, images: Any) -> dict[str, Any]:
    """Cold build of a new environment (bench/run.py's definition) vs the naive seed Dockerfile, same lock."""
    from jupyter_containerize.jobs.manager import prepare

    prepared = prepare(spec_for(notebook, "--python", str(venv / "bin" / "python")))
    try:
        ctx = prepared.context
        with (ctx.path / "requirements.lock").open("a") as f:
            f.write(f"# corpus {RUN_ID}\n")  # new to the engine: every lock-dependent step runs
        slug = re.sub(r"[^a-z0-9_.-]", "-", entry.name.lower())
        ours = ours_build(images, ctx, f"jc-bench/corpus-{slug}:cold-{RUN_ID}", no_cache=False)
        naive_root = root / entry.name / "naive-root"
        naive_root.mkdir(parents=True)
        folder = naive_folder(naive_root, notebook, ctx)
        # the author's folder as the naive Dockerfile's COPY . . sees it: data and helper modules too
        shutil.copytree(notebook.parent, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.ipynb", "*.jc-jobs", "__pycache__", "requirements.txt"))
        naive_s, _ = docker_build(images, folder, f"jc-bench/corpus-naive-{slug}:{RUN_ID}", no_cache=True)
        pins = sum(1 for ln in (ctx.path / "requirements.lock").read_text().splitlines()
                   if ln.strip() and not ln.startswith("#"))
        return {"cold_ours": round(ours["seconds"], 2), "cold_ours_steps_run": ours["steps_run"],
                "naive": round(naive_s, 2), "ratio": round(ours["seconds"] / naive_s, 3), "lock_pins": pins}
    finally:
        prepared.cleanup()


# -- one notebook --------------------------------------------------------------------------------
def native_phase(entry: Entry, root: Path) -> dict[str, Any]:
    """The author's side: venv and two native runs (no engine); JSON-able, for a worker process."""
    import nbformat

    out: dict[str, Any] = {"name": entry.name, "recipe_hash": recipe_hash(entry)}
    try:
        venv, out["venv_seconds"] = author_venv(entry)
    except Exception as e:  # noqa: BLE001
        out.update(venv=None, native_ok=False, native_error=f"venv: {e}", runs=[])
        return out
    out["venv"] = str(venv)
    runs = []
    for label in ("native-1", "native-2"):
        nb_path = workdir(entry, root, label)
        nb, error, seconds = run_native(nb_path, venv, root)
        runs.append({"workdir": str(nb_path.parent), "error": error, "seconds": round(seconds, 2),
                     "nb": nbformat.writes(nb)})
    out["runs"] = runs
    out["native_ok"] = not runs[0]["error"]
    out["native_error"] = runs[0]["error"]
    out["native_seconds"] = runs[0]["seconds"]
    return out


def job_phase(entry: Entry, native: dict[str, Any], root: Path, store: Path, images: Any | None,
              quick: bool) -> dict[str, Any]:
    """The job's side: run it as a job, compare with the native runs, time the builds."""
    import nbformat

    result = {k: v for k, v in native.items() if k != "runs"}
    if not native.get("venv"):
        return result
    venv = Path(native["venv"])
    nb_path = workdir(entry, root, "job")
    job = run_job(nb_path, venv, store, images)
    job_nb = job.pop("nb")
    result["job"] = job
    result["job_ok"] = job["status"] == "succeeded"
    if not result["native_ok"]:
        return result
    paths = {str(venv): "<venv>", os.path.realpath(venv): "<venv>"}
    native_runs = [(nbformat.reads(r["nb"], as_version=4), {**paths, r["workdir"]: "<cwd>"}) for r in native["runs"]]
    job_paths = {CONTAINER_VENV: "<venv>", str(nb_path.parent): "<cwd>", "/work": "<cwd>"}
    if job.get("output_notebook"):
        job_paths[str(Path(job["output_notebook"]).parent)] = "<cwd>"
    result["cells"] = compare(native_runs, (job_nb, job_paths) if job_nb is not None else None)
    if not quick and images is not None:
        try:
            result["builds"] = measure_builds(entry, nb_path, venv, root, images)
        except Exception as e:  # noqa: BLE001 - a failed build is reported, the run goes on
            result["builds"] = {"error": f"{type(e).__name__}: {e}"}
    return result


def run_one(entry: Entry, root: Path, store: Path | None = None, images: Any | None = None,
            quick: bool = True) -> dict[str, Any]:
    """Everything for one notebook, in ``root`` (the CI test's entry point)."""
    native = native_phase(entry, root)
    return job_phase(entry, native, root, store or root / "jobs.sqlite", images, quick)


# -- report --------------------------------------------------------------------------------------
def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    native_ok = [r for r in results.values() if r.get("native_ok")]
    jobs_ok = [r for r in native_ok if r.get("job_ok")]
    det = sum(r["cells"]["deterministic"] for r in native_ok if "cells" in r)
    same = sum(r["cells"]["identical"] for r in native_ok if "cells" in r)
    same_raw = sum(r["cells"]["identical_raw"] for r in native_ok if "cells" in r)
    measured = [r["builds"] for r in native_ok if "ratio" in r.get("builds", {})]
    ratios = [b["ratio"] for b in measured]
    s: dict[str, Any] = {
        "notebooks": len(results), "ran_natively": len(native_ok), "ran_as_job": len(jobs_ok),
        "share_jobs_run": len(jobs_ok) / len(native_ok) if native_ok else None,
        "deterministic_cells": det, "identical_cells": same, "identical_cells_raw": same_raw,
        "share_identical": same / det if det else None,
        "median_cold_build_ratio": statistics.median(ratios) if ratios else None,
        "median_cold_ours": statistics.median(b["cold_ours"] for b in measured) if measured else None,
        "median_naive": statistics.median(b["naive"] for b in measured) if measured else None,
        "builds_measured": len(ratios),
    }
    s["met"] = {
        "jobs_run": s["share_jobs_run"] is not None and s["share_jobs_run"] >= TARGETS["jobs_run"],
        "identical_cells": s["share_identical"] is not None and s["share_identical"] >= TARGETS["identical_cells"],
        "cold_build_ratio": None if not ratios else s["median_cold_build_ratio"] <= TARGETS["cold_build_ratio"],
    }
    return s


def print_table(results: dict[str, dict[str, Any]], summary: dict[str, Any]) -> None:
    yes = {True: "yes", False: "NO", None: "—"}
    print("\n| notebook | native | job | identical / deterministic cells | job build | cold build vs naive |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = r.get("cells")
        cell_txt = f"{cells['identical']}/{cells['deterministic']} (of {cells['code_cells']})" if cells else "—"
        job = r.get("job") or {}
        build = "—" if job.get("build_seconds") is None else \
            f"{job['build_seconds']:.1f} s" + (" (cached)" if job.get("build_cached") else "")
        b = r.get("builds") or {}
        ratio = (f"{b['cold_ours']:.1f} s / {b['naive']:.1f} s = {b['ratio']:.2f}×" if "ratio" in b
                 else b.get("error", "skipped (--quick)" if "job" in r else "—"))
        print(f"| {name} | {yes[r.get('native_ok')]} | {yes[r.get('job_ok')]} | {cell_txt} | {build} | {ratio} |")

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.1f} %"

    met = {k: yes[v] for k, v in summary["met"].items()}
    print(f"\nran natively {summary['ran_natively']}/{summary['notebooks']}; ran as job "
          f"{summary['ran_as_job']}/{summary['ran_natively']} ({pct(summary['share_jobs_run'])}, target 100 %: "
          f"{met['jobs_run']}); identical deterministic cells {summary['identical_cells']}/"
          f"{summary['deterministic_cells']} ({pct(summary['share_identical'])}, target ≥ 95 %: "
          f"{met['identical_cells']}; {summary['identical_cells_raw']} identical before normalising)")
    if summary["median_cold_build_ratio"] is not None:
        print(f"median cold build {summary['median_cold_ours']:.1f} s vs naive {summary['median_naive']:.1f} s; "
              f"median ratio {summary['median_cold_build_ratio']:.2f}× (target ≤ 0.35×: {met['cold_build_ratio']}; "
              f"{summary['builds_measured']} notebooks)")
    for name, r in results.items():
        if r.get("native_ok") is False:
            print(f"\n{name}: does not run natively: {r.get('native_error', '')[:1500]}")
        elif r.get("job_ok") is False:
            job = r["job"]
            print(f"\n{name}: job {job['id']} {job['status']}: {job['error'][:1500]}")
            if job.get("traceback"):
                print(job["traceback"][-1500:])
        for d in (r.get("cells") or {}).get("differences", []):
            print(f"\n{name} cell {d['cell']} differs:\n  source: {d['source'][:120]!r}\n  native: "
                  f"{d['native'][:300]!r}\n  job:    {d['job'][:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma list of corpus folder names")
    parser.add_argument("--jobs", type=int, nargs="?", const=os.cpu_count() or 2, default=1, metavar="N",
                        help="notebooks whose venv and native runs proceed at once (default 1; bare: CPU count)")
    parser.add_argument("--quick", action="store_true", help="skip the cold and naive build measures")
    parser.add_argument("--keep-images", action="store_true", help="leave the jobs' and builds' images on the engine")
    args = parser.parse_args()
    chosen = entries(args.only.split(",") if args.only else None)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root = Path(tempfile.mkdtemp(prefix="jc-corpus-"))
    images = Images()
    results: dict[str, dict[str, Any]] = {}
    t0 = time.time()
    try:
        log(f"{len(chosen)} notebooks; venvs in {CACHE}; work in {root}")
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [(e, pool.submit(native_phase, e, root)) for e in chosen]
            for entry, future in futures:
                try:
                    native = future.result()
                except Exception as e:  # noqa: BLE001
                    native = {"name": entry.name, "native_ok": False, "native_error": f"harness: {e!r}"}
                log(f"{entry.name}: native {'ok' if native.get('native_ok') else 'FAILED'} "
                    f"(venv {native.get('venv_seconds', 0):.0f} s, run {native.get('native_seconds', 0):.1f} s)")
                try:
                    results[entry.name] = job_phase(entry, native, root, root / "jobs.sqlite", images, args.quick)
                except Exception as e:  # noqa: BLE001 - one broken notebook must not lose the others
                    results[entry.name] = {**{k: v for k, v in native.items() if k != "runs"},
                                           "job_ok": False, "job": {"id": "-", "status": "harness error",
                                                                    "error": "".join(traceback.format_exception(e))}}
                r = results[entry.name]
                cells = r.get("cells", {})
                log(f"{entry.name}: job {r.get('job', {}).get('status', '—')}, cells "
                    f"{cells.get('identical', '—')}/{cells.get('deterministic', '—')} identical"
                    + (f", builds {r['builds']}" if "builds" in r else ""))
    finally:
        if not args.keep_images:
            images.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    out: dict[str, Any] = {"machine": machine(), "started": started, "quick": args.quick,
                           "seconds": round(time.time() - t0, 1), "run": [e.name for e in chosen]}
    previous = RESULTS / "corpus.json"
    kept: dict[str, str] = {}
    if args.only and previous.exists():
        old = json.loads(previous.read_text())
        for name, r in old.get("notebooks", {}).items():
            if name not in results and name in {e.name for e in entries()}:
                results[name] = r
                kept[name] = r.get("started", old.get("started", ""))
    for name in out["run"]:
        results[name]["started"] = started
    results = dict(sorted(results.items()))
    out["summary"] = summarise(results)
    out["targets"] = TARGETS
    out["normalised"] = ("jupyter_containerize.output_masks: execution counts and output metadata dropped; stream "
                         "text per stream name, concatenated; site-packages and stdlib folders read <site-packages>/ "
                         "and <stdlib>/, the venv's path and /opt/venv <venv>, the working folder (host or /work) "
                         "<cwd>, /tmp/ipykernel_PID/ <ipykernel>/; clocks, elapsed times, memory addresses masked")
    if kept:
        out["kept_from_previous_run"] = kept
    out["notebooks"] = results
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print_table(results, out["summary"])
    print(f"\nmachine: {out['machine']}; {out['seconds']:.0f} s; results in {previous.relative_to(REPO)}")


if __name__ == "__main__":
    main()
