"""End to end in a real browser: JupyterLab + the Containers sidebar + the real engine (issue 5).

Starts JupyterLab (token auth, a temp root holding a copy of the quickstart),
drives Debian's headless Chromium with Playwright, builds and runs the notebook
from the sidebar, watches the progress move and the job succeed, then opens the
output notebook. Screenshots land in test-artifacts/ui/. Every test fails on an uncaught
error in the page (the ``page`` fixture's teardown).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import NOTEBOOKS, REPO
from tests.support.outputs import output_notebook

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.usefixtures("base_image")]

CHROMIUM = os.environ.get("JC_CHROMIUM", "/usr/bin/chromium")
BUILT = REPO / "jupyter_containerize" / "labextension"
ARTIFACTS = REPO / "test-artifacts" / "ui"
JOB_TIMEOUT_MS = 15 * 60 * 1000


def _need(ok: bool, why: str) -> None:
    """Missing tools fail in CI and skip on a developer's machine."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path, job_store: Path) -> Iterator[dict[str, Any]]:
    """A JupyterLab server with the extension, on a temp root; yields its URL and token."""
    _need((BUILT / "package.json").is_file(), f"the labextension is not built ({BUILT}); run `pip install -e .`")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", root / "quickstart.ipynb")
    extra = tmp_path / "labextensions"
    extra.mkdir()
    (extra / "jupyter-containerize").symlink_to(BUILT, target_is_directory=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    })
    # No "get Jupyter news?" toast over the screenshots.
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Render every cell (no windowing), so the output notebook's last outputs are in the page to read.
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.jpserver_extensions=jupyter_containerize=True",
         f"--LabApp.extra_labextensions_path={extra}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "root": root, "log": tmp_path / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def page(lab: dict[str, Any]) -> Iterator[Any]:
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright package is not installed (pip install playwright)")
        raise
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(e.stack or str(e)))
        try:
            yield pg
        except BaseException:
            pg.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            context.close()
            browser.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open_panel(page: Any, lab: dict[str, Any], notebook: str) -> Any:
    """Open ``notebook`` in JupyterLab and the Containers sidebar on it; the panel, once the engine answered."""
    page.goto(f"{lab['url']}/lab/tree/{notebook}?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jupyter-containerize-panel"]').click()
    panel = page.locator("#jupyter-containerize-panel")
    panel.locator(".jc-Notebook code", has_text=notebook).wait_for()
    panel.locator(".jc-Badge-on").wait_for()
    return panel


def _current_tab(page: Any) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").first


def _bars(page: Any) -> tuple[str, int, int]:
    job = page.locator(".jc-Job").first
    status = job.get_attribute("data-status") or ""
    build = job.locator('[role="progressbar"][aria-label="build"]').get_attribute("aria-valuenow") or "0"
    run = job.locator('[role="progressbar"][aria-label="run"]').get_attribute("aria-valuenow") or "0"
    return status, int(build), int(run)


