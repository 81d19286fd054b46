"""%containerize / %%containerize in a real ipykernel (driven by nbclient) against the real engine."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support import REPO
from tests.support.engine import labelled_containers
from tests.support.kernel import execute, text_of

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]
FIXTURES = REPO / "tests" / "fixtures" / "notebooks"


def widget_states(nb: Any) -> list[dict[str, Any]]:
    store = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return [m["state"] for m in store.get("state", {}).values()]


@pytest.fixture()
def kernel_env(job_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel inherits this process's environment: a private store, widgets on."""
    monkeypatch.delenv("JC_NO_WIDGETS", raising=False)
    monkeypatch.delenv("JC_JOB_ID", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return job_store


def test_run_with_widgets_keeps_the_kernel_free_and_ends_with_full_progress(
        quickstart: Path, kernel_env: Path, engine: docker.DockerClient) -> None:
    nb = execute(
        quickstart.parent,
        "%load_ext jupyter_containerize",
        "%containerize run --notebook quickstart.ipynb -p n_estimators=5",
        # The kernel answers while the job is still going (the run cell returned at once).
        "from jupyter_containerize.magics import current\n"
        "view = current().last_view\n"
        "print('answered while', view.job.status, view.model.status, view.job.id)",
        "record = view.job.wait(timeout=900)\nview.wait(10)\nprint('final', record.status)",
    )
    answered = text_of(nb.cells[2]).split()
    assert answered[:1] == ["answered"] and answered[2] not in ("succeeded", "failed", "cancelled")
    job_id = answered[-1]
    assert "final succeeded" in text_of(nb.cells[3])
    assert [o["output_type"] for o in nb.cells[1].outputs] == ["display_data"], nb.cells[1].outputs
    assert "application/vnd.jupyter.widget-view+json" in nb.cells[1].outputs[0]["data"]
    states = widget_states(nb)
    cells_bar = [s for s in states if s.get("_model_name") == "IntProgressModel" and s.get("description") == "cells"]
    build_bar = [s for s in states if s.get("_model_name") == "IntProgressModel" and s.get("description") == "build"]
    assert cells_bar and cells_bar[0]["value"] == cells_bar[0]["max"] >= 5
    assert cells_bar[0]["bar_style"] == "success"
    assert build_bar and build_bar[0]["value"] == build_bar[0]["max"]
    html = " ".join(str(s.get("value", "")) for s in states if s.get("_model_name") == "HTMLModel")
    assert job_id in html and "jc-status-succeeded" in html and "accuracy" in html
    # The output links: an Output's HTML, which JupyterLab renders (its link handler opens a tab, not a page).
    links = [o["data"]["text/html"] for s in states if s.get("_model_name") == "OutputModel"
             for o in s.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(links) == 1 and f'href="quickstart.jc-jobs/{job_id}/quickstart.{job_id}.ipynb"' in links[0], links
    assert labelled_containers(engine, job_id) == []


def test_text_fallback_and_wait_returns_the_record(quickstart: Path, kernel_env: Path) -> None:
    nb = execute(
        quickstart.parent,
        "%load_ext jupyter_containerize",
        "%containerize run --notebook quickstart.ipynb -p n_estimators=4 --text --wait",
    )
    text = text_of(nb.cells[1])
    assert "cell 1/" in text and "cell 6/6: with open(output" in text
    assert "job succeeded (exit code 0)" in text
    assert "<job " in text and " succeeded in " in text and "accuracy=" in text
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps(nb.cells[1].outputs)


def test_current_notebook_from_the_session_name(quickstart: Path, kernel_env: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", str(quickstart))
    saved = time.time() - 60  # saved a minute before the kernel's cells ran (not left to the machine's speed)
    os.utime(quickstart, (saved, saved))
    nb = execute(quickstart.parent, "%load_ext jupyter_containerize",
                 "r = %containerize run --text --wait -p n_estimators=3\nprint(r.status, r.notebook)")
    text = text_of(nb.cells[1])
    assert f"succeeded {quickstart}" in text
    # The file on disk predates the kernel's last cell: the user is told unsaved edits stay behind.
    assert "unsaved changes won't be in the job" in text


def test_cancel_from_the_widget_stops_the_container(tmp_path: Path, kernel_env: Path,
                                                    engine: docker.DockerClient) -> None:
    shutil.copy(FIXTURES / "long_running.ipynb", tmp_path / "long_running.ipynb")
    nb = execute(
        tmp_path,
        "%load_ext jupyter_containerize",
        "%containerize run --notebook long_running.ipynb",
        "import time\nfrom jupyter_containerize.magics import current\nview = current().last_view\n"
        "deadline = time.time() + 900\n"
        "while view.model.running_cell != 1 and not view.model.done and time.time() < deadline:\n"
        "    time.sleep(0.2)\n"
        "print('running', view.model.running_cell, view.job.id)\n"
        "view.cancel_button.click()  # what a click in the front end calls\n"
        "record = view.job.wait(timeout=120)\nview.wait(10)\nprint('final', record.status)",
    )
    text = text_of(nb.cells[2])
    assert "running 1 " in text and "final cancelled" in text
    job_id = text.split("running 1 ")[1].split()[0]
    assert labelled_containers(engine, job_id) == []
    states = widget_states(nb)
    html = " ".join(str(s.get("value", "")) for s in states if s.get("_model_name") == "HTMLModel")
    assert "jc-status-cancelled" in html


def test_cell_magic_returns_outputs_and_raises_remote_errors(tmp_path: Path, kernel_env: Path) -> None:
    nb = execute(
        tmp_path,
        "%load_ext jupyter_containerize",
        "from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)\nscale = lambda a: a / a.max()",
        "%%containerize --inputs X,y,scale --outputs model,score --text\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression(max_iter=500).fit(scale(X), y)\n"
        "score = float(model.score(scale(X), y))",
        "print(type(model).__name__, score > 0.8)",
        "%%containerize --inputs X --text\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "raise ValueError(f'boom with {len(X)} rows')",
        "print('still alive')",
        raises=(4,),
    )
    assert "succeeded" in text_of(nb.cells[2]) and "outputs: model, score" in text_of(nb.cells[2])
    assert "LogisticRegression True" in text_of(nb.cells[3])
    errors = [o for o in nb.cells[4].outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "RemoteCellError"
    tb = "\n".join(errors[0].traceback)
    assert "Traceback in the container:" in tb and "boom with 150 rows" in tb and "ValueError" in tb
    assert "still alive" in text_of(nb.cells[5])


def test_the_cell_magic_under_widgets_shows_the_cells_own_output(tmp_path: Path, kernel_env: Path) -> None:
    """The widget folds the build away; what the cell printed shows as the cell's output, nothing of the build."""
    nb = execute(
        tmp_path,
        "%load_ext jupyter_containerize",
        "%%containerize --outputs total\nimport sys\ntotal = sum(range(10))\nprint('total is', total)\n"
        "print('careful', file=sys.stderr)",
    )
    streams = {o.get("name"): o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream"}
    assert "total is 45\n" in streams.get("stdout", "") and "careful\n" in streams.get("stderr", "")
    assert "step " not in streams.get("stdout", "") and "warning:" not in streams.get("stdout", "")
    assert "succeeded" in streams.get("stdout", "") and "outputs: total" in streams.get("stdout", "")


def test_a_sweep_ends_with_its_comparison_under_the_widgets_and_in_text(tmp_path: Path, kernel_env: Path) -> None:
    """``%containerize run --sweep``: once both jobs ended, the table (best run marked) and the Vega-Lite plot show,
    in the widget view (without --wait) and as display data (--text --wait)."""
    from tests.support.notebooks import write_notebook

    vega = "application/vnd.vegalite.v5+json"
    write_notebook(tmp_path / "train.ipynb", "from jupyter_containerize import log_metric\nlog_metric('accuracy', 1 - lr)",
                   parameters="lr = 0.5")
    nb = execute(
        tmp_path,
        "%load_ext jupyter_containerize",
        "%containerize run --notebook train.ipynb --sweep lr=0.1,0.3 --name kstudy",
        "from jupyter_containerize.magics import current\nsweep = current().last_sweep\n"
        "print('compared', sweep.wait(900), sweep.error, sweep.comparison.best.name)",
        "%containerize run --notebook train.ipynb --sweep lr=0.2,0.4 --text --wait",
    )
    assert text_of(nb.cells[2]).strip() == "compared True  kstudy lr=0.1"
    states = widget_states(nb)
    tables = [s["value"] for s in states if s.get("_model_name") == "HTMLModel" and "jc-sweep-comparison" in s["value"]]
    assert len(tables) == 1 and tables[0].count("jc-best") == 1 and "★" in tables[0] and "kstudy lr=0.1" in tables[0]
    plots = [o for s in states if s.get("_model_name") == "OutputModel" for o in s.get("outputs", [])
             if vega in o.get("data", {})]
    assert len(plots) == 1 and plots[0]["metadata"][vega]["embed_options"]["renderer"] == "svg"
    points = plots[0]["data"][vega]["data"]["values"]
    assert [(p["p:lr"], p["best"]) for p in points] == [(0.1, True), (0.3, False)]
    assert [p["value"] for p in points] == pytest.approx([0.9, 0.7])

    shown = [o for o in nb.cells[3].outputs if o["output_type"] == "display_data"]
    table = next(o for o in shown if "text/html" in o["data"])
    assert "jc-best" in table["data"]["text/html"] and "metric accuracy, higher is better" in table["data"]["text/plain"]
    plot = next(o for o in shown if vega in o["data"])
    assert [(p["p:lr"], p["best"]) for p in plot["data"][vega]["data"]["values"]] == [(0.2, True), (0.4, False)]
    assert "job succeeded" in text_of(nb.cells[3])
