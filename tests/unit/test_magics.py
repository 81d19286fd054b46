"""The magics without an engine: parsing, help, notebook discovery, cell-job assembly, error display."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_containerize.cellmagic import (
    CELL_MOUNT,
    INPUTS_FILE,
    JOB_NOTEBOOK,
    OUTPUTS_FILE,
    job_notebook,
    load_outputs,
    prepare_cell,
    remote_error,
    split_names,
)
from jupyter_containerize.errors import NotebookError, OptionError, RemoteCellError
from jupyter_containerize.magics import JobResult, extract_flag, extract_option, magic_help
from jupyter_containerize.notebook_path import (
    find_notebook,
    from_session_name,
    from_sessions_api,
    kernel_id,
    unsaved_warning,
)
from jupyter_containerize.options import build_parser


# -- options and help ------------------------------------------------------------------------------
def test_extract_option_both_spellings_and_last_wins() -> None:
    assert extract_option(["run", "--notebook", "a.ipynb", "--wait"], "--notebook") == ("a.ipynb", ["run", "--wait"])
    assert extract_option(["run", "--notebook=b.ipynb"], "--notebook") == ("b.ipynb", ["run"])
    assert extract_option(["run"], "--notebook") == (None, ["run"])
    with pytest.raises(OptionError, match="--inputs needs a value"):
        extract_option(["--inputs"], "--inputs")
    assert extract_flag(["run", "--text"], "--text") == (True, ["run"])


def test_help_is_the_cli_parsers_help() -> None:
    text = magic_help()
    assert build_parser().format_help() in text
    for flag in ("--gpus", "--shm-size", "--sweep", "--wait", "-p NAME=VALUE", "--notebook PATH", "--inputs"):
        assert flag in text
    from jupyter_containerize.magics import ContainerizeMagics

    assert ContainerizeMagics.containerize.__doc__ == text


def test_split_names() -> None:
    assert split_names("a,b c,,a", "--inputs") == ("a", "b", "c")
    assert split_names(None, "--inputs") == ()
    with pytest.raises(OptionError, match="is not a Python name"):
        split_names("a,1b", "--outputs")


# -- finding the notebook -------------------------------------------------------------------------
def test_session_name_from_user_ns_then_env(tmp_path: Path) -> None:
    nb = tmp_path / "a.ipynb"
    nb.write_text("{}")
    other = tmp_path / "b.ipynb"
    other.write_text("{}")
    assert from_session_name({"__session__": str(nb)}, {"JPY_SESSION_NAME": str(other)}) == nb
    assert from_session_name({}, {"JPY_SESSION_NAME": str(other)}) == other
    # relative to the kernel's folder (older servers pass the API path)
    assert from_session_name({}, {"JPY_SESSION_NAME": "b.ipynb"}, cwd=tmp_path) == other
    # a renamed notebook (stale name) is not trusted
    assert from_session_name({}, {"JPY_SESSION_NAME": str(tmp_path / "gone.ipynb")}) is None
    assert from_session_name({}, {"JPY_SESSION_NAME": str(tmp_path / "x.py")}) is None


def test_sessions_api_matches_the_kernel_id(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    nb = tmp_path / "sub" / "n.ipynb"
    nb.write_text("{}")
    calls: list[tuple[str, str]] = []

    def get_json(url: str, token: str, timeout: float) -> Any:
        calls.append((url, token))
        if "dead" in url:
            raise OSError("refused")
        return [{"kernel": {"id": "other"}, "path": "x.ipynb"}, {"kernel": {"id": "k-1"}, "path": "sub/n.ipynb"}]

    servers = [{"url": "http://dead:1/", "token": "t0", "root_dir": "/"},
               {"url": "http://localhost:8888/", "token": "t1", "root_dir": str(tmp_path)}]
    assert from_sessions_api("k-1", servers, get_json) == nb
    assert calls[-1] == ("http://localhost:8888/api/sessions", "t1")
    assert from_sessions_api("nope", servers, get_json) is None
    assert from_sessions_api(None, servers, get_json) is None


def test_kernel_id_from_connection_file() -> None:
    assert kernel_id("/run/jupyter/kernel-1c2d-3e4f.json") == "1c2d-3e4f"
    assert kernel_id("/tmp/other.json") is None


def test_find_notebook_explicit_or_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    assert find_notebook({}, str(nb)) == nb
    with pytest.raises(NotebookError, match="does not exist"):
        find_notebook({}, str(tmp_path / "missing.ipynb"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr("jupyter_containerize.notebook_path.from_sessions_api", lambda kid: None)
    with pytest.raises(NotebookError, match="--notebook PATH"):
        find_notebook({})


def test_unsaved_warning(tmp_path: Path) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    old = time.time() - 100
    os.utime(nb, (old, old))
    assert unsaved_warning(nb, None) is None
    assert unsaved_warning(nb, old - 10) is None
    warning = unsaved_warning(nb, time.time())
    assert warning and "unsaved changes won't be in the job" in warning


# -- the cell job ------------------------------------------------------------------------------------
def test_prepare_cell_writes_readable_inputs_and_notebook(tmp_path: Path) -> None:
    ns = {"a": 2, "f": lambda x: x * 3}
    job = prepare_cell("import sklearn\nimport os\nb = f(a)\n", ns, ("a", "f"), ("b",), None)
    try:
        assert job.command == (f"{CELL_MOUNT}/{JOB_NOTEBOOK}",)
        assert job.mounts == ((str(job.workdir), CELL_MOUNT, True),)
        assert job.extra_modules == ("cloudpickle", "sklearn")  # stdlib os dropped
        assert job.capture_notebook.parent == job.workdir  # no current notebook: the cell alone
        # an unprivileged container user can read everything
        assert job.workdir.stat().st_mode & 0o755 == 0o755
        for f in job.workdir.iterdir():
            assert f.stat().st_mode & 0o644 == 0o644
        nb = nbformat.read(str(job.workdir / JOB_NOTEBOOK), as_version=4)
        assert [c.cell_type for c in nb.cells] == ["code"] * 3
        assert nb.cells[1].source == "import sklearn\nimport os\nb = f(a)\n"
        job.cleanup_inputs()
        assert not (job.workdir / INPUTS_FILE).exists()
    finally:
        job.cleanup()


def test_prepare_cell_uses_the_current_notebook_for_capture(tmp_path: Path) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    job = prepare_cell("x = 1", {}, (), ("x",), nb)
    try:
        assert job.capture_notebook == nb
    finally:
        job.cleanup()


def test_prepare_cell_refuses_undefined_inputs() -> None:
    with pytest.raises(OptionError, match="not defined in the kernel"):
        prepare_cell("y = x", {}, ("x",), ("y",), None)


def test_the_job_notebook_round_trips_inputs_and_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute the generated cells here, as the container would, with the mount at a temp path."""
    import cloudpickle

    mount = tmp_path / "in"
    mount.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (mount / INPUTS_FILE).write_bytes(cloudpickle.dumps({"a": 4, "double": lambda x: 2 * x}))
    nb = job_notebook("b = double(a)\nc = [b]", ("a", "double"), ("b", "c"), mount=str(mount))
    monkeypatch.setenv("JC_OUTPUT_DIR", str(out))
    ns: dict[str, Any] = {}
    for cell in nb.cells:
        exec(cell.source, ns)  # noqa: S102 - the generated code is what this test checks
    assert load_outputs(out, ("b", "c")) == {"b": 8, "c": [8]}

    nb = job_notebook("b = 1", (), ("b", "missing"), mount=str(mount))
    ns = {}
    exec(nb.cells[0].source, ns)  # noqa: S102
    exec(nb.cells[1].source, ns)  # noqa: S102
    with pytest.raises(NameError, match="did not set the output"):
        exec(nb.cells[2].source, ns)  # noqa: S102


