"""`jupyter containerize …`: a thin layer over the option parser and the job manager."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ContainerizeError
from .events import Finished
from .options import HelpShown, ParsedCommand, parse
from .textview import TextProgress

EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 130}


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


def cmd_dockerfile(cmd: ParsedCommand) -> int:
    from .jobs.pipeline import prepare
    from .render import render_context

    assert cmd.spec is not None
    prepared = prepare(cmd.spec)
    try:
        for warning in prepared.snapshot.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        out = cmd.args.get("output_dir")
        if not out:
            print(prepared.context.dockerfile, end="")
            return 0
        context = render_context(prepared.snapshot, cmd.spec, Path(out), buildkit=prepared.context.buildkit)
        print(f"wrote {len(context.files)} files to {context.path} (content hash {context.content_hash[:16]})")
    finally:
        prepared.cleanup()
    return 0


def cmd_build(cmd: ParsedCommand) -> int:
    from .jobs.pipeline import build_and_push, prepare

    assert cmd.spec is not None
    prepared = prepare(cmd.spec)
    try:
        progress = TextProgress(verbose=False)
        for warning in prepared.snapshot.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        image = build_and_push(prepared.context, cmd.spec, progress)
        print(image.reference)
    finally:
        prepared.cleanup()
    return 0


def cmd_run(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    assert cmd.spec is not None
    manager = JobManager()
    progress = TextProgress()
    if cmd.spec.sweep:
        jobs = manager.submit_sweep(cmd.spec)
        print(f"sweep of {len(jobs)} jobs: " + " ".join(j.id for j in jobs))
        if cmd.spec.detach:
            return 0
        records = [j.wait() for j in jobs]
        _print_table(records)
        return 0 if all(r.status == "succeeded" for r in records) else 1
    job = manager.submit(cmd.spec)
    print(f"job {job.id}")
    return _follow(job, progress, detach=cmd.spec.detach)


def _follow(job: Any, progress: TextProgress, detach: bool = False, after: int = 0) -> int:
    """Print the job's events until it ends (or, detached, until it runs); Ctrl-C cancels it."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for _, event in job.events(after=after, follow=True):
            progress(event)
            if detach and job.status in ("running", "succeeded", "failed", "cancelled"):
                print(f"detached; follow with: jupyter containerize logs -f {job.id}")
                return 0
            if isinstance(event, Finished):
                break
    except KeyboardInterrupt:
        print(f"cancelling job {job.id} …", file=sys.stderr)
        job.cancel()
        job.wait(timeout=60)
    finally:
        signal.signal(signal.SIGTERM, previous)
    record = job.wait()
    if record.status == "failed" and record.error:
        print(f"error: {record.error}", file=sys.stderr)
    return EXIT_CODES.get(record.status, 1)


def cmd_jobs(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    manager.reconcile()
    records = manager.store.list(limit=cmd.args["limit"])
    if cmd.args.get("json"):
        print(json.dumps([r.to_dict() for r in records], indent=1, default=str))
    else:
        _print_table(records)
    return 0


def _print_table(records: Sequence[Any]) -> None:
    print(f"{'JOB':12}  {'STATUS':9}  {'DURATION':>8}  {'NOTEBOOK':24}  PARAMETERS / METRICS")
    for r in records:
        duration = f"{r.duration:.1f}s" if r.duration is not None else "-"
        extra = " ".join(f"{k}={v}" for k, v in r.parameters.items())
        metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.metrics.items())
        print(f"{r.id:12}  {r.status:9}  {duration:>8}  {Path(r.notebook).name[:24]:24}  {extra}  {metrics}".rstrip())


def cmd_logs(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    job = manager.attach(cmd.args["job"])
    progress = TextProgress()
    if cmd.args.get("follow"):
        return _follow(job, progress)
    for _, event in job.events():
        progress(event)
    return 0


def cmd_stop(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    job = manager.attach(cmd.args["job"])
    manager.cancel(job.id)
    deadline = time.monotonic() + 60
    while not job.record.done and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"job {job.id} {job.status}")
    return 0


def cmd_rm(cmd: ParsedCommand) -> int:
    from .jobs.manager import JobManager

    manager = JobManager()
    record = manager.store.get(cmd.args["job"])
    manager.remove(record.id)
    print(f"removed job {record.id}")
    return 0


def cmd_base_image(cmd: ParsedCommand) -> int:
    from .backends.baseimage import build_base_image
    from .backends.engine import connect

    client = connect()
    tag = build_base_image(client, cmd.args.get("python"), tag=cmd.args.get("tag"), force=cmd.args.get("force", False),
                           on_event=TextProgress())
    print(tag)
    return 0


def cmd_export(cmd: ParsedCommand) -> int:
    from .export import export

    assert cmd.spec is not None
    dest = Path(cmd.args.get("dest") or f"{cmd.spec.notebook.stem}-container")
    written = export(cmd.spec, dest)
    print(f"exported to {written}")
    return 0


def cmd_verify(cmd: ParsedCommand) -> int:
    from .verify import verify

    report = verify(cmd.spec, cmd.args.get("target"), rtol=cmd.args.get("rtol", 1e-6),
                    against=cmd.args.get("against"), runs=cmd.args.get("runs", 2))
    print(report.text())
    return 0 if report.ok else 1


COMMANDS = {
    "dockerfile": cmd_dockerfile, "build": cmd_build, "run": cmd_run, "jobs": cmd_jobs, "logs": cmd_logs,
    "stop": cmd_stop, "rm": cmd_rm, "base-image": cmd_base_image, "export": cmd_export, "verify": cmd_verify,
}

if __name__ == "__main__":
    sys.exit(main())
