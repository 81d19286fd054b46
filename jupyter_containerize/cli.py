"""`jupyter containerize …`: the option parser, one call of :mod:`.jobs.commands` per command, text out."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ContainerizeError
from .jobs import commands
from .jobs.queries import compare_sweep, list_jobs
from .options import HelpShown, ParsedCommand, parse
from .textview import TextProgress

if TYPE_CHECKING:
    from .jobs.manager import Job, JobManager
    from .jobs.store import JobRecord

EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 130}
JOBS_SETTLE_SECONDS = 15.0  # `jobs` records the end of detached jobs that ended since, before it lists them


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 job failed, 2 bad input or error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = parse(args)
    except HelpShown as e:
        print(e, end="")
        return 0
    except ContainerizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command.command](command)
    except ContainerizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _warn(warning: str) -> None:
    print(f"warning: {warning}", file=sys.stderr)


def cmd_dockerfile(cmd: ParsedCommand) -> int:
    assert cmd.spec is not None
    out = cmd.args.get("output_dir")
    result = commands.dockerfile(cmd.spec, Path(out) if out else None, on_warning=_warn)
    if result.path is None:
        print(result.dockerfile, end="")
    else:
        print(result.summary())
    return 0


def cmd_build(cmd: ParsedCommand) -> int:
    assert cmd.spec is not None
    image = commands.build(cmd.spec, TextProgress(verbose=False), on_warning=_warn)
    print(image.reference)
    return 0


def cmd_run(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    try:
        return _run(manager, cmd)
    finally:
        manager.close()  # joins the manager's threads: a notification in flight is sent before the CLI exits


def _run(manager: JobManager, cmd: ParsedCommand) -> int:
    assert cmd.spec is not None
    progress = TextProgress()
    if cmd.spec.sweep:
        if cmd.spec.detach:
            from .errors import OptionError

            raise OptionError("--detach cannot leave a sweep running: this process builds its image and starts "
                              "its jobs one after another", "Run it without --detach, or start the sweep from "
                              "JupyterLab (%containerize or the sidebar), whose kernel or server keeps it going.")
        jobs = manager.submit_sweep(cmd.spec)
        sweep_id = jobs[0].record.sweep_id
        print(f"sweep {sweep_id} of {len(jobs)} jobs: " if sweep_id else f"sweep of {len(jobs)} jobs: ", end="")
        print(" ".join(j.id for j in jobs))
        records = [j.wait() for j in jobs]
        if sweep_id:
            print(compare_sweep(manager.store, sweep_id).text())
            print(f"\n(jupyter containerize jobs --sweep {sweep_id} [--metric M] [--csv | --json])")
        else:
            _print_table(records)
        return 0 if all(r.status == "succeeded" for r in records) else 1
    job = manager.submit(cmd.spec)
    print(f"job {job.id}")
    return _follow(job, progress, detach=cmd.spec.detach)


def _follow(job: Job, progress: TextProgress, detach: bool = False) -> int:
    """Print the job's events until it ends (or, detached, until it runs); Ctrl-C or SIGTERM cancels it."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        record = commands.follow(job, progress, detach=detach,
                                 on_cancel=lambda: print(f"cancelling job {job.id} …", file=sys.stderr))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if record is None:
        print(f"detached; follow with: jupyter containerize logs -f {job.id}")
        return 0
    return EXIT_CODES.get(record.status, 1)


def cmd_jobs(cmd: ParsedCommand) -> int:
    """The job list (filtered), or with ``--sweep`` the comparison of a sweep's jobs."""
    from .jobs.manager import JobManager

    args = cmd.args
    if args.get("sweep") is not None:
        comparison = compare_sweep(JobManager().store, args["sweep"], metric=args.get("metric"),
                                   direction=args.get("direction"))
        exported = comparison.export(as_json=bool(args.get("json")), as_csv=bool(args.get("csv")))
        print(exported if exported is not None else comparison.text() + "\n", end="")
        return 0
    records = list_jobs(JobManager(), limit=args["limit"], status=args.get("status"),
                        notebook=args.get("notebook_path"), name=args.get("name"), settle=JOBS_SETTLE_SECONDS)
    if args.get("json"):
        print(json.dumps([r.to_dict() for r in records], indent=1, default=str))
    else:
        _print_table(records)
    return 0


def _print_table(records: Sequence[JobRecord]) -> None:
    """The job list as text: a NAME column when a job has a name, SWEEP when one belongs to a sweep."""
    names = max((len(r.name) for r in records), default=0)
    sweeps = any(r.sweep_id for r in records)
    name_head = f"{'NAME':{min(max(names, 4), 32)}}  " if names else ""
    sweep_head = f"{'SWEEP':14}  " if sweeps else ""
    print(f"{'JOB':12}  {'STATUS':9}  {'TOTAL':>8}  {'RUN':>8}  {'NOTEBOOK':24}  {name_head}{sweep_head}"
          "PARAMETERS / METRICS")
    now = time.time()
    for r in records:  # TOTAL: from the request (capture and build included) to the end, or to now
        total = f"{((r.finished if r.finished is not None else now) - r.created):.1f}s"
        times = f"{total:>8}  " + (f"{r.duration:.1f}s" if r.duration is not None else "-").rjust(8)
        extra = " ".join(f"{k}={v}" for k, v in r.parameters.items())
        metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.metrics.items())
        name = f"{r.name[:32]:{min(max(names, 4), 32)}}  " if names else ""
        sweep = f"{r.sweep_id:14}  " if sweeps else ""
        print(f"{r.id:12}  {r.status:9}  {times}  {Path(r.notebook).name[:24]:24}  {name}{sweep}{extra}  "
              f"{metrics}".rstrip())


