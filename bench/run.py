"""Every benchmark of jupyter-containerize on the real Docker engine, with baselines taken in the same run.

Run: ``.venv/bin/python bench/run.py [--quick] [--reps N] [--only capture,builds,jobs,scaling]``.

Prints a table and writes ``bench/results/<name>.json`` per benchmark plus
``bench/results/summary.json``. Each measure is repeated; the median is reported with
min and max. Images are tagged ``jc-bench/…`` (jobs: ``jupyter-containerize/jcbench-…``)
and removed at the end; the base images are never touched.

Benchmarks (baseline in brackets):

* capture: ``bench_capture`` at 50 / 200 / 800 installed distributions
  [``pip freeze`` subprocess, ``pipreqs``];
* builds: cold build of the quickstart environment as a new environment (its lock new to
  the engine), with ``--no-cache``, with every cache emptied, and in the classic layout
  [naive ``COPY . .`` + ``pip install -r`` Dockerfile on the same base, classic builder and
  BuildKit; host ``uv pip install`` into fresh venvs], rebuild after a notebook-only edit
  [naive after the same edit], image size [naive image; base + venv];
* jobs: unchanged environment and notebook (build steps, time to start), job overhead on
  a ~10 s notebook [nbclient in this interpreter], progress latency (CellFinished stamped
  in the container → seen by a subscriber on the host);
* scaling: cold build with 5 / 20 / 50 locked packages (``bench/scaling_packages.txt``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import bench_capture  # noqa: E402 - needs the sys.path above
from jupyter_containerize.backends.baseimage import official_tag  # noqa: E402 - needs the sys.path above

BASE = official_tag(platform.python_version())
PROTECTED = (BASE, "jupyter-containerize/debian-minbase:bookworm")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
RUN_ID = f"{int(time.time()) % 100000:05d}"

SLEEP_CELLS = ["import time\nt0 = time.time()"] + [f"time.sleep(2)  # step {i}" for i in range(5)] + [
    "print(f'done in {time.time() - t0:.1f} s')"]


# -- helpers -----------------------------------------------------------------------------------
def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict[str, float] | None, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    if not s:
        return "—"
    m, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f} {unit} [{lo:.{digits}f}–{hi:.{digits}f}]" if s["n"] > 1 else f"{m:.{digits}f} {unit}"


def write(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def spec_for(notebook: Path, *flags: str) -> Any:
    from jupyter_containerize.options import parse

    return parse(["run", str(notebook), *flags]).spec


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def edit_notebook(path: Path, marker: str) -> None:
    """A notebook-only edit: a comment in the first code cell (no import changes)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source = cell.source.rstrip("\n") + f"\n# bench edit {marker}"
    nbformat.write(nb, str(path))


class Images:
    """The images this run makes, removed at the end (never the protected base images)."""

    def __init__(self) -> None:
        from jupyter_containerize.backends.engine import connect

        self.client = connect()
        self.tags: set[str] = set()
        self.dangling: set[str] = set()
        self.protected = set()
        for ref in PROTECTED:
            with contextlib.suppress(Exception):
                self.protected.add(self.client.images.get(ref).id)

    def _dangling_ids(self) -> set[str]:
        return {i.id for i in self.client.images.list(filters={"dangling": True})}

    @contextlib.contextmanager
    def building(self) -> Iterator[set[str]]:
        """Remember the untagged images (a multi-stage build's builder stage) this build made.

        Yields a set the caller fills with the image ids the build printed (`` ---> id``); an
        image left dangling by the build and named in its own output is ours, nobody else's.
        """
        before = self._dangling_ids()
        printed: set[str] = set()
        try:
            yield printed
        finally:
            new = self._dangling_ids() - before
            self.dangling |= {i for i in new if i.split(":")[-1][:12] in printed}

    def image(self, ref: str) -> Any:
        return self.client.images.get(ref)

    def cleanup(self) -> None:
        for tag in sorted(self.tags):
            if tag in PROTECTED:
                continue
            with contextlib.suppress(Exception):
                if self.client.images.get(tag).id not in self.protected:
                    self.client.images.remove(tag)
        for image_id in sorted(self.dangling - self.protected):
            with contextlib.suppress(Exception):
                self.client.images.remove(image_id)
        log(f"removed {len(self.tags)} tags and {len(self.dangling)} untagged builder-stage images")


