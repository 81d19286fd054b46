"""Export pieces that need no engine: notebook → train.py, compose.yaml."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

from jupyter_containerize.export import compose_yaml, container_uid
from jupyter_containerize.jobspec import GpuRequest, JobSpec, Resources, VolumeMount
from jupyter_containerize.notebook_script import notebook_to_script, parameters_of, plain_python


def _notebook(path: Path, *cells: tuple[str, list[str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells]
    nbformat.write(nb, str(path))
    return path


def test_magics_become_python_or_comments() -> None:
    assert plain_python("%matplotlib inline\nx = 1") == "pass  # dropped IPython: %matplotlib inline\nx = 1"
    assert "pass  # dropped IPython: !pip install x" in plain_python("!pip install x\ny = 2")
    assert "pass  # dropped IPython: files = !ls" in plain_python("files = !ls")
    assert plain_python("%%time\nz = 3").endswith("\nz = 3")
    bash = plain_python("%%bash\necho $(rm -rf /)")
    assert all(line.startswith("#") for line in bash.splitlines())
    indented = plain_python("for i in range(2):\n    %time f(i)\n")
    ast.parse(indented)
    assert plain_python("s = '''\n%d items\n'''") == "s = '''\n%d items\n'''"  # valid Python is never rewritten
    assert plain_python("len?") == "pass  # dropped IPython: len?"


def test_parameters_cell_becomes_flags(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "t.ipynb", ("%load_ext autoreload", []),
                   ("lr = 0.01\nepochs: int = 3\nname = 'run'\nuse_gpu = False\nlayers = [64, 32]\nseed = compute()",
                    ["parameters"]),
                   ("print(lr, epochs, name, use_gpu, layers)", []))
    script = notebook_to_script(nb, {"epochs": 5})
    ast.parse(script)
    assert parameters_of("lr = 0.01\nseed = compute()") == {"lr": 0.01}
    assert "parser.add_argument('--epochs', type=int, default=5" in script
    assert "parser.add_argument('--use_gpu', type=_flag_bool, default=False" in script
    assert "parser.add_argument('--layers', type=_literal, default=[64, 32]" in script
    assert "seed" not in [line.split("'")[1][2:] for line in script.splitlines() if "add_argument" in line]


def test_train_py_runs_with_flags(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "t.ipynb", ("lr = 0.01\nname = 'run'\nuse_gpu = False", ["parameters"]),
                   ("%%time\nprint(repr(lr), repr(name), repr(use_gpu))", []))
    path = tmp_path / "train.py"
    path.write_text(notebook_to_script(nb))
    run = subprocess.run([sys.executable, str(path), "--lr", "0.5", "--use_gpu", "yes", "--name", "$(id) `x`"],
                         check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0.5 '$(id) `x`' True"


def test_compose_gpu_volumes_shm() -> None:
    spec = JobSpec(notebook=Path("nb.ipynb"), gpus=GpuRequest(count=2), resources=Resources(shm_size="1g", memory="4g"),
                   volumes=(VolumeMount(source="/data", target="/data", read_only=True),
                            VolumeMount(source="cache", target="/cache", kind="volume")))
    doc = yaml.safe_load(compose_yaml(spec, "img:1"))
    job = doc["services"]["job"]
    assert job["deploy"]["resources"]["reservations"]["devices"] == [{"driver": "nvidia", "capabilities": ["gpu"],
                                                                     "count": 2}]
    assert job["shm_size"] == "1g" and job["deploy"]["resources"]["limits"]["memory"] == "4g"
    assert job["volumes"] == ["./output:/output", "/data:/data:ro", "cache:/cache"]
    assert doc["volumes"] == {"cache": {}}
    assert job["read_only"] and job["cap_drop"] == ["ALL"]


def test_compose_gives_the_runner_what_every_backend_gives_it() -> None:
    spec = JobSpec(notebook=Path("nb.ipynb"), env={"SEED": "1"}, parameters={"lr": 0.1},
                   resources=Resources(time_limit="02:00:00", cell_time_limit="00:30:00"))
    env = yaml.safe_load(compose_yaml(spec, "img:1"))["services"]["job"]["environment"]
    assert env == {"SEED": "1", "JC_JOB_ID": "export", "JC_OUTPUT_DIR": "/output", "JC_PARAMETERS": '{"lr": 0.1}',
                   "JC_TIMEOUT": "7200", "JC_CELL_TIMEOUT": "1800"}  # the output notebook: nb.export.ipynb


def test_container_uid() -> None:
    assert container_uid("FROM x AS b\nUSER 0\nFROM y\nUSER 1234:1234\n") == 1234
    assert container_uid("FROM y\n") == 1000