def cmd_logs(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    progress = TextProgress()
    if cmd.args.get("follow"):
        return _follow(manager.attach(cmd.args["job"]), progress)
    for event in commands.logs(manager, cmd.args["job"]):
        progress(event)
    return 0


def cmd_stop(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    record = commands.stop(JobManager(), cmd.args["job"])
    print(f"job {record.id} {record.status}")
    return 0


def cmd_rm(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    job_id = commands.remove(JobManager(), cmd.args["job"])
    print(f"removed job {job_id}")
    return 0


def cmd_base_image(cmd: ParsedCommand) -> int:
    tag = commands.base_image(cmd.args.get("python"), tag=cmd.args.get("tag"), force=cmd.args.get("force", False),
                              on_event=TextProgress())
    print(tag)
    return 0


def cmd_export(cmd: ParsedCommand) -> int:
    assert cmd.spec is not None
    written = commands.export(cmd.spec, cmd.args.get("dest"))
    print(f"exported to {written}")
    return 0


def cmd_verify(cmd: ParsedCommand) -> int:
    from .verify import verify

    report = verify(cmd.spec, cmd.args.get("target"), rtol=cmd.args.get("rtol", 1e-6),
                    against=cmd.args.get("against"), runs=cmd.args.get("runs", 2))
    print(report.text())
    return 0 if report.ok else 1


def cmd_prune(cmd: ParsedCommand) -> int:
    """The plan (``--dry-run``: only that), a question unless ``--yes``, then what was removed and freed."""
    from .errors import OptionError
    from .jobs.manager import JobManager
    from .jobs.retention import Retention

    args = cmd.args
    asks = not (args["dry_run"] or args["yes"])
    if asks and not sys.stdin.isatty():
        raise OptionError("prune asks before it removes anything, and there is no terminal to ask in",
                          "Pass --yes to remove without asking, or --dry-run to see what would go.")
    manager = JobManager()
    plan = commands.prune_plan(manager, Retention(keep_last=args["keep_last"], older_than=args["older_than_seconds"]),
                               all_images=args["all_images"], build_cache=args["build_cache"])
    if args["dry_run"] or plan.empty:
        print(json.dumps(plan.to_dict(), indent=1, default=str) if args["json"] else plan.text())
        return 0
    if asks:
        print(plan.text())
        if input("remove all of this? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    result = commands.prune_apply(manager, plan)
    print(json.dumps(result.to_dict(), indent=1, default=str) if args["json"] else result.text())
    return 1 if result.failures else 0


def cmd_du(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    usage = commands.disk_usage(JobManager())
    print(json.dumps(usage.to_dict(), indent=1, default=str) if cmd.args.get("json") else usage.text())
    return 0


SCHEDULER_NOTE = "the Jupyter server with this extension starts its runs (jupyter lab or jupyter server on this store)"


def cmd_schedule(cmd: ParsedCommand) -> int:
    """Check the run as ``run`` would, save the schedule, print its id and next run."""
    from .jobs.manager import JobManager

    assert cmd.spec is not None
    view = commands.schedule(JobManager(), cmd.spec, cmd.args["rule"])
    print(view.summary())
    print(SCHEDULER_NOTE)
    return 0


def cmd_schedules(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager
    from .jobs.schedules import table

    rows = commands.schedules(JobManager())
    print(json.dumps([r.to_dict() for r in rows], indent=1, default=str) if cmd.args.get("json") else table(rows))
    return 0


def cmd_unschedule(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    print(f"removed schedule {commands.unschedule(JobManager(), cmd.args['schedule'])}")
    return 0


def cmd_pause(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    print(commands.pause(JobManager(), cmd.args["schedule"]).summary())
    return 0


def cmd_resume(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    print(commands.resume(JobManager(), cmd.args["schedule"]).summary())
    return 0


COMMANDS = {
    "dockerfile": cmd_dockerfile, "build": cmd_build, "run": cmd_run, "jobs": cmd_jobs, "logs": cmd_logs,
    "stop": cmd_stop, "rm": cmd_rm, "base-image": cmd_base_image, "export": cmd_export, "verify": cmd_verify,
    "prune": cmd_prune, "du": cmd_du,
    "schedule": cmd_schedule, "schedules": cmd_schedules, "unschedule": cmd_unschedule, "pause": cmd_pause,
    "resume": cmd_resume,
}

if __name__ == "__main__":
    sys.exit(main())