def printed_image_id(text: str) -> str | None:
    """The image id of a classic-builder `` ---> 0123abcd`` line."""
    parts = text.split()
    if text.startswith(" ---> ") and len(parts) == 2:
        return parts[1]
    return None


@contextlib.contextmanager
def teed_builder(printed: set[str]) -> Iterator[None]:
    """Let ``build_image``'s engine stream pass by us, to note the image ids it prints."""
    from jupyter_containerize.backends import builder

    real = builder.new_api_client

    def client() -> Any:
        api = real()
        build = api.build

        def tee(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for chunk in build(*args, **kwargs):
                if isinstance(chunk, dict) and (image_id := printed_image_id(chunk.get("stream", ""))):
                    printed.add(image_id)
                yield chunk

        api.build = tee
        return api

    builder.new_api_client = client
    try:
        yield
    finally:
        builder.new_api_client = real


# -- naive Dockerfile ------------------------------------------------------------------------
NAIVE_DOCKERFILE = f"""\
# The seed tutorials' Dockerfile: copy the folder, install the requirements, run the notebook.
FROM {BASE}
WORKDIR /app
COPY . .
# pip in a container needs the machine's CA bundle (see ENVIRONMENT.md)
ENV PIP_CERT=/app/ca-certificates.crt
RUN pip install -r requirements.txt
CMD ["jupyter", "execute", "quickstart.ipynb"]
"""


def naive_folder(root: Path, notebook: Path, context: Any) -> Path:
    """The notebook's folder as a naive user has it: notebook, requirements.txt, the CA bundle."""
    folder = root / "naive"
    folder.mkdir()
    shutil.copy(notebook, folder / "quickstart.ipynb")
    reqs: dict[str, str] = {}
    for name in ("requirements.lock", "runner.lock"):  # the same packages our image installs
        for line in (context.path / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                reqs[line.split("==")[0].lower()] = line.strip()
    (folder / "requirements.txt").write_text("\n".join(sorted(reqs.values())) + "\n")
    shutil.copy(CA_BUNDLE, folder / "ca-certificates.crt")
    (folder / "Dockerfile").write_text(NAIVE_DOCKERFILE)
    return folder


def docker_build(images: Images, folder: Path, tag: str, no_cache: bool, buildkit: bool = False) -> tuple[float, int]:
    """Build a folder with the classic builder (as ``docker build`` of Debian's docker.io 20.10 and the
    docker SDK do) or BuildKit; returns (seconds, classic steps run)."""
    from types import SimpleNamespace

    from jupyter_containerize.backends.builder import _buildkit_stream
    from jupyter_containerize.backends.engine import new_api_client

    api = new_api_client()
    images.tags.add(tag)
    steps = cached = 0
    error = ""
    t = time.perf_counter()
    with images.building() as printed:
        stream = (_buildkit_stream(api, SimpleNamespace(path=folder, image_tag=tag), no_cache=no_cache, network_mode=None)
                  if buildkit else api.build(path=str(folder), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
                                             nocache=no_cache))
        for chunk in stream:
            text = chunk.get("stream", "")
            if image_id := printed_image_id(text):
                printed.add(image_id)
            steps += text.startswith("Step ")
            cached += "Using cache" in text
            error = error or chunk.get("error", "")
    seconds = time.perf_counter() - t
    api.close()
    if error:
        raise RuntimeError(f"naive build failed: {error}")
    return seconds, steps - cached - 1  # FROM is not a step that runs


def ours_build(images: Images, context: Any, tag: str, no_cache: bool) -> dict[str, Any]:
    """``build_image`` of a rendered context under ``tag``; seconds, steps run and per-step times."""
    from jupyter_containerize.backends.builder import build_image
    from jupyter_containerize.events import BuildFinished, BuildStep

    events: list[tuple[float, Any]] = []
    images.tags.add(tag)
    t = time.perf_counter()
    with images.building() as printed, teed_builder(printed):
        build_image(dataclasses.replace(context, image_tag=tag), lambda e: events.append((time.perf_counter(), e)),
                    no_cache=no_cache)
    seconds = time.perf_counter() - t
    finished = next(e for _, e in events if isinstance(e, BuildFinished))
    steps = [(ts, e) for ts, e in events if isinstance(e, BuildStep)]
    durations = {}
    for (ts, e), nxt in zip(steps, [s[0] for s in steps[1:]] + [t + seconds], strict=True):
        durations[f"{e.index}: {e.instruction[:160]}"] = round(nxt - ts, 3)
    return {"seconds": seconds, "steps_run": finished.steps_run, "step_seconds": durations}


def install_seconds(step_seconds: dict[str, float]) -> float:
    """The step that installs the user's lock (``uv venv /opt/venv … uv pip install``)."""
    return sum(v for k, v in step_seconds.items()
               if ("/opt/venv" in k and "uv pip install" in k) or "from=uv,source=" in k)


def host_uv(root: Path, context: Any, i: int) -> float:
    """``uv venv`` + ``uv pip install`` of the same two locks on the host, cold (no cache), bytecode compiled."""
    t = time.perf_counter()
    for name, lock in (("venv", "requirements.lock"), ("runner", "runner.lock")):
        target = root / f"uv-{i}-{name}"
        subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(target)], check=True)
        no_deps = ["--no-deps"] if name == "venv" else []  # as the Dockerfile installs them
        subprocess.run([UV, "pip", "install", "-q", "--no-cache", "--compile-bytecode", *no_deps, "--python",
                        str(target / "bin" / "python"), "-r", str(context.path / lock)], check=True)
    seconds = time.perf_counter() - t
    for name in ("venv", "runner"):
        shutil.rmtree(root / f"uv-{i}-{name}", ignore_errors=True)
    return seconds