def test_build_and_run_from_the_sidebar(lab: dict[str, Any], page: Any) -> None:
    page.goto(f"{lab['url']}/lab/tree/quickstart.ipynb?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    # The notebook toolbar button and the sidebar tab are both there.
    page.locator(".jp-NotebookPanel .jc-ToolbarButton").first.wait_for()
    page.locator('.jp-SideBar [data-id="jupyter-containerize-panel"]').click()
    panel = page.locator("#jupyter-containerize-panel")
    panel.locator(".jc-Badge-on").wait_for()  # the engine answered
    field = panel.locator('input[name="param-n_estimators"]')
    field.wait_for()
    assert field.input_value() == "30"  # read from the parameters cell
    field.fill("9")
    _shot(page, "01-sidebar")

    panel.get_by_role("button", name="Preview Dockerfile").click()
    panel.locator(".jc-Dockerfile, .jc-Banner-error").first.wait_for(timeout=300_000)
    assert panel.locator(".jc-Banner-error").count() == 0, panel.locator(".jc-Banner-error").inner_text()
    assert "FROM " in panel.locator(".jc-Dockerfile").inner_text()
    _shot(page, "02-preview")
    panel.get_by_role("button", name="Close").click()

    panel.get_by_role("button", name="Build & Run").click()
    panel.locator(".jc-Job").first.wait_for()
    seen: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    shot_running = False
    while time.monotonic() < deadline:
        state = _bars(page)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[0] in ("running", "building") and not shot_running and (state[1] or state[2]):
            _shot(page, "03-progress")
            shot_running = True
        if state[0] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    job = panel.locator(".jc-Job").first
    job.get_by_role("button", name="Log").click()
    _shot(page, "04-finished")
    assert seen[-1][0] == "succeeded", f"the job ended {seen[-1][0]}: {job.inner_text()}"
    assert seen[-1][1:] == (100, 100), seen
    assert len({s[1] + s[2] for s in seen}) >= 2, f"the progress never moved: {seen}"
    assert any(s[0] in ("queued", "building", "running") for s in seen), seen
    assert "n_estimators=9" in job.inner_text()
    assert "accuracy" in job.inner_text()  # metrics shown
    # A JupyterLab notification says so.
    page.get_by_text("succeeded.", exact=False).first.wait_for()

    job.locator(".jc-OpenOutput").click()
    output_tab = page.locator(".jp-NotebookPanel:visible")
    output_tab.locator(".jp-OutputArea-output").first.wait_for()
    text = output_tab.first.inner_text()
    assert "test accuracy" in text and "n_estimators = 9" in text
    title = _current_tab(page).get_attribute("title") or ""
    assert ".jc-jobs/" in title and "quickstart.ipynb" not in title, title  # quickstart.<job id>.ipynb
    # A result to read: it opens unchanged, also once its kernel has started and JupyterLab wrote the
    # kernel's name and language into its metadata (the job recorded "Python 3", the kernel here is another).
    page.locator(".jp-NotebookPanel:visible .jp-Toolbar-kernelName", has_text="ipykernel").wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    page.wait_for_timeout(1500)
    tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*=".jc-jobs/"]')
    assert tab.count() == 1 and "jp-mod-dirty" not in (tab.get_attribute("class") or "")
    _shot(page, "05-output-notebook")


def test_preview_names_the_data_mounted_and_the_code_copied(lab: dict[str, Any], page: Any) -> None:
    """Quick (no build): the preview lists the data a run mounts and the notebook's own code, each with why."""
    from tests.support.notebooks import write_notebook

    root: Path = lab["root"]
    (root / "src" / "mylib").mkdir(parents=True)
    (root / "src" / "mylib" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "nb" / "data").mkdir(parents=True)
    (root / "nb" / "data" / "x.csv").write_text("a,b\n1,2\n")
    write_notebook(root / "nb" / "analysis.ipynb",
                   "import sys\nsys.path.append('../src')\nimport mylib",
                   "import csv\nrows = list(csv.reader(open('data/x.csv')))\nprint(mylib.double(len(rows)))")
    page.goto(f"{lab['url']}/lab/tree/nb/analysis.ipynb?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jupyter-containerize-panel"]').click()
    panel = page.locator("#jupyter-containerize-panel")
    panel.locator(".jc-Notebook code", has_text="nb/analysis.ipynb").wait_for()
    switch = panel.locator('input[name="auto-mount"]')
    assert switch.is_checked()  # mounting the data is the default

    def preview() -> Any:
        panel.get_by_role("button", name="Preview Dockerfile").click()
        panel.locator(".jc-Dockerfile, .jc-Banner-error").first.wait_for(timeout=120_000)
        assert panel.locator(".jc-Banner-error").count() == 0, panel.locator(".jc-Banner-error").inner_text()
        return panel.locator(".jc-Preview")

    shown = preview()
    mounts, code = shown.locator(".jc-Mounts"), shown.locator(".jc-LocalCode")
    assert "Mounted read-only (1)" in mounts.inner_text()
    assert "/work/nb/data" in mounts.inner_text() and "read by cell 2" in mounts.inner_text()
    assert "Your code in the image (1)" in code.inner_text()
    assert "../src/mylib" in code.inner_text() and "imported by cell 1" in code.inner_text()
    # Both come before the build context's file list.
    order = shown.inner_text()
    assert order.index("Mounted read-only") < order.index("Your code in the image") < order.index("Build context")
    mounts.scroll_into_view_if_needed()
    _shot(page, "06-preview-references")

    panel.get_by_role("button", name="Close").click()
    switch.uncheck()  # sent as no_auto_mount: the run's --no-auto-mount
    shown = preview()
    assert shown.locator(".jc-Mounts").count() == 0
    assert "../src/mylib" in shown.locator(".jc-LocalCode").inner_text()


