"""Benchmark: capture of a >= 200-distribution environment, against `pip freeze` and pipreqs.

Run alone: ``.venv/bin/python bench/bench_capture.py [--reps N] [--sizes 50,200]``;
``bench/run.py`` runs it with every other benchmark.
Venvs are built once with uv (seeded with pip) and cached under ``$TMPDIR/jc-bench-venvs``.
Writes ``bench/results/capture.json`` and prints a table. Timed, per environment:

* capture in-process (the magics' path): the venv's own interpreter with this repo on
  PYTHONPATH runs ``capture(nb, in_process=True)``; modules imported once beforehand, as
  in a live kernel (the first, cold call is reported separately);
* capture via the subprocess probe (``capture(nb, python=VENV_PYTHON)`` from this interpreter);
* ``VENV_PYTHON -m pip freeze`` as a subprocess;
* ``pipreqs --use-local --print`` on the notebook's folder, when pipreqs installs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "jc-bench-venvs"
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")

SMALL = ["ipykernel", "scikit-learn", "pandas", "matplotlib"]
MEDIUM = SMALL + ["jupyterlab", "seaborn", "sympy", "bokeh", "plotly", "dask[distributed]", "requests", "boto3",
                  "sqlalchemy", "flask", "fastapi", "pydantic", "httpx", "nltk", "statsmodels", "xarray", "polars",
                  "pyarrow", "openpyxl", "pytest", "black", "mypy", "rich", "typer", "numba", "networkx", "pillow",
                  "opencv-python-headless", "pyyaml", "protobuf", "googleapis-common-protos", "tqdm", "pipreqs",
                  "scrapy", "django", "sphinx", "dash", "altair", "shapely", "google-cloud-storage"]
LARGE = MEDIUM + ["apache-airflow", "google-cloud-bigquery", "azure-storage-blob",
                  "azure-identity", "scrapy", "django", "celery[redis]", "sphinx", "mkdocs-material", "dash",
                  "streamlit", "gradio", "transformers", "datasets", "great-expectations", "pyspark", "mlflow",
                  "prefect", "kedro", "hypothesis", "tox", "nox", "pre-commit", "poetry", "twine", "jupyter-book",
                  "panel", "altair", "geopandas", "shapely", "pymc", "arviz", "optuna", "lightgbm", "xgboost"]
SETS = {"50": SMALL, "200": MEDIUM, "800": LARGE}

NOTEBOOK_CELLS = [
    "%matplotlib inline\nimport numpy as np\nimport pandas as pd",
    "%%time\nfrom sklearn.linear_model import LinearRegression\nimport matplotlib.pyplot as plt",
    "!pip install -q seaborn\nimport yaml, requests\nfrom google import protobuf",
    "def later():\n    import importlib\n    return importlib.import_module('PIL.Image')",
]

INPROC = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from jupyter_containerize.capture import capture
nb = Path(sys.argv[1]); reps = int(sys.argv[2])
first = capture(nb, in_process=True)
cold = time.perf_counter() - t0
times = []
for _ in range(reps):
    t = time.perf_counter(); snap = capture(nb, in_process=True); times.append(time.perf_counter() - t)
print(json.dumps({"cold_s": cold, "times_s": times, "pins": len(snap.distributions)}))
"""


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def venv(size: str) -> Path:
    digest = hashlib.sha256(" ".join(SETS[size]).encode()).hexdigest()[:10]
    root = CACHE / f"venv-{size}-{digest}"
    python = root / "bin" / "python"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        run([UV, "venv", "-q", "--seed", "--python", sys.executable, str(root)])
        run([UV, "pip", "install", "-q", "--python", str(python), *SETS[size]], timeout=1800)
        (root / ".complete").write_text("ok")
    if size == "800":
        pad_to(python, 800, root / "pad-wheels")  # idempotent: nothing to do once at 800
    return python


def pad_to(python: Path, target: int, folder: Path) -> int:
    """Top up a venv to ``target`` distributions with tiny generated wheels.

    PyPI's resolvable sets stop near 500 distributions in one environment, so the 800 point
    is reached with real, installed (but synthetic) one-module distributions. The
    results record how many (``padding``).
    """
    missing = target - count(python)
    if missing <= 0:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    wheels = [str(tiny_wheel(folder, i)) for i in range(missing)]
    run([UV, "pip", "install", "-q", "--no-deps", "--python", str(python), *wheels], timeout=900)
    return missing