def du_in_image(images: Images, tag: str, paths: list[str]) -> dict[str, int]:
    out = images.client.containers.run(tag, entrypoint=["du", "-sb", *paths], remove=True, user="0")
    return {line.split("\t")[1]: int(line.split("\t")[0]) for line in out.decode().splitlines()}


# -- benchmarks ---------------------------------------------------------------------------------
def bench_capture_all(reps: int, quick: bool) -> dict[str, Any]:
    sizes = ["50", "200"] if quick else ["50", "200", "800"]
    log(f"capture at {sizes} installed distributions ({reps} reps)")
    results = bench_capture.run_all(sizes, reps)
    (RESULTS / "capture.json").write_text(json.dumps(results, indent=2) + "\n")
    bench_capture.print_table(results)
    return results


def bench_builds(images: Images, root: Path, reps: int, naive_reps: int) -> dict[str, Any]:
    from jupyter_containerize.jobs.manager import prepare

    nb = root / "jcbench_quickstart.ipynb"
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", nb)
    prepared = prepare(spec_for(nb, "--builder", "buildkit"))
    classic = prepare(spec_for(nb, "--builder", "classic"))
    ctx = prepared.context
    out: dict[str, Any] = {"lock_pins": sum(1 for ln in (ctx.path / "requirements.lock").read_text().splitlines()
                                             if ln and not ln.startswith("#")),
                           "runner_pins": sum(1 for ln in (ctx.path / "runner.lock").read_text().splitlines()
                                              if ln and not ln.startswith("#")),
                           "dockerfile": ctx.dockerfile, "dockerfile_classic": classic.context.dockerfile,
                           "naive_dockerfile": NAIVE_DOCKERFILE}

    # Fully cold once: no layer cache and BuildKit's cache mounts emptied (uv downloads everything).
    log("cold build, ours, empty caches (build cache pruned)")
    images.client.api.prune_builds()
    r = ours_build(images, ctx, f"jc-bench/quickstart:empty-{RUN_ID}", no_cache=True)
    out["cold_ours_empty_caches"] = round(r["seconds"], 3)
    out["cold_ours_empty_caches_step_seconds"] = r["step_seconds"]
    log(f"  {r['seconds']:.1f} s")

    runs: dict[str, list[float]] = {k: [] for k in ("new_env", "no_cache", "classic_no_cache", "naive", "naive_buildkit",
                                                     "host_uv", "install")}
    naive = naive_folder(root, nb, ctx)
    for i in range(max(reps, naive_reps)):
        if i < reps:
            # A new environment: the lock changes (a comment), so every step that depends on it runs,
            # as for any environment this engine has not built; shared steps (the uv stage) and uv's
            # cache are as a previous build of any notebook left them.
            with (ctx.path / "requirements.lock").open("a") as f:
                f.write(f"# bench {RUN_ID}-{i}\n")
            log(f"cold build of a new environment, ours (BuildKit) {i + 1}/{reps}")
            r = ours_build(images, ctx, f"jc-bench/quickstart:cold-{RUN_ID}-{i}", no_cache=False)
            runs["new_env"].append(r["seconds"])
            runs["install"].append(install_seconds(r["step_seconds"]))
            out.setdefault("cold_step_seconds", []).append(r["step_seconds"])
            log(f"  {r['seconds']:.1f} s, {r['steps_run']} steps")
            log(f"--no-cache build, ours (BuildKit) {i + 1}/{reps}")
            r = ours_build(images, ctx, f"jc-bench/quickstart:nocache-{RUN_ID}-{i}", no_cache=True)
            runs["no_cache"].append(r["seconds"])
            log(f"  {r['seconds']:.1f} s, {r['steps_run']} steps")
            log(f"--no-cache build, ours (classic builder) {i + 1}/{reps}")
            r = ours_build(images, classic.context, f"jc-bench/quickstart:classic-{RUN_ID}-{i}", no_cache=True)
            runs["classic_no_cache"].append(r["seconds"])
            log(f"  {r['seconds']:.1f} s, {r['steps_run']} steps")
        if i < naive_reps:
            for key, buildkit in (("naive", False), ("naive_buildkit", True)):
                log(f"--no-cache build, naive ({'BuildKit' if buildkit else 'classic builder'}) {i + 1}/{naive_reps}")
                s, _ = docker_build(images, naive, f"jc-bench/naive:{key}-{RUN_ID}-{i}", no_cache=True,
                                    buildkit=buildkit)
                runs[key].append(s)
                log(f"  {s:.1f} s")
        if i < reps:
            runs["host_uv"].append(host_uv(root, ctx, i))
            log(f"host uv pip install (cold): {runs['host_uv'][-1]:.1f} s")
    classic.cleanup()
    out["cold_ours"] = stats(runs["new_env"])
    out["cold_ours_lock_install_step"] = stats(runs["install"])
    out["cold_ours_no_cache"] = stats(runs["no_cache"])
    out["cold_ours_classic_no_cache"] = stats(runs["classic_no_cache"])
    out["cold_naive"] = stats(runs["naive"])
    out["cold_naive_buildkit"] = stats(runs["naive_buildkit"])
    out["cold_host_uv"] = stats(runs["host_uv"])
    naive_median = out["cold_naive"]["median"]
    out["ratio_cold_ours_to_naive"] = out["cold_ours"]["median"] / naive_median
    out["ratio_cold_ours_to_naive_buildkit"] = out["cold_ours"]["median"] / out["cold_naive_buildkit"]["median"]
    out["ratio_no_cache_ours_to_naive"] = out["cold_ours_no_cache"]["median"] / naive_median
    out["ratio_classic_no_cache_ours_to_naive"] = out["cold_ours_classic_no_cache"]["median"] / naive_median
    out["ratio_empty_caches_ours_to_naive"] = out["cold_ours_empty_caches"] / naive_median
    out["ratio_cold_ours_to_host_uv"] = out["cold_ours"]["median"] / out["cold_host_uv"]["median"]

    # image size: the tool's image vs the naive one vs base + venv
    ours_tag, naive_tag = f"jc-bench/quickstart:cold-{RUN_ID}-0", f"jc-bench/naive:naive-{RUN_ID}-0"
    du = du_in_image(images, ours_tag, ["/opt/venv", "/opt/jc-runner", "/opt/jc", "/work"])
    naive_du = du_in_image(images, naive_tag, [f"/usr/local/lib/python{platform.python_version().rsplit('.', 1)[0]}/site-packages", "/root/.cache", "/app"])
    base = images.image(BASE).attrs["Size"]
    size = {"ours_bytes": images.image(ours_tag).attrs["Size"], "naive_bytes": images.image(naive_tag).attrs["Size"],
            "base_bytes": base, "du_in_ours": du, "du_in_naive": naive_du}
    size["base_plus_venv_bytes"] = base + du["/opt/venv"]
    size["base_plus_both_venvs_bytes"] = base + du["/opt/venv"] + du["/opt/jc-runner"]
    size["ratio_ours_to_base_plus_venv"] = size["ours_bytes"] / size["base_plus_venv_bytes"]
    size["ratio_ours_to_base_plus_both_venvs"] = size["ours_bytes"] / size["base_plus_both_venvs_bytes"]
    size["ratio_ours_to_naive"] = size["ours_bytes"] / size["naive_bytes"]
    out["image_size"] = size

    # rebuild after a notebook-only edit (layers from the cold builds are in the engine's cache)
    prepared.cleanup()
    reb, reb_total, reb_steps, naive_reb = [], [], [], []
    for i in range(reps):
        edit_notebook(nb, f"{RUN_ID}-{i}")
        t = time.perf_counter()
        p = prepare(spec_for(nb))
        prep_s = time.perf_counter() - t
        r = ours_build(images, p.context, f"jc-bench/quickstart:edit-{RUN_ID}-{i}", no_cache=False)
        p.cleanup()
        reb.append(r["seconds"])
        reb_total.append(prep_s + r["seconds"])
        reb_steps.append(r["steps_run"])
        log(f"rebuild after edit, ours: build {r['seconds']:.2f} s ({r['steps_run']} steps), capture+render {prep_s:.2f} s")
    for i in range(naive_reps):
        edit_notebook(naive / "quickstart.ipynb", f"{RUN_ID}-{i}")
        s, steps = docker_build(images, naive, f"jc-bench/naive:edit-{RUN_ID}-{i}", no_cache=False)
        naive_reb.append(s)
        log(f"rebuild after edit, naive: {s:.1f} s ({steps} steps)")
    out["rebuild_ours_build"] = stats(reb)
    out["rebuild_ours_capture_render_build"] = stats(reb_total)
    out["rebuild_ours_steps_run"] = reb_steps
    out["rebuild_naive"] = stats(naive_reb)
    out["ratio_naive_to_ours_rebuild"] = out["rebuild_naive"]["median"] / out["rebuild_ours_build"]["median"]
    out["ratio_naive_to_ours_rebuild_with_capture"] = (out["rebuild_naive"]["median"]
                                                       / out["rebuild_ours_capture_render_build"]["median"])
    write("builds", out)
    return out