def test_cancel_and_re_run_from_the_job_card(lab: dict[str, Any], page: Any) -> None:
    """A long job is cancelled from its card; its Re-run makes a new job of the same notebook, cancelled in turn."""
    shutil.copy(REPO / "tests" / "fixtures" / "notebooks" / "long_running.ipynb", lab["root"] / "long_running.ipynb")
    page.goto(f"{lab['url']}/lab/tree/long_running.ipynb?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jupyter-containerize-panel"]').click()
    panel = page.locator("#jupyter-containerize-panel")
    panel.locator(".jc-Notebook code", has_text="long_running.ipynb").wait_for()
    panel.get_by_role("button", name="Build & Run").click()

    def running_then_cancelled(job: Any) -> str:
        job.locator('[data-action="cancel"]').wait_for()
        assert job.locator('[data-action="rerun"]').count() == 0
        job.and_(page.locator('[data-status="running"]')).wait_for(timeout=JOB_TIMEOUT_MS)
        job.locator('[data-action="cancel"]').click()
        job.and_(page.locator('[data-status="cancelled"]')).wait_for(timeout=120_000)
        return str(job.get_attribute("data-job-id"))

    first = running_then_cancelled(panel.locator(".jc-Job").first)
    card = panel.locator(f'.jc-Job[data-job-id="{first}"]')
    assert card.locator('[data-action="cancel"]').count() == 0
    _shot(page, "07-cancelled")
    card.locator('[data-action="rerun"]').click()
    newest = panel.locator(".jc-Job").first
    newest.and_(page.locator(f'.jc-Job:not([data-job-id="{first}"])')).wait_for()
    second = running_then_cancelled(newest)
    assert second != first
    assert panel.locator(".jc-Job").count() == 2
    assert card.get_attribute("data-status") == "cancelled"  # the job it came from is kept as it was
    _shot(page, "08-re-run-cancelled")