def test_load_outputs_errors(tmp_path: Path) -> None:
    assert load_outputs(tmp_path, ()) == {}
    with pytest.raises(RemoteCellError, match="wrote no outputs"):
        load_outputs(tmp_path, ("x",))
    (tmp_path / OUTPUTS_FILE).write_bytes(pickle.dumps([1]))
    with pytest.raises(RemoteCellError, match="not a dict"):
        load_outputs(tmp_path, ("x",))


def test_remote_error_says_where() -> None:
    e = remote_error("ValueError: bad", 1, "Traceback\nValueError: bad")
    assert str(e) == "the cell failed in the container: ValueError: bad" and e.traceback.endswith("bad")
    assert "loading the inputs" in str(remote_error("E", 0, ""))


def test_job_result_repr() -> None:
    from jupyter_containerize.jobs.store import JobRecord

    r = JobRecord(id="abc", notebook="/q.ipynb", created=1, updated=2, status="succeeded", started=1.0,
                  finished=3.0, metrics={"accuracy": 0.9}, output_dir="/o")
    result = JobResult(r)
    assert repr(result) == "<job abc succeeded in 2.0 s; accuracy=0.9; outputs in /o>"
    assert result.ok and result.output_dir == "/o"


# -- in a real (in-process) IPython shell ----------------------------------------------------------
def test_load_ext_registers_line_and_cell_magic(shell: Any) -> None:
    assert "containerize" in shell.magics_manager.magics["line"]
    assert "containerize" in shell.magics_manager.magics["cell"]