def run_job(images: Images, manager: Any, spec: Any, failures: list[str]) -> dict[str, Any]:
    """Submit, record when each event reached this process, wait; times relative to submit.

    A job that fails is noted in ``failures`` and tried once more (the machine is shared).
    """
    from jupyter_containerize.events import BuildFinished, CellFinished, CellStarted, StatusChanged

    for attempt in (1, 2):
        seen: list[tuple[float, Any]] = []
        with images.building() as printed, teed_builder(printed):
            t0 = time.time()
            job = manager.submit(spec)
            job.subscribe(lambda e, seen=seen: seen.append((time.time(), e)))
            record = job.wait(timeout=600)
            wall = time.time() - t0
        if record.image_tag:
            images.tags.add(record.image_tag)
        if record.status == "succeeded":
            break
        failures.append(f"job {job.id} ({spec.notebook.name}) {record.status}: {record.error}")
        log(f"job failed, {'trying once more' if attempt == 1 else 'giving up'}: {record.error}")
    else:
        raise RuntimeError(failures[-1])
    stored = [e for _, e in job.events()]
    running = next(e.time for e in stored if isinstance(e, StatusChanged) and e.status == "running")
    first_cell = next(e.time for e in stored if isinstance(e, CellStarted))
    built = next(e for e in stored if isinstance(e, BuildFinished))
    return {"wall": wall, "to_running": running - t0, "to_first_cell": first_cell - t0,
            "steps_run": built.steps_run, "image": built.tag,
            "latencies": [ts - e.time for ts, e in seen if isinstance(e, CellFinished)]}


