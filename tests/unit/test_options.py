"""The one option parser: typed values from text, one clear error for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.options import build_parser, parse, parse_gpus, parse_value


@pytest.fixture()
def nb(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "train.ipynb"
    path.write_text("{}")
    return path


def test_run_line_becomes_a_typed_spec(nb: Path) -> None:
    cmd = parse(["run", str(nb), "--gpus", "all", "-v", "./data:/data:ro", "-e", "SEED=1", "-p", "lr=0.01",
                 "-p", "name=resnet", "--shm-size", "2g", "--cpus", "1.5", "--memory", "4g"])
    spec = cmd.spec
    assert cmd.command == "run" and spec is not None
    assert spec.gpus.count == -1
    assert spec.volumes[0].source == str(nb.parent / "data") and spec.volumes[0].read_only
    assert spec.env == {"SEED": "1"}
    assert spec.parameters == {"lr": 0.01, "name": "resnet"}
    assert spec.resources.shm_size == "2g" and spec.resources.cpus == 1.5
    assert spec.hardening.read_only_root and spec.hardening.cap_drop_all and spec.hardening.no_new_privileges


def test_magic_line_uses_the_default_notebook(nb: Path) -> None:
    cmd = parse("run -p lr=0.1 --sweep batch=32,64", default_notebook=nb)
    assert cmd.spec is not None and cmd.spec.notebook == nb
    assert cmd.spec.sweep == {"batch": (32, 64)}


@pytest.mark.parametrize("text,count,ids", [("all", -1, ()), ("2", 2, ()), ("device=0,1", 0, ("0", "1")),
                                             ('"device=GPU-abc"', 0, ("GPU-abc",))])
def test_gpus(text: str, count: int, ids: tuple[str, ...]) -> None:
    g = parse_gpus(text)
    assert (g.count, g.device_ids) == (count, ids)


@pytest.mark.parametrize("argv,fragment", [
    (["run", "X", "--gpus", "lots"], "--gpus"),
    (["run", "X", "-v", "./missing:/data"], "does not exist"),
    (["run", "X", "-v", "./data:/data:rx"], "mode"),
    (["run", "X", "-v", "./data:data"], "absolute"),
    (["run", "X", "-v", "/var/run/docker.sock:/sock"], "control of the host"),
    (["run", "X", "-v", "/:/host"], "control of the host"),
    (["run", "X", "-e", "NOVALUE"], "KEY=VALUE"),
    (["run", "X", "-e", "1BAD=x"], "KEY=VALUE"),
    (["run", "X", "-p", "lr"], "NAME=VALUE"),
    (["run", "X", "-p", "class=1"], "variable name"),
    (["run", "X", "-p", "$(rm -rf /)=1"], "variable name"),
    (["run", "X", "--sweep", "lr="], "no values"),
    (["run", "X", "--shm-size", "lots"], "size"),
    (["run", "X", "--cpus", "-1"], "positive"),
    (["run", "X", "--uid", "0"], "root"),
    (["run", "X", "--base-image", "python:3.11\nRUN evil"], "image reference"),
    (["run", "X", "--network", "a b"], "network"),
    (["run", "X", "--bogus"], "unrecognized"),
    (["run", "X", "--builder", "kaniko"], "invalid choice"),
    (["run", "X", "--freeze", "everything"], "imports-only"),
    (["run", "X", "--builder", "buildkit", "--cache-from", "reg.example/cache:1"], "cannot be used with"),
    (["frobnicate"], "invalid choice"),
    (["dockerfile"], "needs a NOTEBOOK"),
])
def test_bad_input_is_one_clear_sentence(nb: Path, argv: list[str], fragment: str) -> None:
    argv = [str(nb) if a == "X" else a for a in argv]
    with pytest.raises(OptionError) as info:
        parse(argv)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("mode", ["imports", "imports-only", "all"])
def test_freeze_modes(nb: Path, mode: str) -> None:
    spec = parse(["build", str(nb), "--freeze", mode]).spec
    assert spec is not None and spec.build.freeze == mode
    assert JobSpec.from_dict(spec.to_dict()).build.freeze == mode
    default = parse(["build", str(nb)]).spec
    assert default is not None and default.build.freeze == "imports"


def test_dangerous_mount_needs_the_named_flag(nb: Path) -> None:
    spec = parse(["run", str(nb), "-v", "/var/run/docker.sock:/var/run/docker.sock", "--allow-dangerous-mounts"]).spec
    assert spec is not None and spec.volumes[0].source.endswith("docker.sock")


def test_named_volume(nb: Path) -> None:
    spec = parse(["run", str(nb), "-v", "datasets:/data"]).spec
    assert spec is not None and spec.volumes[0].kind == "volume"


def test_values_are_python_literals_else_strings() -> None:
    assert parse_value("0.01") == 0.01
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("True") is True
    assert parse_value("adam") == "adam"
    assert parse_value("__import__('os')") == "__import__('os')"


def test_spec_round_trips_through_json(nb: Path) -> None:
    spec = parse(["run", str(nb), "--gpus", "device=0", "-v", "./data:/data", "-p", "lr=0.1", "--sweep", "b=1,2",
                  "--builder", "classic"]).spec
    assert spec is not None and spec.build.builder == "classic"
    assert JobSpec.from_dict(spec.to_dict()) == spec


def test_help_lists_every_subcommand() -> None:
    text = build_parser().format_help()
    for sub in ("run", "build", "dockerfile", "export", "jobs", "logs", "stop", "rm", "base-image", "verify"):
        assert sub in text


def test_flags_are_never_abbreviated() -> None:
    with pytest.raises(OptionError, match="unrecognized arguments: --gpu all"):
        parse(["run", "X.ipynb", "--gpu", "all"])


def test_a_job_name_is_trimmed_kept_in_the_spec_and_refused_when_unprintable(nb: Path) -> None:
    from jupyter_containerize.jobspec import sweep_job_name

    spec = parse(["run", str(nb), "--name", "  lr study  ", "-p", "name=adam"]).spec
    assert spec is not None and spec.name == "lr study" and spec.parameters == {"name": "adam"}
    assert JobSpec.from_dict(spec.to_dict()).name == "lr study"
    assert JobSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "name"}).name == ""  # older records
    assert parse(["run", str(nb)]).spec.name == ""  # type: ignore[union-attr]
    for bad in ("", "   ", "a\nb", "x" * 101):
        with pytest.raises(OptionError, match="--name .* is not a job name"):
            parse(["run", str(nb), f"--name={bad}"])
    with pytest.raises(OptionError, match="unrecognized arguments: --name"):
        parse(["dockerfile", str(nb), "--name", "x"])  # only jobs have names
    assert sweep_job_name("study", {"lr": 0.1, "opt": "adam", "seed": 0}, ["lr", "opt"]) == "study lr=0.1 opt=adam"
    assert sweep_job_name("", {"lr": 0.1}, ["lr"]) == ""


def test_jobs_filters_and_the_sweep_comparison_are_one_or_the_other(nb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse(["jobs"]).args
    assert args["limit"] == 20 and args["sweep"] is None and args["direction"] is None
    monkeypatch.chdir(nb.parent)
    args = parse(["jobs", "--status", "failed", "--notebook", "train.ipynb", "--name", "study", "-n", "5"]).args
    assert (args["status"], args["notebook_path"], args["name"], args["limit"]) == (
        "failed", str(nb.resolve()), "study", 5)
    args = parse(["jobs", "--sweep", "sweep-ab", "--metric", "loss", "--maximize", "--csv"]).args
    assert (args["sweep"], args["metric"], args["direction"], args["csv"]) == ("sweep-ab", "loss", "maximize", True)
    assert parse(["jobs", "--sweep", "x", "--minimize", "--json"]).args["direction"] == "minimize"
    refused = {
        ("jobs", "--metric", "acc"): "--metric compares the jobs of a sweep",
        ("jobs", "--csv"): "--csv compares the jobs of a sweep",
        ("jobs", "--sweep", "x", "--status", "failed"): "--status filters the job list",
        ("jobs", "--sweep", "x", "-n", "3"): "--limit filters the job list",
        ("jobs", "--sweep", "x", "--json", "--csv"): "not allowed with argument",
        ("jobs", "--sweep", "x", "--minimize", "--maximize"): "not allowed with argument",
        ("jobs", "--status", "done"): "invalid choice",
        ("jobs", "--met", "acc"): "unrecognized arguments",  # no abbreviations
        ("jobs", "-n", "0"): "--limit 0 is not a number of jobs",
    }
    for argv, words in refused.items():
        with pytest.raises(OptionError, match=words):
            parse(list(argv))


@pytest.mark.parametrize(("given", "limit"), [("2h", "02:00:00"), ("30m", "00:30:00"), ("90s", "00:01:30"),
                                              ("01:30:00", "01:30:00"), ("1d", "1-00:00:00"), ("1.5h", "01:30:00")])
def test_time_limits_in_any_usual_form_become_one(given: str, limit: str, tmp_path: Path) -> None:
    nb = tmp_path / "nb.ipynb"
    for flag in ("--timeout", "--time"):  # --time: the older name, the same limit
        spec = parse(["run", str(nb), flag, given, "--cell-timeout", "45s"]).spec
        assert spec is not None and spec.resources.time_limit == limit and spec.resources.cell_time_limit == "00:00:45"
    for bad in ("soon", "0s", "-5m"):
        with pytest.raises(OptionError, match="--timeout"):
            parse(["run", str(nb), "--timeout", bad])