def tiny_wheel(folder: Path, i: int) -> Path:
    """A valid pure-Python wheel ``jc-bench-pad-<i>`` with one module and a RECORD."""
    import base64
    import zipfile

    name, version = f"jc_bench_pad_{i:04d}", "1.0"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: jc-bench-pad-{i:04d}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: jc-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{name}\n".encode(),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def count(python: Path) -> int:
    code = "import importlib.metadata as m; print(len({d.metadata['Name'].lower() for d in m.distributions()}))"
    out = run([str(python), "-c", code]).stdout
    return int(out)


def stats(times: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}


def timed(fn: object, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return out


def bench(size: str, reps: int, folder: Path) -> dict[str, object]:
    sys.path.insert(0, str(REPO))
    import nbformat

    from jupyter_containerize.capture import capture

    python = venv(size)
    nb_path = folder / f"bench-{size}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nbformat.write(nb, nb_path)
    # pipreqs reads .py files only: give it the notebook's code without IPython syntax
    (folder / f"bench_{size}.py").write_text("\n".join(
        ln for c in NOTEBOOK_CELLS for ln in c.splitlines() if not ln.startswith(("%", "!"))) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    inproc = json.loads(run([str(python), "-c", INPROC, str(nb_path), str(reps)], env=env).stdout)
    sub = timed(lambda: capture(nb_path, str(python)), reps)
    freeze = timed(lambda: run([str(python), "-m", "pip", "freeze"]), reps)
    padding = sum(1 for _ in (python.parent.parent / "pad-wheels").glob("*.whl")) if size == "800" else 0
    result: dict[str, object] = {
        "distributions": count(python),
        "padding": padding,
        "pins": inproc["pins"],
        "capture_in_process": stats(inproc["times_s"]),
        "capture_in_process_cold_ms": inproc["cold_s"] * 1000,
        "capture_subprocess_probe": stats(sub),
        "pip_freeze_subprocess": stats(freeze),
    }
    pipreqs = python.parent / "pipreqs"
    if pipreqs.exists():
        try:
            result["pipreqs"] = stats(timed(lambda: run([str(pipreqs), "--use-local", "--print", str(folder)], timeout=300), reps))
        except subprocess.CalledProcessError as exc:
            result["pipreqs"] = f"failed: {exc.stderr.strip().splitlines()[-1:]}"
    med = result["capture_in_process"]["median_ms"]  # type: ignore[index]
    result["ratio_in_process_to_pip_freeze"] = med / result["pip_freeze_subprocess"]["median_ms"]  # type: ignore[index]
    return result


def run_all(sizes: list[str], reps: int) -> dict[str, object]:
    """Every size in ``sizes``, as the JSON document written to ``capture.json``."""
    results: dict[str, object] = {"python": platform.python_version(), "machine": platform.machine(),
                                  "cpus": os.cpu_count(), "reps": reps, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(tmp) / size
            folder.mkdir()
            results["runs"][size] = bench(size, reps, folder)  # type: ignore[index]
    return results


def print_table(results: dict[str, object]) -> None:
    print(f"{'set':>5} {'dists':>6} {'pins':>5} {'in-proc ms':>11} {'cold ms':>8} {'subproc ms':>11} "
          f"{'pip freeze ms':>14} {'pipreqs ms':>11} {'ratio':>6}")
    for size, r in results["runs"].items():  # type: ignore[attr-defined]
        pr = r.get("pipreqs")
        print(f"{size:>5} {r['distributions']:>6} {r['pins']:>5} {r['capture_in_process']['median_ms']:>11.1f} "
              f"{r['capture_in_process_cold_ms']:>8.0f} {r['capture_subprocess_probe']['median_ms']:>11.1f} "
              f"{r['pip_freeze_subprocess']['median_ms']:>14.1f} "
              f"{(pr['median_ms'] if isinstance(pr, dict) else float('nan')):>11.1f} "
              f"{r['ratio_in_process_to_pip_freeze']:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--sizes", default="50,200", help="comma list of 50, 200, 800")
    args = parser.parse_args()
    results = run_all(args.sizes.split(","), args.reps)
    out = REPO / "bench" / "results" / "capture.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written {out}")


if __name__ == "__main__":
    main()