def native_nbclient(path: Path) -> float:
    import nbclient
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    t = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - t


def bench_jobs(images: Images, root: Path, reps: int) -> dict[str, Any]:
    from jupyter_containerize.jobs.manager import JobManager
    from jupyter_containerize.jobs.store import JobStore

    manager = JobManager(JobStore(root / "jobs.db"))
    out: dict[str, Any] = {}
    latencies: list[float] = []
    failures: list[str] = []

    # unchanged environment and notebook: the second submit of the same notebook
    nb = root / "jcbench_unchanged.ipynb"
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", nb)
    spec = spec_for(nb)
    log("unchanged: first job (builds or reuses the image)")
    first = run_job(images, manager, spec, failures)
    runs = []
    for i in range(reps):
        r = run_job(images, manager, spec, failures)
        runs.append(r)
        latencies += r["latencies"]
        log(f"unchanged {i + 1}/{reps}: {r['steps_run']} steps, running after {r['to_running']:.2f} s, "
            f"first cell after {r['to_first_cell']:.2f} s, done after {r['wall']:.1f} s")
    out["unchanged_first_job"] = {k: v for k, v in first.items() if k != "latencies"}
    out["unchanged_steps_run"] = [r["steps_run"] for r in runs]
    out["unchanged_to_running"] = stats([r["to_running"] for r in runs])
    out["unchanged_to_first_cell"] = stats([r["to_first_cell"] for r in runs])
    out["unchanged_wall"] = stats([r["wall"] for r in runs])

    # job overhead on a ~10 s notebook
    sleep_nb = root / "jcbench_sleep.ipynb"
    write_notebook(sleep_nb, SLEEP_CELLS)
    spec = spec_for(sleep_nb)
    log("overhead: first job (builds the image for the ~10 s notebook)")
    first = run_job(images, manager, spec, failures)
    native, jobs = [], []
    for i in range(reps):
        native.append(native_nbclient(sleep_nb))
        r = run_job(images, manager, spec, failures)
        jobs.append(r)
        latencies += r["latencies"]
        log(f"overhead {i + 1}/{reps}: native {native[-1]:.2f} s, job {r['wall']:.2f} s "
            f"({r['steps_run']} build steps, running after {r['to_running']:.2f} s)")
    out["overhead_native_nbclient"] = stats(native)
    out["overhead_job"] = stats([r["wall"] for r in jobs])
    out["overhead_job_to_running"] = stats([r["to_running"] for r in jobs])
    out["overhead_job_to_first_cell"] = stats([r["to_first_cell"] for r in jobs])
    out["overhead_seconds"] = out["overhead_job"]["median"] - out["overhead_native_nbclient"]["median"]
    out["progress_latency"] = stats(latencies)
    out["progress_latency_samples"] = len(latencies)
    out["failed_jobs_retried"] = failures
    write("jobs", out)
    return out


