"""The one option parser: argv or a magic line -> subcommand + JobSpec.

The CLI (``jupyter containerize …``) and the magics (``%containerize …``) both
call :func:`parse`, so flags, defaults and help text never drift apart.
Every malformed value raises :class:`OptionError` with one clear sentence.
"""

from __future__ import annotations

import argparse
import ast
import keyword
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, get_args

from . import validators
from .errors import OptionError
from .events import JobStatus
from .jobspec import (
    BuildOptions,
    FreezeMode,
    GpuRequest,
    Hardening,
    JobSpec,
    Resources,
    VolumeMount,
)

PROG = "jupyter containerize"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_DANGEROUS_SOURCES = ("/", "/var/run/docker.sock", "/run/docker.sock", "/etc", "/proc", "/sys", "/dev")
MAX_RETRIES = 10  # --retries: more would hide a failure that keeps coming back

SUBCOMMANDS = (
    "run", "build", "dockerfile", "export", "jobs", "logs", "stop", "rm",
    "base-image", "verify", "prune", "du",
    "schedule", "schedules", "unschedule", "pause", "resume",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, and takes no abbreviations (--gpu is not --gpus)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise OptionError(f"{self.prog}: {message}", f"See '{self.prog} --help'.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise OptionError(message or f"{self.prog} failed")
        raise _HelpShown(message or "")


class _HelpShown(Exception):
    """Raised when --help printed its text; callers simply stop."""


HelpShown = _HelpShown


@dataclass
class ParsedCommand:
    """A parsed command line: the subcommand, its JobSpec (if any) and its other values."""

    command: str
    spec: JobSpec | None = None
    args: dict[str, Any] = field(default_factory=dict)


def _add_parameter_options(g: Any) -> None:
    g.add_argument("-p", "--parameter", metavar="NAME VALUE | NAME=VALUE", action="append", default=[],
                   help="notebook parameter: papermill's form -p NAME VALUE types VALUE as papermill does "
                        "(True/False/None, int, float, else a string); -p NAME=VALUE takes a Python literal, "
                        "else a string")
    g.add_argument("-r", "--parameter-raw", metavar="NAME VALUE", action="append", default=[],
                   help="notebook parameter kept as a string (papermill's -r)")
    g.add_argument("-y", "--parameters-yaml", metavar="YAML", action="append", default=[],
                   help="notebook parameters as a YAML mapping (papermill's -y)")
    g.add_argument("-f", "--parameters-file", metavar="FILE.yaml", action="append", default=[],
                   help="notebook parameters from a YAML file (papermill's -f)")


def _add_capture_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("environment capture")
    g.add_argument("--python", metavar="PATH", help="interpreter to capture (default: the notebook's kernelspec)")
    g.add_argument("--base-image", metavar="IMG", help="base image (default: python:X.Y.Z-slim-bookworm)")
    g.add_argument("--builder", choices=("auto", "buildkit", "classic"), default="auto",
                   help="Dockerfile and builder: BuildKit (cache mounts) when the engine has it, else classic")
    g.add_argument("--freeze", choices=get_args(FreezeMode), default="imports",
                   help="imports (default): the imports' closure and the optional dependencies it can use "
                        "that the kernel has; imports-only: the closure alone; all: every installed distribution")
    g.add_argument("--include", metavar="PATH", action="append", default=[],
                   help="copy a file or folder beside the notebook into the image, even one .dockerignore would leave out "
                        "(repeatable)")
    g.add_argument("--wheels-from-kernel", action="store_true",
                   help="carry a wheel of every pinned distribution, found on this machine (find-links folders, "
                        "pip's and uv's caches), the runner's too, and build without a package index or network "
                        "(air-gapped)")
    g.add_argument("--uid", type=int, metavar="UID", help="UID of the container user (default: the host user's, never 0)")
    g.add_argument("--gpus", metavar="all|N|device=IDS", help="GPUs for the job (docker run --gpus)")


def _add_build_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("build")
    g.add_argument("--no-cache", action="store_true", help="build without the engine's layer cache")
    g.add_argument("--tag", metavar="T", help="extra tag for the built image")
    g.add_argument("--push", metavar="REGISTRY/REPO[:TAG]", help="push the image to a registry")
    g.add_argument("--cache-from", metavar="REGISTRY/REPO:TAG", help="reuse layers of this image")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    _add_parameter_options(g)
    g.add_argument("--inject-top", action="store_true",
                   help="without a cell tagged 'parameters', inject the parameters at the top (papermill's way) "
                        "instead of refusing")
    g.add_argument("--help-notebook", action="store_true",
                   help="list the notebook's parameters with their inferred types and defaults, and stop")
    g.add_argument("--sweep", metavar="NAME=V1,V2", action="append", default=[], nargs="+",
                   help="one job per combination of the listed values")
    g.add_argument("--name", metavar="NAME",
                   help="a name for the job, shown wherever jobs are listed (a sweep's jobs: NAME lr=0.1 …)")
    g.add_argument("--notify", metavar="COMMAND|URL",
                   help="when the job ends, run COMMAND (the summary as JSON on its stdin) or POST the summary to URL")
    g.add_argument("-v", "--volume", metavar="SRC:DST[:ro]", action="append", default=[],
                   help="bind mount (paths relative to the notebook) or named volume")
    g.add_argument("--no-auto-mount", action="store_true",
                   help="do not mount the data files the notebook reads (found beside it), read-only, in the job")
    g.add_argument("-e", "--env", metavar="KEY=VAL", action="append", default=[], help="environment variable")
    g.add_argument("--shm-size", metavar="SIZE", help="size of /dev/shm (default 1g when torch is used)")
    g.add_argument("--cpus", type=float, metavar="N", help="CPU limit")
    g.add_argument("--memory", metavar="SIZE", help="memory limit, e.g. 4g")
    g.add_argument("--timeout", "--time", dest="timeout", metavar="LIMIT",
                   help="the whole job's time limit, e.g. 2h, 30m, 01:30:00: the notebook stops, is saved and the "
                        "job fails 'timed out' (on every backend: Slurm's --time and Kubernetes' deadline follow it)")
    g.add_argument("--cell-timeout", metavar="LIMIT", help="one cell's time limit, e.g. 30m (the same forms)")
    g.add_argument("--retries", type=int, default=0, metavar="N",
                   help=f"run the job again, up to N times (at most {MAX_RETRIES}), when it fails for a reason that is "
                        "not the notebook's: the engine or controller stopped it, a node was lost (a failing cell is "
                        "never retried; an out-of-memory kill is reported, not retried)")
    g.add_argument("--network", metavar="NET", help="container network (e.g. none, host, bridge)")
    g.add_argument("--output", metavar="DIR", help="host folder mounted at /output (default: per-job folder beside the notebook)")
    g.add_argument("--backend", metavar="NAME", default="docker",
                   help="where the job runs: docker (default), slurm, kubernetes, or a plugin's backend")
    g.add_argument("--partition", metavar="NAME", help="Slurm partition")
    g.add_argument("--max-parallel", type=int, default=2, metavar="N", help="concurrent jobs of a sweep")
    g.add_argument("-d", "--detach", action="store_true", help="return once the job started")
    g.add_argument("--wait", action="store_true", help="(magic) block until the job ends")
    g.add_argument("--writable-root", action="store_true", help="do not mount the root filesystem read-only")
    g.add_argument("--keep-caps", action="store_true", help="do not drop Linux capabilities")
    g.add_argument("--allow-new-privileges", action="store_true", help="do not set no-new-privileges")
    g.add_argument("--allow-dangerous-mounts", action="store_true",
                   help="allow mounting /, system folders or the Docker socket")


def build_parser() -> argparse.ArgumentParser:
    """The full parser (also renders ``%containerize?`` and ``--help``)."""
    parser = _Parser(prog=PROG, description="Run a notebook as a reproducible container job.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def nb(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("notebook", metavar="NOTEBOOK", nargs=None if required else "?", help="the .ipynb file")

    p = sub.add_parser("dockerfile", help="print the Dockerfile, or write the whole build context with -o")
    nb(p, required=False)
    p.add_argument("-o", "--output-dir", metavar="DIR", help="write the build context here")
    _add_capture_options(p)

    p = sub.add_parser("build", help="build the notebook's image")
    nb(p, required=False)
    _add_capture_options(p)
    _add_build_options(p)

    p = sub.add_parser("run", help="build and run the notebook as a container job")
    nb(p, required=False)
    _add_capture_options(p)
    _add_build_options(p)
    _add_run_options(p)

    p = sub.add_parser("export", help="write a committable folder that rebuilds and runs the job")
    nb(p, required=False)
    p.add_argument("dest", metavar="DIR", nargs="?", help="folder to write")
    _add_capture_options(p)

    p = sub.add_parser("verify", help="check that the rebuilt image reproduces the environment and outputs")
    p.add_argument("target", metavar="NOTEBOOK|JOB", nargs="?")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance for numbers")
    p.add_argument("--against", choices=("kernel", "saved"),
                   help="the reference: the outputs saved in the notebook, or runs in its own kernel "
                        "(default: saved when the notebook has saved outputs, else kernel)")
    p.add_argument("--runs", type=int, default=2, metavar="N",
                   help="runs in the image, and in the kernel when it is the reference; cells whose outputs differ "
                        "between runs of one side are nondeterministic, not drift (default 2)")
    _add_parameter_options(p)
    p.add_argument("-e", "--env", metavar="KEY=VAL", action="append", default=[],
                   help="environment variable, in both runs")
    _add_capture_options(p)

    _add_jobs_parser(sub)
    _add_schedule_parsers(sub, nb)

    p = sub.add_parser("logs", help="show a job's log")
    p.add_argument("job", metavar="JOB")
    p.add_argument("-f", "--follow", action="store_true")

    for name, what in (("stop", "cancel a job"), ("rm", "remove a job and its containers")):
        p = sub.add_parser(name, help=what)
        p.add_argument("job", metavar="JOB")

    p = sub.add_parser("base-image", help="build the offline base image from Debian packages")
    p.add_argument("--python", metavar="X.Y.Z|PATH", help="Python version or interpreter (default: this one)")
    p.add_argument("--tag", metavar="T", help="image tag (default: python:X.Y.Z-slim-bookworm)")
    p.add_argument("--force", action="store_true", help="rebuild even if the tag exists")

    _add_disk_parsers(sub)
    return parser


def _add_schedule_parsers(sub: Any, nb: Callable[..., None]) -> None:
    """``schedule`` (run's options plus --cron/--tz), ``schedules``, ``unschedule``, ``pause``, ``resume``."""
    p = sub.add_parser("schedule", help="run the notebook as a job at each time of a cron expression (the "
                                        "Jupyter server with this extension starts the runs)")
    nb(p, required=False)
    g = p.add_argument_group("schedule")
    g.add_argument("--cron", metavar="EXPRESSION",
                   help="when to run: five fields, minute hour day-of-month month day-of-week ('0 3 * * *': 03:00 "
                        "every day), or @hourly, @daily, @weekly, @monthly")
    g.add_argument("--tz", metavar="ZONE", help="the time zone the expression is read in, an IANA name such as "
                                                "Europe/Berlin (default UTC)")
    _add_capture_options(p)
    _add_build_options(p)
    _add_run_options(p)
    p = sub.add_parser("schedules", help="list the schedules: next run, last run and its status, paused")
    p.add_argument("--json", action="store_true", help="print JSON")
    for name, what in (("unschedule", "remove a schedule (its runs stay)"),
                       ("pause", "stop a schedule from starting runs until it is resumed"),
                       ("resume", "start a paused schedule again, from its next time after now")):
        p = sub.add_parser(name, help=what)
        p.add_argument("schedule", metavar="SCHEDULE", help="the schedule's id (a unique prefix will do)")


def _check_schedule(values: dict[str, Any]) -> None:
    """``schedule``: a cron expression (checked by croniter, read in --tz); one job per time, so no sweep."""
    from .cron import cron_rule

    if not values.get("cron"):
        raise OptionError("'schedule' needs --cron EXPRESSION", "Write it like --cron '0 3 * * *' (03:00 every day).")
    if values.get("sweep"):
        raise OptionError("A schedule starts one job at each time, not a sweep",
                          "Drop --sweep, or schedule each set of values on its own (-p).")
    values["rule"] = cron_rule(values["cron"], values.get("tz"))


def _add_disk_parsers(sub: Any) -> None:
    """``prune`` and ``du`` (disk hygiene; the rules are in jobs/retention.py)."""
    p = sub.add_parser("prune", help="remove old jobs (records and output folders) and the images no kept job needs")
    g = p.add_argument_group("retention (give one or both: a run either keeps stays; unfinished jobs always stay)")
    g.add_argument("--keep-last", type=int, metavar="N",
                   help="keep the N newest finished runs of each notebook (a sweep's jobs are one run)")
    g.add_argument("--older-than", metavar="AGE",
                   help="remove runs that ended, and images no job uses that were built, more than AGE ago "
                        "(30d, 12h, 2w, 90m)")
    g = p.add_argument_group("what else")
    g.add_argument("--all-images", action="store_true",
                   help="with --older-than, also this tool's images of notebooks with no job in this store "
                        "(on an engine other users share, theirs too)")
    g.add_argument("--build-cache", action="store_true",
                   help="also the engine's BuildKit cache unused for --older-than (every build's, not only this "
                        "tool's; uv's download cache stays)")
    p.add_argument("--dry-run", action="store_true", help="list what would go and the space it would free; "
                                                          "remove nothing")
    p.add_argument("--yes", action="store_true", help="remove without asking")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("du", help="disk space per notebook and per environment (image), and the build cache")
    p.add_argument("--json", action="store_true", help="print JSON")


def _check_prune(values: dict[str, Any]) -> None:
    """``prune``: a retention is required (nothing is removed by default); --build-cache goes by age."""
    keep, older = values.get("keep_last"), values.get("older_than")
    if keep is None and older is None:
        raise OptionError("prune needs a retention",
                          "Give --keep-last N (each notebook's N newest runs stay) or --older-than AGE (e.g. 30d), "
                          "and --dry-run to see what would go first.")
    if keep is not None:
        validators.keep_count(keep, "--keep-last")
    values["older_than_seconds"] = None if older is None else validators.age_seconds(older, "--older-than")
    for flag, key in (("--build-cache", "build_cache"), ("--all-images", "all_images")):
        if values.get(key) and older is None:
            raise OptionError(f"{flag} removes by age", "Add --older-than AGE, e.g. 30d.")


def _add_jobs_parser(sub: Any) -> None:
    p = sub.add_parser("jobs", help="list recent jobs, or compare the jobs of a sweep (--sweep ID)")
    p.add_argument("-n", "--limit", type=int, metavar="N", help="how many of the newest jobs (default 20)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="(--sweep) print the comparison as CSV")
    g = p.add_argument_group("filters (the job list)")
    g.add_argument("--status", choices=get_args(JobStatus), help="only jobs in this state")
    g.add_argument("--notebook", metavar="NOTEBOOK", dest="notebook_path", help="only jobs of this notebook")
    g.add_argument("--name", metavar="NAME", help="only jobs named NAME, and the jobs of a sweep named NAME")
    g = p.add_argument_group("compare a sweep")
    g.add_argument("--sweep", metavar="ID", help="compare the jobs of sweep ID (printed by run --sweep; a unique "
                                                 "prefix will do): table, best run, CSV, JSON with a Vega-Lite plot")
    g.add_argument("--metric", metavar="NAME", help="the metric to compare (default: the first number every "
                                                    "succeeded job of the sweep recorded)")
    d = g.add_mutually_exclusive_group()
    d.add_argument("--minimize", action="store_true", help="lower is better (default for a name with the word "
                                                           "loss or error, also err, mse, rmse, mae)")
    d.add_argument("--maximize", action="store_true", help="higher is better (default for any other name)")


def _check_jobs(values: dict[str, Any]) -> None:
    """``jobs``: filters list jobs, --metric/--minimize/--maximize/--csv compare a sweep; never both."""
    limit = values.get("limit")
    if limit is not None and limit < 1:
        raise OptionError(f"--limit {limit} is not a number of jobs", "Give 1 or more.")
    compare_flags = [f for f, key in (("--metric", "metric"), ("--minimize", "minimize"), ("--maximize", "maximize"),
                                      ("--csv", "csv")) if values.get(key)]
    list_flags = [f for f, key in (("--status", "status"), ("--notebook", "notebook_path"), ("--name", "name"),
                                   ("--limit", "limit")) if values.get(key) is not None]
    if values.get("sweep") is None and compare_flags:
        raise OptionError(f"{compare_flags[0]} compares the jobs of a sweep",
                          "Add --sweep ID (the id that run --sweep printed).")
    if values.get("sweep") is not None and list_flags:
        raise OptionError(f"{list_flags[0]} filters the job list, and a sweep's comparison takes every job of it",
                          f"Drop {list_flags[0]} or --sweep.")
    minimize, maximize = values.pop("minimize"), values.pop("maximize")
    values["direction"] = "minimize" if minimize else "maximize" if maximize else None
    if values.get("name") is not None:
        values["name"] = validators.job_name(values["name"], "--name")
    if values.get("notebook_path"):
        text = values["notebook_path"]
        values["notebook_path"] = str(_host_path(lambda: Path(text).expanduser().resolve(), "--notebook", text))
    if values.get("limit") is None:
        values["limit"] = 20


def split_line(line: str) -> list[str]:
    """Split a magic line like a POSIX shell would (no expansion, no execution)."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as e:
        raise OptionError(f"Could not split the options: {e}", "Check the quotes.") from None


def parse(argv: Sequence[str] | str, *, default_notebook: Path | None = None) -> ParsedCommand:
    """Parse a CLI argv (or a magic line) into a :class:`ParsedCommand`.

    ``default_notebook`` fills a missing NOTEBOOK (the magics pass the current one).
    """
    if isinstance(argv, str):
        argv = split_line(argv)
    ns = build_parser().parse_args(_papermill_pairs(list(argv)))
    values = vars(ns)
    command: str = values.pop("command")
    notebook_arg = values.pop("notebook", None)
    if command == "jobs":
        _check_jobs(values)
    if command == "prune":
        _check_prune(values)
    if command == "schedule":
        _check_schedule(values)
    if command == "verify" and values["runs"] < 1:
        raise OptionError(f"--runs {values['runs']} is not a number of runs",
                          "Give 1 or more (2 finds the cells whose outputs differ from run to run).")
    if command in ("dockerfile", "build", "run", "export", "schedule") or (command == "verify" and values.get("target") is None):
        path = Path(notebook_arg) if notebook_arg else default_notebook
        if path is None:
            raise OptionError(f"'{command}' needs a NOTEBOOK", "Pass the path of the .ipynb file.")
        if values.get("help_notebook"):
            from .notebook_file import read_notebook
            from .parameters_cell import describe

            raise HelpShown(describe(read_notebook(path).cells, path.name))
        return ParsedCommand(command, spec_from_values(path, values), values)
    if command == "verify":
        target = values["target"]
        if target.endswith(".ipynb"):
            return ParsedCommand(command, spec_from_values(Path(target), values), values)
        if values["parameter"] or values["env"]:
            raise OptionError("A job is verified with its own parameters and environment",
                              "Drop -p and -e, or verify the notebook instead.")
    return ParsedCommand(command, None, values)


def spec_from_values(notebook: Path, v: dict[str, Any]) -> JobSpec:
    """Turn parsed option values into a validated JobSpec."""
    notebook = _host_path(lambda: Path(notebook).expanduser(), "NOTEBOOK", notebook)
    base = _host_path(lambda: notebook.resolve().parent, "NOTEBOOK", notebook)
    hardening = Hardening(
        cap_drop_all=not v.get("keep_caps", False),
        no_new_privileges=not v.get("allow_new_privileges", False),
        read_only_root=not v.get("writable_root", False),
        allow_dangerous_mounts=bool(v.get("allow_dangerous_mounts", False)),
    )
    uid = v.get("uid")
    if uid is not None:
        validators.uid(uid)
    build = BuildOptions(
        python=v.get("python"),
        base_image=_optional(validators.image_ref, v.get("base_image"), "--base-image", pinned=True),
        freeze=v.get("freeze") or "imports",
        include=tuple(v.get("include") or ()),
        no_cache=bool(v.get("no_cache", False)),
        tag=_optional(validators.image_ref, v.get("tag"), "--tag"),
        uid=uid,
        push=_optional(validators.image_ref, v.get("push"), "--push"),
        cache_from=_optional(validators.image_ref, v.get("cache_from"), "--cache-from"),
        builder=v.get("builder") or "auto",
        wheels_from_kernel=bool(v.get("wheels_from_kernel", False)),
    )
    if build.cache_from and build.builder == "buildkit":
        raise OptionError("--cache-from reuses the classic builder's stage images and cannot be used with "
                          "--builder buildkit", "Drop one of the two (BuildKit keeps its own cache).")
    cpus = v.get("cpus")
    if cpus is not None and cpus <= 0:
        raise OptionError(f"--cpus {cpus} must be positive", "Give a number of CPUs such as 2 or 0.5.")
    max_parallel = int(v["max_parallel"]) if v.get("max_parallel") is not None else 2  # 0 is refused, not defaulted
    if max_parallel < 1:
        raise OptionError("--max-parallel must be at least 1", "Give a positive number.")
    retries = int(v.get("retries") or 0)
    if not 0 <= retries <= MAX_RETRIES:
        raise OptionError(f"--retries {retries} is out of range", f"Give 0 to {MAX_RETRIES}.")
    output = v.get("output")
    return JobSpec(
        notebook=notebook,
        parameters=notebook_parameters(v),
        sweep=dict(parse_sweep(s) for group in v.get("sweep") or () for s in group),
        volumes=tuple(parse_volume(s, base, hardening.allow_dangerous_mounts) for s in v.get("volume") or ()),
        env=dict(parse_env(s) for s in v.get("env") or ()),
        gpus=parse_gpus(v.get("gpus")),
        resources=Resources(
            cpus=cpus,
            memory=_optional(validators.size, v.get("memory"), "--memory"),
            shm_size=_optional(validators.size, v.get("shm_size"), "--shm-size"),
            time_limit=_optional(validators.time_limit, v.get("timeout"), "--timeout"),
            cell_time_limit=_optional(validators.time_limit, v.get("cell_timeout"), "--cell-timeout"),
        ),
        network=_check_network(v.get("network")),
        output_dir=_host_path(lambda: (base / output).resolve(), "--output", output) if output else None,
        detach=bool(v.get("detach", False)),
        wait=bool(v.get("wait", False)),
        backend=validators.name(v.get("backend") or "docker", "--backend"),
        partition=_optional(validators.name, v.get("partition"), "--partition"),
        hardening=hardening,
        build=build,
        max_parallel=max_parallel,
        auto_mount=not v.get("no_auto_mount", False),
        inject_top=bool(v.get("inject_top", False)),
        name=_optional(validators.job_name, v.get("name"), "--name") or "",
        notify=_optional(validators.notify_target, v.get("notify"), "--notify") or "",
        retries=retries,
    )


def _host_path(make: Callable[[], Path], flag: str, text: object) -> Path:
    """A host path from user text; a NUL byte or an unknown ``~user`` is an OptionError, not a crash."""
    try:
        return make()
    except (ValueError, RuntimeError, OSError) as e:
        raise OptionError(f"{flag} {str(text)!r} is not a usable path ({e})", "Fix the path.") from None


def parse_gpus(value: str | None) -> GpuRequest:
    """``all``, a count, or ``device=0,1`` (quotes allowed, as in ``docker run``)."""
    if value is None or value == "":
        return GpuRequest()
    text = value.strip().strip("'\"")
    if text == "all":
        return GpuRequest(count=-1)
    if text.isdigit():
        return GpuRequest(count=int(text))
    if text.startswith("device="):
        ids = tuple(i.strip() for i in text[len("device="):].split(",") if i.strip())
        if ids and all(_DEVICE_ID.match(i) for i in ids):
            return GpuRequest(device_ids=ids)
    raise OptionError(f"--gpus {value!r} is not a GPU request", "Use --gpus all, --gpus 2 or --gpus device=0,1.")


def parse_volume(text: str, base: Path, allow_dangerous: bool = False) -> VolumeMount:
    """``SRC:DST[:ro|rw]``; SRC is a path (relative to ``base``) or a volume name."""
    parts = text.split(":")
    mode = "rw"
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise OptionError(f"-v {text!r} is not SRC:DST[:ro]", "Write it like -v ./data:/data or -v ./data:/data:ro.")
    if mode not in ("ro", "rw"):
        raise OptionError(f"-v {text!r} has mode {mode!r}", "The mode must be ro or rw.")
    source, target = parts
    if not target.startswith("/") or "\n" in target or "\x00" in target:
        raise OptionError(f"-v {text!r}: the target {target!r} is not an absolute path", "Give an absolute container path such as /data.")
    if target in ("/", "/output", "/work") or target.startswith(("/proc", "/sys")):
        raise OptionError(f"-v {text!r}: {target} is reserved", "Mount the volume at another path, e.g. /data.")
    is_path = source.startswith((".", "/", "~")) or "/" in source
    if not is_path:
        if not _VOLUME_NAME.match(source):
            raise OptionError(f"-v {text!r}: {source!r} is neither a path nor a volume name", "Start paths with ./ or /.")
        return VolumeMount(source=source, target=target, read_only=mode == "ro", kind="volume")
    path = _host_path(lambda: (base / Path(source).expanduser()).resolve(), "-v", text)
    if not path.exists():
        raise OptionError(f"-v {text!r}: the source {path} does not exist", "Create it first, or fix the path (relative paths start at the notebook's folder).")
    if not allow_dangerous and any(str(path) == d or (d != "/" and str(path).startswith(d + "/")) for d in _DANGEROUS_SOURCES):
        raise OptionError(f"-v {text!r}: mounting {path} would give the job control of the host", "Pass --allow-dangerous-mounts if you really mean it.")
    return VolumeMount(source=str(path), target=target, read_only=mode == "ro", kind="bind")


def parse_env(text: str) -> tuple[str, str]:
    """``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not _ENV_KEY.match(key):
        raise OptionError(f"-e {text!r} is not KEY=VALUE", "Write it like -e SEED=42.")
    if "\x00" in value:
        raise OptionError(f"-e {key}: the value contains a NUL byte", "Remove it.")
    return key, value


def parse_value(text: str) -> Any:
    """A Python literal if it is one (``0.01``, ``[1, 2]``, ``True``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _check_identifier(name: str, flag: str, text: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise OptionError(f"{flag} {text!r}: {name!r} is not a Python variable name", f"Write it like {flag} lr=0.01.")


_PAIR = "\x00"  # joins papermill's ``-p NAME VALUE`` into one argparse value (see _papermill_pairs)
_PAIR_FLAGS = {"-p": "-p", "--parameter": "-p", "-r": "-r", "--parameter-raw": "-r"}


def _papermill_pairs(argv: list[str]) -> list[str]:
    """``-p NAME VALUE`` and ``-r NAME VALUE`` (papermill's forms) as one value each; ``-p NAME=VALUE`` stays."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag = _PAIR_FLAGS.get(argv[i])
        if flag and i + 1 < len(argv) and (flag == "-r" or "=" not in argv[i + 1]):
            if i + 2 >= len(argv):
                raise OptionError(f"{argv[i]} {argv[i + 1]!r} is neither NAME VALUE nor NAME=VALUE",
                                  f"Write it like {flag} lr 0.01" + (" or -p lr=0.01." if flag == "-p" else "."))
            out += [argv[i], f"{argv[i + 1]}{_PAIR}{argv[i + 2]}"]
            i += 3
            continue
        out.append(argv[i])
        i += 1
    return out


def papermill_value(text: str) -> Any:
    """papermill's typing of ``-p NAME VALUE``: ``True``/``False``/``None``, an int, a float, else the string."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_parameter(text: str) -> tuple[str, Any]:
    """One ``-p`` value: papermill's pair (typed as papermill does) or ``NAME=VALUE`` (a Python literal)."""
    name, pair, value = text.partition(_PAIR)
    if pair:
        _check_identifier(name, "-p", name)
        return name, check_parameter(name, papermill_value(value))
    name, sep, value = text.partition("=")
    if not sep:
        raise OptionError(f"-p {text!r} is neither NAME VALUE nor NAME=VALUE", "Write it like -p lr 0.01 or -p lr=0.01.")
    _check_identifier(name, "-p", text)
    return name, check_parameter(name, parse_value(value))


def check_parameter(name: str, value: Any) -> Any:
    """``value`` if the injected cell can write it as a literal and the job can receive it (JSON-like values)."""
    def fits(v: Any) -> bool:
        if v is None or isinstance(v, (bool, int, float, str)):
            return True
        if isinstance(v, list):
            return all(fits(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and fits(x) for k, x in v.items())
        return False

    if not fits(value):
        raise OptionError(f"The parameter {name} = {value!r} is a {type(value).__name__}, which cannot be passed "
                          "to the notebook", "Give a number, string, bool, None, list or dict (e.g. a list for a set).")
    return value


def notebook_parameters(v: dict[str, Any]) -> dict[str, Any]:
    """The parameters of every form, merged as papermill merges them: ``-f`` files, ``-y``, ``-p``, then ``-r``."""
    import yaml

    merged: dict[str, Any] = {}
    sources = [("-f " + f, _read_yaml_file(f)) for f in v.get("parameters_file") or ()]
    sources += [("-y", text) for text in v.get("parameters_yaml") or ()]
    for flag, text in sources:
        try:
            loaded = yaml.load(text, Loader=_no_dates_loader()) or {}  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise OptionError(f"{flag} is not valid YAML ({str(exc).splitlines()[0]})", "Fix the YAML.") from None
        if not isinstance(loaded, dict):
            raise OptionError(f"{flag} is not a YAML mapping of names to values", "Write it like 'lr: 0.01'.")
        for name, value in loaded.items():
            _check_identifier(str(name), flag.split()[0], str(name))
            merged[str(name)] = check_parameter(str(name), value)
    merged.update(parse_parameter(p) for p in v.get("parameter") or ())
    for raw in v.get("parameter_raw") or ():
        name, _, value = raw.partition(_PAIR)
        _check_identifier(name, "-r", name)
        merged[name] = value
    return merged


def _no_dates_loader() -> Any:
    """YAML's safe loader without its timestamp rule, as papermill reads parameters: 2024-01-31 stays text."""
    import yaml

    resolvers = {first: [(tag, regexp) for tag, regexp in rules if tag != "tag:yaml.org,2002:timestamp"]
                 for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return type("NoDatesSafeLoader", (yaml.SafeLoader,), {"yaml_implicit_resolvers": resolvers})


def _read_yaml_file(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"-f {path!r} cannot be read ({exc.strerror or exc})", "Check the path.") from None


def parse_sweep(text: str) -> tuple[str, tuple[Any, ...]]:
    """``--sweep name=v1,v2,…``."""
    name, sep, values = text.partition("=")
    if not sep:
        raise OptionError(f"--sweep {text!r} is not NAME=V1,V2", "Write it like --sweep lr=0.1,0.01.")
    _check_identifier(name, "--sweep", text)
    items = tuple(parse_value(v.strip()) for v in values.split(",") if v.strip())
    if not items:
        raise OptionError(f"--sweep {text!r} lists no values", "Give at least one value, e.g. --sweep lr=0.1,0.01.")
    return name, items


def _check_network(value: str | None) -> str | None:
    if value is None:
        return None
    if not _VOLUME_NAME.match(value):
        raise OptionError(f"--network {value!r} is not a network name", "Use none, host, bridge or a network's name.")
    return value


def _optional(check: Callable[..., str], value: str | None, flag: str, **kw: Any) -> str | None:
    """``check(value, flag)`` (see :mod:`.validators`) for an option that was given, else ``None``."""
    return None if value is None else check(value, flag, **kw)
