"""The example notebooks that use the magics run top to bottom against the real engine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import NOTEBOOKS
from tests.support.kernel import text_of

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("base_image")]


def run_example(name: str, folder: Path) -> Any:
    for nb_name in ("quickstart.ipynb", name):
        shutil.copy(NOTEBOOKS / nb_name, folder / nb_name)
    nb = nbformat.read(str(folder / name), as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=900, store_widget_state=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def outputs_text(nb: Any) -> str:
    return "\n".join(text_of(cell) for cell in nb.cells if "outputs" in cell)


@pytest.fixture(autouse=True)
def _kernel_env(job_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JC_NO_WIDGETS", "JC_JOB_ID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_sweep_notebook(tmp_path: Path) -> None:
    nb = run_example("sweep.ipynb", tmp_path)
    text = outputs_text(nb)
    assert "n_estimators=5 " in text and "n_estimators=20 " in text and text.count("succeeded") >= 2
    assert len(list((tmp_path / "quickstart.jc-jobs").iterdir())) == 2


def test_cell_magic_notebook(tmp_path: Path) -> None:
    nb = run_example("cell_magic.ipynb", tmp_path)
    text = outputs_text(nb)
    assert "outputs: model, train_accuracy" in text and "Pipeline 1.0" in text
    # the cell's own print went to the job view's log (a widget), not to the cell's stream
    store = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any("trained in the container: accuracy" in str(m["state"].get("value", "")) for m in store.values())
    last = [o for o in nb.cells[-1].outputs if o.output_type == "error"]
    assert last and last[0].ename == "RemoteCellError" and "Traceback in the container:" in "\n".join(last[0].traceback)


def test_gpu_training_notebook(tmp_path: Path) -> None:
    nb = run_example("gpu_training.ipynb", tmp_path)
    text = outputs_text(nb)
    assert "final MSE" in text and "succeeded" in text
    if "PyTorch is not installed here" in text:
        assert "numpy: final MSE" in text