def bench_scaling(images: Images, root: Path, reps: int) -> dict[str, Any]:
    from jupyter_containerize.jobs.manager import prepare

    pins = [ln.strip() for ln in (BENCH / "scaling_packages.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    nb = root / "jcbench_scaling.ipynb"
    write_notebook(nb, ["import json"])
    prepared = prepare(spec_for(nb))
    out: dict[str, Any] = {"packages_file": "bench/scaling_packages.txt", "sizes": {}}
    for n in (5, 20, 50):
        folder = root / f"scale-{n}"
        shutil.copytree(prepared.context.path, folder)
        (folder / "requirements.lock").write_text("# bench: N small dependency-free packages\n"
                                                  + "\n".join(pins[:n]) + "\n")
        ctx = dataclasses.replace(prepared.context, path=folder)
        totals, installs = [], []
        for i in range(reps):
            r = ours_build(images, ctx, f"jc-bench/scale:{n}-{RUN_ID}-{i}", no_cache=True)
            totals.append(r["seconds"])
            installs.append(install_seconds(r["step_seconds"]))
            log(f"scaling: {n} locked packages, cold build {r['seconds']:.1f} s (lock install step {installs[-1]:.1f} s)")
        out["sizes"][str(n)] = {"cold_build": stats(totals), "lock_install_step": stats(installs)}
    prepared.cleanup()
    xs = [5, 20, 50]
    ys = [out["sizes"][str(n)]["lock_install_step"]["median"] for n in xs]
    slope = (ys[2] - ys[0]) / (xs[2] - xs[0])
    out["lock_install_seconds_per_package"] = slope
    out["lock_install_intercept_seconds"] = ys[0] - slope * xs[0]
    write("scaling", out)
    return out


# -- report ---------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    with contextlib.suppress(OSError):
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        info["memory_gib"] = round(int(mem.split()[1]) / 2**20, 1)
    with contextlib.suppress(OSError):
        osr = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln)
        info["os"] = osr.get("PRETTY_NAME", "").strip('"')
    with contextlib.suppress(Exception):
        from jupyter_containerize.backends.engine import connect, engine_has_buildkit

        v = connect().version()
        info["docker"] = f"{v.get('Version')} (API {v.get('ApiVersion')}, BuildKit: {engine_has_buildkit()})"
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, check=False).stdout.strip()
    return info