def _rest(lab: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> Any:
    """A call to the server extension with the token, as any REST client makes it."""
    request = urllib.request.Request(
        f"{lab['url']}/containerize/{path}", method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def _aria(label: str) -> dict[str, str]:
    """Vega's aria-label of a mark, ``lr: 0.1; accuracy: 0.9; …``, as a dict."""
    return dict(part.split(": ", 1) for part in label.split("; ") if ": " in part)


def test_compare_a_sweep_in_the_sidebar(lab: dict[str, Any], page: Any) -> None:
    """A 2-job sweep (started over REST) shows under one header; Compare draws the table and the plot, whose
    points (Vega's SVG, through JupyterLab's own renderer) are the jobs' metrics, the best one marked."""
    from tests.support.notebooks import write_notebook

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    write_notebook(lab["root"] / "sweep.ipynb",
                   "from jupyter_containerize import log_metric\nlog_metric('accuracy', 1 - lr)\n"
                   "log_metric('loss', 2 * lr)", parameters="lr = 0.5")
    page.goto(f"{lab['url']}/lab/tree/sweep.ipynb?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jupyter-containerize-panel"]').click()
    panel = page.locator("#jupyter-containerize-panel")
    panel.locator(".jc-Badge-on").wait_for()  # the engine answered

    created = _rest(lab, "jobs", {"path": "sweep.ipynb", "options": {"sweep": {"lr": [0.1, 0.3]}, "name": "ui study"}})
    jobs = created["jobs"]
    sweep_id = jobs[0]["sweep_id"]
    assert len(jobs) == 2 and sweep_id
    group = panel.locator(f'.jc-Sweep[data-sweep-id="{sweep_id}"]')
    group.wait_for()
    assert "ui study" in group.locator(".jc-SweepTitle").inner_text() and sweep_id in group.locator(".jc-SweepTitle").inner_text()
    assert group.locator(".jc-Job").count() == 2
    for job in jobs:  # each card: its name, its id and its parameter values, from the start
        card = group.locator(f'.jc-Job[data-job-id="{job["id"]}"]')
        name = card.locator(".jc-JobName")
        assert name.inner_text() == job["name"] and name.evaluate("e => e.scrollWidth <= e.clientWidth")  # not cut
        assert card.locator(".jc-JobId").inner_text() == job["id"] and card.locator(".jc-JobId").is_visible()
        assert f"lr={job['parameters']['lr']}" in card.locator(".jc-Kv").first.inner_text()
    group.locator('.jc-Job[data-status="succeeded"]').nth(1).wait_for(timeout=JOB_TIMEOUT_MS)
    records = {job["id"]: _rest(lab, f"jobs/{job['id']}") for job in jobs}
    assert all(r["status"] == "succeeded" for r in records.values()), [r["error"] for r in records.values()]
    best = max(records.values(), key=lambda r: r["metrics"]["accuracy"])
    _shot(page, "09-sweep-group")

    # A wider sidebar, as one would drag it to read a table (the plot fits its panel when it is drawn).
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(620, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    group.get_by_role("button", name="Compare").click()
    compare = group.locator(".jc-Compare")
    compare.locator(".jc-CompareTable").wait_for()
    best_row = compare.locator("tr.jc-Best")
    assert best_row.count() == 1 and best_row.get_attribute("data-job-id") == best["id"]
    assert "★" in best_row.inner_text() and best["name"] in best_row.inner_text()
    assert "metric accuracy, higher is better" in compare.locator(".jc-CompareSummary").inner_text()

    points = compare.locator(".jc-ComparePlot svg g.mark-symbol.role-mark > path")  # not the legend's
    points.nth(1).wait_for()
    assert points.count() == 2
    compare.scroll_into_view_if_needed()
    _shot(page, "10-sweep-compared")
    drawn = {}
    for i in range(points.count()):
        aria = _aria(points.nth(i).get_attribute("aria-label") or "")
        drawn[aria["job"]] = aria
    assert set(drawn) == set(records), drawn
    for job_id, record in records.items():
        assert float(drawn[job_id]["accuracy"]) == pytest.approx(record["metrics"]["accuracy"], rel=1e-3)
        assert float(drawn[job_id]["lr"]) == pytest.approx(record["parameters"]["lr"])
        assert drawn[job_id]["best run"] == ("true" if job_id == best["id"] else "false")
    labels = compare.locator(".jc-ComparePlot svg g.mark-text.role-mark > text")
    assert labels.all_text_contents() == ["best"]  # one label, at the best point

    compare.locator('select[name="compare-metric"]').select_option("loss")  # ranked again, lower is better
    compare.locator(".jc-CompareSummary", has_text="metric loss, lower is better").wait_for()
    assert compare.locator("tr.jc-Best").get_attribute("data-job-id") == best["id"]  # the smaller lr again
    page.wait_for_timeout(500)
    assert errors == [], errors


def test_build_and_run_saves_unsaved_edits_first(lab: dict[str, Any], page: Any) -> None:
    """An edit of the parameters cell not saved yet: Build & Run saves the notebook first (and says so), so
    the job runs the value the editor shows; the form reads the saved cell again."""
    panel = _open_panel(page, lab, "quickstart.ipynb")
    field = panel.locator('input[name="param-n_estimators"]')
    field.wait_for()
    assert field.input_value() == "30"
    editor = page.locator(".jp-NotebookPanel .jp-CodeCell").first.locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text("n_estimators = 12\nmax_depth = 6\nseed = 0")
    tab = _current_tab(page)
    page.wait_for_function("t => t.classList.contains('jp-mod-dirty')", arg=tab.element_handle())
    assert "n_estimators = 30" in (lab["root"] / "quickstart.ipynb").read_text()  # not saved yet

    panel.get_by_role("button", name="Build & Run").click()
    panel.locator(".jc-Banner-note", has_text="Saved quickstart.ipynb first").wait_for()
    assert "n_estimators = 12" in (lab["root"] / "quickstart.ipynb").read_text()
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")
    page.wait_for_function("f => f.value === '12'", arg=field.element_handle())  # the saved default
    job = panel.locator(".jc-Job").first
    job.and_(page.locator('[data-status="succeeded"], [data-status="failed"]')).wait_for(timeout=JOB_TIMEOUT_MS)
    assert job.get_attribute("data-status") == "succeeded", job.inner_text()
    assert "n_estimators: 12" in job.locator(".jc-Metrics").inner_text()
    _shot(page, "11-saved-before-run")


def test_delete_asks_and_can_remove_the_outputs(lab: dict[str, Any], page: Any) -> None:
    """Delete opens a dialog: Cancel keeps the job; "Delete job and its outputs" removes the card and the
    job's own folder (<stem>.jc-jobs/<id>/) on disk."""
    panel = _open_panel(page, lab, "quickstart.ipynb")
    job_id = _rest(lab, "jobs", {"path": "quickstart.ipynb", "options": {}})["id"]
    card = panel.locator(f'.jc-Job[data-job-id="{job_id}"]')
    card.and_(page.locator('[data-status="succeeded"], [data-status="failed"]')).wait_for(timeout=JOB_TIMEOUT_MS)
    assert card.get_attribute("data-status") == "succeeded", card.inner_text()
    folder = lab["root"] / "quickstart.jc-jobs" / job_id
    executed = output_notebook(folder, job_id)  # quickstart.<job id>.ipynb: its tab is not the source's
    assert executed.name == f"quickstart.{job_id}.ipynb" and not (folder / "quickstart.ipynb").exists()

    # Its output notebook opens unchanged, though the job recorded the notebook's kernel as "Python 3" and
    # the kernel that starts here writes its own name and language into the metadata.
    assert '"display_name": "Python 3"' in executed.read_text()
    card.locator(".jc-OpenOutput").click()
    output = page.locator(".jp-NotebookPanel:visible")
    output.locator(".jp-Toolbar-kernelName", has_text="ipykernel").wait_for()
    output.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    page.wait_for_timeout(1500)
    tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*=".jc-jobs/"]')
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    tab.wait_for(state="detached")

    card.locator('[data-action="delete"]').click()
    dialog = page.locator(".jp-Dialog")
    assert f"quickstart.jc-jobs/{job_id}/" in dialog.locator(".jp-Dialog-body").inner_text()
    assert dialog.get_by_role("button", name="Delete job", exact=True).is_visible()
    _shot(page, "12-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert card.is_visible() and folder.is_dir()

    card.locator('[data-action="delete"]').click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete job and its outputs", exact=True).click()
    card.wait_for(state="detached")
    assert not folder.exists() and (lab["root"] / "quickstart.ipynb").is_file()
    page.get_by_text("and its outputs (quickstart.jc-jobs/", exact=False).first.wait_for()
    _shot(page, "13-deleted-with-outputs")


def test_the_toolbar_button_opens_the_panel_and_run_again_repeats_the_last_settings(
        lab: dict[str, Any], page: Any) -> None:
    """The notebook toolbar's Container button opens the sidebar (it starts nothing); "Run again" (toolbar and
    palette) runs the notebook with the options last used for it in the sidebar."""
    page.goto(f"{lab['url']}/lab/tree/quickstart.ipynb?token={lab['token']}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    panel = page.locator("#jupyter-containerize-panel")
    assert not panel.is_visible()
    again = page.locator(".jp-NotebookPanel .jc-RunAgainButton button, .jp-NotebookPanel button.jc-RunAgainButton")
    again.first.wait_for()
    assert again.first.is_disabled()  # nothing run from the sidebar yet
    page.locator(".jp-NotebookPanel .jc-ToolbarButton").first.click()
    panel.wait_for()
    panel.locator(".jc-Notebook code", has_text="quickstart.ipynb").wait_for()
    panel.locator(".jc-Badge-on").wait_for()
    page.wait_for_timeout(1000)
    assert panel.locator(".jc-Job").count() == 0 and _rest(lab, "jobs")["jobs"] == []  # it ran nothing
    _shot(page, "14-toolbar-opens-the-panel")

    panel.locator('input[name="param-n_estimators"]').fill("5")
    panel.get_by_role("button", name="Build & Run").click()
    first = panel.locator(".jc-Job").first
    first.wait_for()
    first_id = first.get_attribute("data-job-id")
    assert "n_estimators=5" in first.locator(".jc-Kv").first.inner_text()
    panel.locator('input[name="param-n_estimators"]').fill("30")  # the form changes; "Run again" keeps what ran
    page.wait_for_function("b => !b.disabled", arg=again.first.element_handle())
    again.first.click()
    second = panel.locator(f'.jc-Job:not([data-job-id="{first_id}"])').first
    second.wait_for()
    assert "n_estimators=5" in second.locator(".jc-Kv").first.inner_text()
    for card in (first, second):
        card.and_(page.locator('[data-status="succeeded"], [data-status="failed"]')).wait_for(timeout=JOB_TIMEOUT_MS)
        assert card.get_attribute("data-status") == "succeeded", card.inner_text()
    _shot(page, "15-run-again")


def test_parameter_inputs_are_typed_and_the_form_is_not_cut(lab: dict[str, Any], page: Any) -> None:
    """Each parameter gets the input of its type (a number input for an int or a float, a checkbox for a bool);
    values go typed and the server's refusal shows in the form; at the default sidebar width no label or
    select is cut; the preview shows the machine's notes collapsed, not as errors."""
    from tests.support.notebooks import write_notebook

    write_notebook(lab["root"] / "typed.ipynb", "print(epochs, lr, augment, optimizer, layers)",
                   parameters="epochs = 3\nlr = 0.01\naugment = False\noptimizer = 'adam'\nlayers = [64, 32]")
    panel = _open_panel(page, lab, "typed.ipynb")
    epochs = panel.locator('input[name="param-epochs"]')
    epochs.wait_for()
    kinds = {name: panel.locator(f'input[name="param-{name}"]').evaluate("e => [e.type, e.step, e.value]")
             for name in ("epochs", "lr", "optimizer", "layers")}
    assert kinds == {"epochs": ["number", "1", "3"], "lr": ["number", "any", "0.01"],
                     "optimizer": ["text", "", "adam"], "layers": ["text", "", "[64, 32]"]}, kinds
    augment = panel.locator('input[name="param-augment"]')
    assert augment.get_attribute("type") == "checkbox" and not augment.is_checked()

    cut = panel.locator(".jc-Form").evaluate("""form => {
        const out = [];
        for (const l of form.querySelectorAll('.jc-Label, legend')) {
            if (l.scrollWidth > l.clientWidth + 1) out.push(l.textContent);
        }
        const ctx = document.createElement('canvas').getContext('2d');
        for (const s of form.querySelectorAll('select')) {
            const style = getComputedStyle(s);
            ctx.font = style.font;
            // The padding on the right holds the arrow.
            const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const need = ctx.measureText(s.options[s.selectedIndex].text).width;
            if (need > room) out.push(`${s.name}: the text needs ${need}px, the select has ${room}px`);
        }
        return out;
    }""")
    _shot(page, "16-typed-parameters")
    assert cut == [], f"cut at the default width: {cut}"

    epochs.fill("2.5")
    panel.get_by_role("button", name="Build & Run").click()
    banner = panel.locator(".jc-Banner-error")
    banner.wait_for()
    assert "epochs is an int" in banner.inner_text() and "2.5" in banner.inner_text(), banner.inner_text()
    assert panel.locator(".jc-Job").count() == 0

    epochs.fill("4")
    panel.get_by_role("button", name="Preview Dockerfile").click()
    banner.wait_for(state="detached")
    panel.locator(".jc-Dockerfile, .jc-Banner-error").first.wait_for(timeout=300_000)
    assert banner.count() == 0, banner.inner_text()
    notes = panel.locator(".jc-Preview .jc-Notes")
    if notes.count():  # this machine's pip configuration, where it has one: a note, not an error
        assert notes.get_attribute("open") is None
        assert notes.locator("summary").inner_text().startswith("Notes (")
        notes.locator("summary").click()
        assert notes.locator("li").first.is_visible()
        notes.scroll_into_view_if_needed()
        _shot(page, "18-preview-notes")
    panel.get_by_role("button", name="Close").click()

    augment.check()
    panel.locator('input[name="param-optimizer"]').fill("1e3")  # text, not the number 1000.0
    panel.get_by_role("button", name="Build & Run").click()
    job = panel.locator(".jc-Job").first
    job.wait_for()
    assert sorted(job.locator(".jc-Kv").first.inner_text().split()) == ["augment=true", "epochs=4", 'optimizer="1e3"']
    job.and_(page.locator('[data-status="succeeded"], [data-status="failed"]')).wait_for(timeout=JOB_TIMEOUT_MS)
    assert job.get_attribute("data-status") == "succeeded", job.inner_text()
    _shot(page, "17-typed-run")


def test_schedules_in_the_sidebar_pause_resume_and_remove(lab: dict[str, Any], page: Any, job_store: Path) -> None:
    """A schedule saved over REST (as `jupyter containerize schedule` saves one) shows in the sidebar: notebook,
    rule and zone, next run in the reader's time, its last run's job and status. Pause and Resume change it on
    the server; Remove asks first (Cancel keeps it) and leaves the jobs it started."""
    from datetime import datetime

    from jupyter_containerize.jobs.store import JobStore

    created = _rest(lab, "schedules", {"path": "quickstart.ipynb", "cron": "30 4 * * *", "tz": "Asia/Tokyo", "options": {}})
    sid = created["id"]
    store = JobStore(job_store)
    last = store.create(created["notebook"], status="failed", error="boom", schedule_id=sid, finished=time.time())
    store.schedule_started(sid, job_id=last.id)

    panel = _open_panel(page, lab, "quickstart.ipynb")
    row = panel.locator(f'.jc-Schedule[data-schedule-id="{sid}"]')
    row.wait_for()
    text = row.inner_text()
    assert "quickstart.ipynb" in text and "30 4 * * * (Asia/Tokyo)" in text, text
    nxt = row.locator(".jc-ScheduleNext")
    # The reader's wall clock (the browser runs in this machine's zone), with the rule's own zone as its tooltip.
    local = datetime.fromtimestamp(created["next_run"])
    clocks = {local.strftime("%H:%M"), local.strftime("%I:%M")}  # 24 h or 12 h, as the browser's language writes it
    assert any(c in nxt.inner_text() for c in clocks), (clocks, nxt.inner_text())
    assert nxt.get_attribute("title") == created["next_run_text"]
    row.locator(".jc-ScheduleLast", has_text=f"failed · job {last.id}").wait_for()
    _shot(page, "19-schedules")

    row.locator('[data-action="pause"]').click()
    row.and_(page.locator('[data-paused="true"]')).wait_for()
    assert _rest(lab, f"schedules/{sid}")["paused"] is True
    assert "none while paused" in nxt.inner_text() and row.locator('[data-action="pause"]').count() == 0
    row.locator('[data-action="resume"]').click()
    row.and_(page.locator('[data-paused="false"]')).wait_for()
    assert _rest(lab, f"schedules/{sid}")["paused"] is False

    row.locator('[data-action="remove"]').click()
    dialog = page.locator(".jp-Dialog")
    assert "the jobs it already started stay" in dialog.locator(".jp-Dialog-body").inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert row.is_visible() and [s["id"] for s in _rest(lab, "schedules")["schedules"]] == [sid]
    row.locator('[data-action="remove"]').click()
    page.locator(".jp-Dialog").get_by_role("button", name="Remove schedule").click()
    row.wait_for(state="detached")
    assert _rest(lab, "schedules")["schedules"] == []
    assert panel.locator(f'.jc-Job[data-job-id="{last.id}"]').is_visible()  # its run stays
    panel.locator(".jc-Schedules", has_text="No schedules").wait_for()


def test_the_filter_box_narrows_the_job_list(lab: dict[str, Any], page: Any, job_store: Path) -> None:
    """Jobs in the store (as other front ends leave them): the filter box keeps those whose notebook, status,
    sweep, name or id holds each word, `status:`-style prefixes name one field, a sweep keeps its header."""
    from jupyter_containerize.jobs.store import JobStore

    store, root, now = JobStore(job_store), lab["root"], time.time()
    quick = store.create(str(root / "quickstart.ipynb"), status="succeeded", finished=now)
    spec = {"notebook": str(root / "train.ipynb"), "env": {"TOKEN": "s3cret-value", "SEED": "1"},
            "volumes": [{"source": "/srv/in", "target": "/work/data", "read_only": True, "kind": "bind"}]}
    big = store.create(str(root / "train.ipynb"), status="failed", name="Big run", error="boom", finished=now,
                       spec=spec)
    swept = store.create(str(root / "train.ipynb"), status="succeeded", name="study lr=0.1", sweep_id="sw1a",
                         finished=now)
    panel = _open_panel(page, lab, "quickstart.ipynb")
    cards = panel.locator(".jc-Job")
    box = panel.locator('input[name="job-filter"]')
    box.wait_for()
    page.wait_for_function("n => document.querySelectorAll('#jupyter-containerize-panel .jc-Job').length === n", arg=3)

    def shown(text: str) -> list[str]:
        box.fill(text)
        page.wait_for_timeout(200)
        return sorted(str(c.get_attribute("data-job-id")) for c in cards.all())

    assert shown("FAILED") == [big.id]
    assert panel.locator(".jc-FilterCount").inner_text() == "1 of 3"
    assert shown("status:succeeded nb:quick") == [quick.id]
    assert shown("sw1") == [swept.id] and panel.locator('.jc-Sweep[data-sweep-id="sw1a"]').is_visible()
    assert shown('name:"big run"') == [big.id]
    card = panel.locator(f'.jc-Job[data-job-id="{big.id}"]')
    card.locator(".jc-JobHead").click()  # the detail: what it mounted, the names of its environment
    setup = card.locator(".jc-JobSetup")
    setup.wait_for()
    assert setup.inner_text().split("\n") == ["volumes: /srv/in → /work/data (read-only)", "env: SEED, TOKEN"]
    assert "s3cret-value" not in card.inner_text()
    _shot(page, "20-job-filter")
    assert shown("no-such-job") == []
    assert "No job matches" in panel.locator(".jc-Jobs").inner_text()
    assert shown("") == sorted([quick.id, big.id, swept.id])
    assert panel.locator(".jc-FilterCount").count() == 0


def test_the_job_widget_opens_its_outputs_in_this_jupyterlab(lab: dict[str, Any], page: Any) -> None:
    """The job widget's output links (a notebook in a folder: links relative to it) open the output notebook and
    an artifact as tabs of this JupyterLab, not as a second JupyterLab in a new browser page."""
    from tests.support.notebooks import write_notebook

    folder = lab["root"] / "sub" / "widget.jc-jobs" / "w1"
    write_notebook(folder / "widget.w1.ipynb", "print('the executed notebook')")
    (folder / "result.txt").write_text("the result of the job\n")
    outputs = (str(folder / "widget.w1.ipynb"), str(folder / "result.txt"))
    write_notebook(lab["root"] / "sub" / "widget.ipynb",
                   "from jupyter_containerize.events import Finished\nfrom jupyter_containerize.widgets import JobView\n"
                   f"view = JobView(None, title='links')\nview.feed(Finished(status='succeeded', outputs={outputs!r}))\n"
                   "view.widget")
    page.goto(f"{lab['url']}/lab/tree/sub/widget.ipynb?token={lab['token']}")
    notebook = page.locator(".jp-NotebookPanel:visible")
    # The kernel started and answered (a cell run while it still starts can be lost).
    page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").wait_for()
    notebook.locator(".jp-CodeCell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    notebook.locator(".jp-CodeCell .jp-InputPrompt", has_text="[1]").first.wait_for()
    link = page.locator(".jc-job-view a.jc-output-link", has_text="widget.w1.ipynb")
    link.wait_for()
    _shot(page, "21-widget-links")
    pages = len(page.context.pages)

    link.click()
    tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*="sub/widget.jc-jobs/w1/widget.w1.ipynb"]')
    tab.wait_for()
    assert "lm-mod-current" in (tab.get_attribute("class") or "")
    page.locator(".jp-NotebookPanel:visible .jp-Cell", has_text="the executed notebook").first.wait_for()
    page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*="sub/widget.ipynb"]').click()
    page.locator(".jc-job-view a.jc-output-link", has_text="result.txt").click()
    page.locator(".jp-FileEditor:visible", has_text="the result of the job").wait_for()
    page.wait_for_timeout(1000)  # a popup would have opened by now
    assert len(page.context.pages) == pages == 1, [p.url for p in page.context.pages]
    assert page.url.startswith(f"{lab['url']}/lab")
