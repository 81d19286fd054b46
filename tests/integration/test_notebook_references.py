"""What a notebook refers to, on the real engine: data beside it is mounted read-only where it reads it,
its own code (``sys.path`` edits, ``%run`` targets, local packages) is copied into the image at the same
relative place, and an import nothing resolves is refused before building (issues: the notebook's files,
the notebook's own code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import JobManager
from jupyter_containerize.jobs.store import JobRecord, JobStore
from jupyter_containerize.options import parse
from jupyter_containerize.render.dockerfile import LABEL_PREFIX
from tests.support.notebooks import write_notebook
from tests.support.outputs import output_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

BIG = 2**30 + 2**20  # over the size that is named when mounted (a sparse file: no disk used)

# A course-material layout: notebooks/ beside src/, a module in the folder above, data beside the notebook.
CELLS = (
    "import sys\nsys.path.append('..')\nfrom mylib import double",
    "from pathlib import Path\nsys.path.insert(0, str(Path.cwd().parent / 'src'))\nimport pkg\nprint(pkg.answer())",
    "%run helper.py\n%run other.ipynb\nprint('from %run:', HELPER_VALUE, OTHER_VALUE)",
    ("import csv, glob\n"
     "SALES = 'data/sales.csv'\n"
     "rows = list(csv.reader(open(SALES)))\n"
     "region = 'north'\n"
     "raw = open(f'data/raw/{region}.csv').read().strip()\n"
     "print('rows', len(rows), 'raw', raw, 'files', sorted(glob.glob('data/*.csv')))\n"
     "print('big', open('big.bin', 'rb').read(4))"),
    ("import os\n"
     "os.makedirs('results', exist_ok=True)\n"
     "open('results/summary.txt', 'w').write(str(double(len(rows))))\n"
     "open('data/new.csv', 'w').write('written beside the data')\n"
     "try:\n"
     "    open(os.path.join('data', 'raw', 'tmp' + str(1)), 'w')\n"
     "except OSError as exc:\n"
     "    print('data/raw', exc.strerror)"),
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "mylib.py").write_text("def double(x):\n    return 2 * x\n")
    pkg = root / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.core import answer\n")
    (pkg / "core.py").write_text("import deep_helper\n\ndef answer():\n    return deep_helper.VALUE\n")
    (root / "src" / "deep_helper.py").write_text("VALUE = 42\n")
    nb_dir = root / "notebooks"
    (nb_dir / "data" / "raw").mkdir(parents=True)
    (nb_dir / "data" / "sales.csv").write_text("month,total\njan,10\nfeb,12\n")
    (nb_dir / "data" / "raw" / "north.csv").write_text("n1\n")
    with open(nb_dir / "big.bin", "wb") as f:
        f.write(b"BIG!")
        f.truncate(BIG)
    (nb_dir / "helper.py").write_text("HELPER_VALUE = 'helper'\n")
    write_notebook(nb_dir / "other.ipynb", "OTHER_VALUE = 'other'")
    return write_notebook(nb_dir / "analysis.ipynb", *CELLS)


def _run(notebook: Path, store: Path, *flags: str) -> tuple[JobRecord, str]:
    spec = parse(["run", str(notebook), "--network", "none", *flags]).spec
    assert spec is not None
    job = JobManager(JobStore(store)).submit(spec)
    record = job.wait(timeout=900)
    return record, "".join(e.text for _, e in job.events() if isinstance(e, Log))


@pytest.fixture(scope="module")
def job(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[JobRecord, str]:
    return _run(project, tmp_path_factory.mktemp("store") / "jobs.sqlite")


def _outputs(record: JobRecord) -> str:
    nb = json.loads(output_notebook(record.output_dir, record.id).read_text())
    texts = [o.get("text", "") for c in nb["cells"] for o in c.get("outputs", [])]
    return "".join("".join(t) if isinstance(t, list) else t for t in texts)


def test_local_code_comes_along_at_the_same_relative_place(job: tuple[JobRecord, str]) -> None:
    record, log = job
    assert record.status == "succeeded", record.error + log
    out = _outputs(record)
    assert "42\n" in out  # src/pkg → pkg.core → src/deep_helper.py, two levels of local imports
    assert "from %run: helper other" in out


def test_data_is_mounted_read_only_where_the_notebook_reads_it(job: tuple[JobRecord, str]) -> None:
    record, log = job
    out = _outputs(record)
    assert "rows 3 raw n1 files ['data/sales.csv']" in out  # a literal, an f-string folder, a glob
    assert "big b'BIG!'" in out
    assert "data/raw Read-only file system" in out
    assert "mounted read-only as the notebook reads them" in log
    # data/ is split because the notebook writes data/new.csv there: what it reads is mounted file by file
    for target in ("/work/notebooks/data/raw ", "/work/notebooks/data/sales.csv ", "/work/notebooks/big.bin "):
        assert target in log
    assert "big.bin holds more than 1 GiB" in log
    # what the job wrote comes back; the mounted data does not
    out_dir = Path(record.output_dir)
    assert (out_dir / "results" / "summary.txt").read_text() == "6"
    assert (out_dir / "data" / "new.csv").read_text() == "written beside the data"
    assert sorted(p.name for p in (out_dir / "data").iterdir()) == ["new.csv"]


def test_data_stays_out_of_the_image(job: tuple[JobRecord, str]) -> None:
    record, _ = job
    image = docker.from_env().images.get(record.image_tag)
    assert image.attrs["Size"] < BIG  # the GiB beside the notebook is in no layer
    work_layer = next(layer for layer in image.history() if "work/ /work/" in layer.get("CreatedBy", ""))
    assert work_layer["Size"] < 2**20  # the notebook and its code only


def test_without_auto_mount_a_missing_file_ends_with_a_hint(project: Path, tmp_path: Path) -> None:
    record, _ = _run(project, tmp_path / "jobs.sqlite", "--no-auto-mount")
    assert record.status == "failed"
    first, _, hint = record.error.partition("\n")
    assert first == "FileNotFoundError: [Errno 2] No such file or directory: 'data/sales.csv'"
    assert hint.startswith("Hint: data/sales.csv is not in this job") and "--include data/sales.csv" in hint
    assert "-v HOST_PATH:/work/notebooks/data/sales.csv:ro" in hint


def test_kubernetes_refuses_host_data_before_building(project: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A configured cluster (the preflight reads the configuration and asks it nothing), so the refusal is the data's.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                          "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                          "users: [{name: u, user: {token: t}}]\n"
                          "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    record, _ = _run(project, tmp_path / "jobs.sqlite", "--backend", "kubernetes")
    assert record.status == "failed" and not record.image_tag
    assert record.error.startswith("The notebook reads big.bin, data/raw and data/sales.csv beside it, and a "
                                   "kubernetes job cannot mount")
    assert "PersistentVolumeClaim" in record.error and "--no-auto-mount" in record.error


def test_an_import_nothing_resolves_is_refused_before_building(project: Path, tmp_path: Path) -> None:
    nb = write_notebook(project.parent / "broken.ipynb",
                        "import sys\nsys.path.append('../src')\nimport nowhere_to_be_found")
    client = docker.from_env()
    ours = {"label": f"{LABEL_PREFIX}.notebook=broken.ipynb"}
    images = {i.id for i in client.images.list(filters=ours)}
    containers = {c.id for c in client.containers.list(all=True)}
    proc = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", "run", str(nb)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    error = next(line for line in proc.stdout.splitlines() if line.startswith("job failed: "))  # the job's end
    assert "The notebook imports nowhere_to_be_found, which the kernel (" in error
    assert "the notebook's folder and ../src/ (where it looked for local code) do not hold" in error
    assert {i.id for i in client.images.list(filters=ours)} == images
    assert not {c.id for c in client.containers.list(all=True)} - containers


def test_the_readmes_data_example_works_as_written(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = [ln.partition("#")[0].split() for ln in readme.splitlines()
             if ln.startswith("jupyter containerize run analysis.ipynb")]
    assert len(lines) == 2
    write_notebook(tmp_path / "analysis.ipynb", "import csv\nprint(list(csv.reader(open('data/sales.csv')))[1])")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("month,total\njan,10\n")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "sales.csv").write_text("month,total\ndec,99\n")
    seen = []
    for words in lines:
        before = set(tmp_path.glob("analysis.jc-jobs/*"))
        proc = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", *words[2:], "--network", "none"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (out,) = set(tmp_path.glob("analysis.jc-jobs/*")) - before
        nb = json.loads(output_notebook(out, out.name).read_text())  # analysis.jc-jobs/<job id>/
        seen.append("".join(o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                            for c in nb["cells"] for o in c.get("outputs", []) if "text" in o))
    assert seen == ["['jan', '10']\n", "['dec', '99']\n"]