def table(summary: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def row(measure: str, ours: str, baseline: str, ratio: str, target: str, met: bool | None) -> None:
        rows.append({"measure": measure, "ours": ours, "baseline": baseline, "ratio": ratio, "target": target,
                     "met": "—" if met is None else ("yes" if met else "NO")})

    cap = summary.get("capture")
    if cap:
        for size, r in cap["runs"].items():
            ours = {k: r["capture_in_process"][k + "_ms"] for k in ("median", "min", "max")} | {"n": r["capture_in_process"]["n"]}
            pf = {k: r["pip_freeze_subprocess"][k + "_ms"] for k in ("median", "min", "max")} | {"n": r["pip_freeze_subprocess"]["n"]}
            speed = pf["median"] / ours["median"]
            pr = r.get("pipreqs")
            base = f"pip freeze {fmt(pf, 'ms', digits=0)}" + (f"; pipreqs {pr['median_ms']:.0f} ms" if isinstance(pr, dict) else "")
            row(f"capture, {r['distributions']} distributions ({r['pins']} pins)",
                f"{fmt(ours, 'ms', digits=0)} (probe subprocess {r['capture_subprocess_probe']['median_ms']:.0f} ms)",
                base, f"{speed:.1f}× faster", "≤ 300 ms, ≥ 3×" if size == "200" else "stated",
                (ours["median"] <= 300 and speed >= 3) if size == "200" else None)
    b = summary.get("builds")
    if b:
        row(f"cold build of a new environment, quickstart ({b['lock_pins']}+{b['runner_pins']} pins)",
            fmt(b["cold_ours"], digits=1),
            f"naive {fmt(b['cold_naive'], digits=1)} (BuildKit {fmt(b['cold_naive_buildkit'], digits=1)}); "
            f"host uv {fmt(b['cold_host_uv'], digits=1)}",
            f"{b['ratio_cold_ours_to_naive']:.2f}× naive ({b['ratio_cold_ours_to_naive_buildkit']:.2f}× BuildKit naive); "
            f"{b['ratio_cold_ours_to_host_uv']:.1f}× host uv",
            "≤ 0.35× naive", b["ratio_cold_ours_to_naive"] <= 0.35)
        row("cold build, stricter", f"--no-cache {fmt(b['cold_ours_no_cache'], digits=1)}; classic builder "
            f"--no-cache {fmt(b['cold_ours_classic_no_cache'], digits=1)}; empty caches "
            f"{b['cold_ours_empty_caches']:.1f} s", f"naive {fmt(b['cold_naive'], digits=1)}",
            f"{b['ratio_no_cache_ours_to_naive']:.2f}× / {b['ratio_classic_no_cache_ours_to_naive']:.2f}× / "
            f"{b['ratio_empty_caches_ours_to_naive']:.2f}× naive", "stated", None)
        row("rebuild after notebook-only edit", f"build {fmt(b['rebuild_ours_build'])}; "
            f"capture+render+build {fmt(b['rebuild_ours_capture_render_build'])}; steps {b['rebuild_ours_steps_run']}",
            f"naive {fmt(b['rebuild_naive'], digits=1)}",
            f"{b['ratio_naive_to_ours_rebuild']:.0f}× ({b['ratio_naive_to_ours_rebuild_with_capture']:.0f}× with capture)",
            "≤ 1 s, ≥ 40×", b["rebuild_ours_build"]["median"] <= 1 and b["ratio_naive_to_ours_rebuild"] >= 40)
        s = b["image_size"]
        mb = 1e6
        row("image size", f"{s['ours_bytes'] / mb:.0f} MB",
            f"naive {s['naive_bytes'] / mb:.0f} MB; base {s['base_bytes'] / mb:.0f} + venv "
            f"{s['du_in_ours']['/opt/venv'] / mb:.0f} = {s['base_plus_venv_bytes'] / mb:.0f} MB "
            f"(+ runner venv {s['du_in_ours']['/opt/jc-runner'] / mb:.0f} MB)",
            f"{s['ratio_ours_to_base_plus_venv']:.3f}× base+venv ({s['ratio_ours_to_base_plus_both_venvs']:.3f}× with "
            f"runner venv); {s['ratio_ours_to_naive']:.2f}× naive",
            "≤ base + venv + 5 %", s["ratio_ours_to_base_plus_venv"] <= 1.05)
    j = summary.get("jobs")
    if j:
        row("unchanged env and notebook", f"steps {j['unchanged_steps_run']}; running after "
            f"{fmt(j['unchanged_to_running'])}; first cell after {fmt(j['unchanged_to_first_cell'])}", "—", "—",
            "0 steps, start ≤ 1 s",
            all(n == 0 for n in j["unchanged_steps_run"]) and j["unchanged_to_running"]["median"] <= 1)
        row("job overhead, ~10 s notebook", f"job {fmt(j['overhead_job'])}",
            f"nbclient {fmt(j['overhead_native_nbclient'])}", f"+{j['overhead_seconds']:.2f} s",
            "≤ +2 s", j["overhead_seconds"] <= 2)
        row("progress latency (CellFinished)", fmt(j["progress_latency"], "ms", 1000, 0),
            "—", f"{j['progress_latency_samples']} cells", "≤ 0.5 s",
            j["progress_latency"]["median"] <= 0.5)
    sc = summary.get("scaling")
    if sc:
        parts = [f"{n}: {d['cold_build']['median']:.1f} s (install {d['lock_install_step']['median']:.1f} s)"
                 for n, d in sc["sizes"].items()]
        row("cold build vs locked packages", "; ".join(parts), "—",
            f"{sc['lock_install_seconds_per_package']:.3f} s/package", "near-linear, stated", None)
    return rows


def print_table(rows: list[dict[str, str]]) -> None:
    print("\n| measure | ours | baseline (same run) | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['measure']} | {r['ours']} | {r['baseline']} | {r['ratio']} | {r['target']} | {r['met']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 reps, 1 naive build, no 800-distribution capture and no build scaling")
    parser.add_argument("--reps", type=int, help="repetitions of each build and job measure (default 3, quick 2)")
    parser.add_argument("--capture-reps", type=int, help="repetitions of capture (default 9, quick 3)")
    parser.add_argument("--naive-reps", type=int, help="naive builds, cold and after an edit (default 2, quick 1)")
    parser.add_argument("--scaling-reps", type=int, default=3, help="cold builds per scaling size (default 3)")
    parser.add_argument("--only", default="capture,builds,jobs,scaling", help="comma list of benchmarks")
    parser.add_argument("--keep-images", action="store_true", help="leave the jc-bench images on the engine")
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 3)
    naive_reps = args.naive_reps or (1 if args.quick else 2)
    capture_reps = args.capture_reps or (3 if args.quick else 9)
    only = set(args.only.split(","))
    if args.quick:
        only.discard("scaling")
    if not CA_BUNDLE.exists():
        sys.exit(f"{CA_BUNDLE} is missing: the naive build's pip needs the machine's CA bundle")

    summary: dict[str, Any] = {"machine": machine(), "quick": args.quick, "reps": reps, "naive_reps": naive_reps,
                               "capture_reps": capture_reps, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    log(f"machine: {summary['machine']}")
    images = Images()
    root = Path(tempfile.mkdtemp(prefix="jc-bench-"))
    t0 = time.time()
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("capture", lambda: bench_capture_all(capture_reps, args.quick)),
        ("builds", lambda: bench_builds(images, root, reps, naive_reps)),
        ("jobs", lambda: bench_jobs(images, root, reps)),
        ("scaling", lambda: bench_scaling(images, root, args.scaling_reps)),
    ]
    try:
        for name, fn in steps:
            if name in only:
                try:
                    summary[name] = fn()
                except Exception as e:  # noqa: BLE001 - one broken benchmark must not lose the others
                    log(f"{name} failed: {type(e).__name__}: {e}")
                    summary.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
    finally:
        if not args.keep_images:
            images.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    summary["seconds"] = round(time.time() - t0, 1)
    previous = RESULTS / "summary.json"
    if only != {name for name, _ in steps} and previous.exists():
        # a partial run keeps the other benchmarks' last results, and says so
        old = json.loads(previous.read_text())
        kept = [name for name, _ in steps if name not in only and name in old]
        for name in kept:
            summary[name] = old[name]
        summary["kept_from_previous_run"] = {name: old.get("started", "") for name in kept}
    rows = table(summary)
    summary["table"] = rows
    write("summary", summary)
    print_table(rows)
    print(f"\nmachine: {summary['machine']}; {summary['seconds']:.0f} s in all; "
          f"results in {RESULTS.relative_to(REPO)}/")


if __name__ == "__main__":
    main()