def test_bad_flag_is_one_line_and_fails_the_cell(shell: Any, tmp_path: Path, capsys: Any) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    result = shell.run_cell(f"%containerize run --gpus lots --notebook {nb}")
    assert isinstance(result.error_in_exec, OptionError)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "OptionError: --gpus 'lots' is not a GPU request. Use --gpus all" in text
    assert "Traceback" not in text and text.strip().count("\n") == 0


def test_unknown_subcommand_and_missing_notebook(shell: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = shell.run_cell("%containerize frobnicate")
    assert isinstance(result.error_in_exec, OptionError)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr("jupyter_containerize.notebook_path.from_sessions_api", lambda kid: None)
    result = shell.run_cell("%containerize run")
    assert isinstance(result.error_in_exec, NotebookError)
    text = capsys.readouterr().out
    assert "--notebook PATH" in text and "Traceback" not in text


def test_help_and_jobs_in_text_mode(shell: Any, capsys: Any) -> None:
    shell.run_cell("%containerize --help")
    assert "--gpus" in capsys.readouterr().out
    result = shell.run_cell("%containerize jobs")
    assert result.success
    assert "STATUS" in capsys.readouterr().out  # terminal IPython: the CLI's table


def test_cell_magic_rejects_sweep(shell: Any, capsys: Any) -> None:
    result = shell.run_cell("%%containerize --sweep lr=1,2\nx = 1\n")
    assert isinstance(result.error_in_exec, OptionError)
    assert "--inputs" in capsys.readouterr().out


def test_in_job_stub_runs_cells_in_place(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_containerize.magics import load, unload

    monkeypatch.setenv("JC_JOB_ID", "abc")
    sh = InteractiveShell.instance()
    load(sh)
    try:
        sh.run_cell("%%containerize --outputs y\ny = 41 + 1\n")  # type: ignore[no-untyped-call]
        assert sh.user_ns["y"] == 42
        sh.run_cell("%containerize run --wait")  # type: ignore[no-untyped-call]
        assert "skipped" in capsys.readouterr().out
    finally:
        unload(sh)


def test_a_verify_line_names_a_target_only_by_its_positional_argument() -> None:
    from jupyter_containerize.magics import _verify_target

    assert _verify_target(["verify", "--runs", "3", "--against", "kernel"]) is None  # the current notebook
    assert _verify_target(["verify", "1a2b3c", "--runs", "3"]) == "1a2b3c"
    assert _verify_target(["verify", "--no-such-flag"]) is None


def test_a_parameter_typo_is_refused_by_the_magic_before_any_job(shell: Any, tmp_path: Path, capsys: Any) -> None:
    from jupyter_containerize.jobs.store import JobStore
    from tests.support.notebooks import write_notebook

    nb = write_notebook(tmp_path / "train.ipynb", "print(epochs)", parameters="epochs = 3\nlr = 0.1")
    result = shell.run_cell(f"%containerize run --notebook {nb} -p epoch=5 -d")
    assert isinstance(result.error_in_exec, OptionError)
    text = "".join(capsys.readouterr())
    assert "train.ipynb has no parameter epoch: did you mean epochs?" in text and "Traceback" not in text
    result = shell.run_cell(f"%containerize run --notebook {nb} -p lr=fast -d")
    assert "lr is a float in train.ipynb's parameters cell (default 0.1)" in "".join(capsys.readouterr())
    assert JobStore(tmp_path / "jobs.sqlite").list() == []


def test_jobs_compares_a_sweep_from_the_store(shell: Any, capsys: Any, tmp_path: Path) -> None:
    """``%containerize jobs --sweep``: the table (terminal IPython shows its text), CSV, JSON; errors in one line."""
    import json

    from jupyter_containerize.jobs.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite")  # the shell fixture's store
    for lr, loss in ((0.1, 0.4), (0.01, 0.2)):
        store.create("/nb/t.ipynb", status="succeeded", sweep_id="sweep-77", name=f"s lr={lr}",
                     parameters={"lr": lr}, metrics={"acc": 1 - loss, "loss": loss})
    assert shell.run_cell("%containerize jobs --sweep 77").success
    out = capsys.readouterr().out
    assert "metric acc, higher is better" in out and "best: job" in out and "s lr=0.01" in out
    assert shell.run_cell("%containerize jobs --sweep sweep-77 --metric loss --csv").success
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("job_id,name,status,rank,best,params.lr,metrics.loss") and ",s lr=0.01,succeeded,1," in rows[1]
    assert shell.run_cell("%containerize jobs --sweep sweep-77 --json").success
    assert json.loads(capsys.readouterr().out)["best"] == store.list(name="s lr=0.01")[0].id
    assert shell.run_cell("%containerize jobs --name s").success
    assert capsys.readouterr().out.count("s lr=") == 2
    for line, words in (("%containerize jobs --sweep sweep-77 --metric f1", "has no metric 'f1'; its jobs recorded "
                                                                           "acc and loss"),
                        ("%containerize jobs --sweep nope", "No sweep 'nope' in the store")):
        result = shell.run_cell(line)
        assert not result.success
        text = capsys.readouterr()
        assert words in text.out + text.err and "Traceback" not in text.out + text.err


def test_prune_and_du_in_a_cell_show_and_remove_only_with_yes(shell: Any, tmp_path: Path, capsys: Any) -> None:
    """Every CLI subcommand has a magic (the magic dispatches do_<command>): prune and du included."""
    from jupyter_containerize.jobs.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite")
    out = tmp_path / "nb.jc-jobs"  # the tool's own per-job folders beside the notebook
    old, new = (store.create(str(tmp_path / "nb.ipynb"), status="succeeded") for _ in range(2))
    for rec, ended in ((old, 1.0), (new, 2.0)):
        (out / rec.id).mkdir(parents=True)
        store.update(rec.id, finished=rec.created + ended, output_dir=str(out / rec.id))
    for line in ("%containerize du", "%containerize prune --keep-last 1"):
        assert shell.run_cell(line).error_in_exec is None
    shown = capsys.readouterr().out
    assert old.id in shown and "run it again with --yes" in shown
    assert {r.id for r in store.list()} == {old.id, new.id} and (out / old.id).is_dir()
    assert shell.run_cell("%containerize prune --keep-last 1 --yes").error_in_exec is None
    assert {r.id for r in store.list()} == {new.id} and not (out / old.id).exists() and (out / new.id).is_dir()


def test_the_job_table_shows_the_whole_time_and_the_run(tmp_path: Path, capsys: Any) -> None:
    """TOTAL counts from the request (capture and build included), RUN from the container's start."""
    from jupyter_containerize.cli import _print_table
    from jupyter_containerize.jobs.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite")
    rec = store.create("/nb/train.ipynb", status="succeeded")
    store.update(rec.id, started=rec.created + 78.6, finished=rec.created + 81.0)
    _print_table([store.get(rec.id)])
    head, row = capsys.readouterr().out.splitlines()
    assert head.split()[:4] == ["JOB", "STATUS", "TOTAL", "RUN"]
    assert row.split()[:4] == [rec.id, "succeeded", "81.0s", "2.4s"]
