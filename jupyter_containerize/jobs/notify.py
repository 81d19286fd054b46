"""Someone hears when a job ends: a command to run or a URL to POST the job's summary to.

``--notify`` (or the ``notify`` setting, once for every job) names the target:

- ``https://…`` / ``http://…``: a webhook; the summary is POSTed as JSON.
- anything else: a command line, split like a shell would (``shlex``) and run without a
  shell; the summary arrives as JSON on its stdin and the main fields as ``JC_JOB_*``
  environment variables.

The summary holds what the job store shows (id, name, notebook, status, error, exit code,
parameters, metrics, times, output folder); never the job's environment variables, whose
values may be secrets. A notification that fails is logged, never fails the job.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .store import JobRecord

TIMEOUT_SECONDS = 30
_SUMMARY_FIELDS = ("id", "notebook", "status", "error", "exit_code", "failing_cell", "parameters", "metrics",
                   "created", "started", "finished", "output_dir", "image_tag", "backend", "sweep_id")


def _is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def summary(record: JobRecord) -> dict[str, Any]:
    """What a notification says about the job: the record's public fields, no environment."""
    data = record.to_dict()
    out = {key: data.get(key) for key in _SUMMARY_FIELDS}
    out["name"] = data.get("name", "")
    out["duration"] = record.duration
    out["text"] = _sentence(record)
    return out


def _sentence(record: JobRecord) -> str:
    name = os.path.basename(record.notebook)
    text = f"Container job {record.id} ({name}) {record.status}"
    if record.duration is not None:
        text += f" after {record.duration:.0f} s"
    if record.error and record.status != "succeeded":
        text += f": {record.error}"
    return text + "."


def send(target: str, record: JobRecord, env: Mapping[str, str] | None = None) -> str:
    """Notify ``target`` of ``record``'s end; an empty string, or one sentence saying why it failed."""
    body = summary(record)
    payload = json.dumps(body, default=str).encode()
    if _is_url(target):
        request = urllib.request.Request(target, data=payload, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "jupyter-containerize"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            return f"the webhook {urlsplit(target).hostname} did not take the notification ({e})"
        return ""
    child_env = dict(os.environ if env is None else env)
    child_env.update({"JC_JOB_ID": record.id, "JC_JOB_STATUS": record.status, "JC_JOB_NOTEBOOK": record.notebook,
                      "JC_JOB_OUTPUT_DIR": record.output_dir, "JC_JOB_SUMMARY": str(body["text"])})
    try:
        done = subprocess.run(shlex.split(target), input=payload, env=child_env, capture_output=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the notify command could not run ({e})"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"the notify command exited with code {done.returncode}" + (f": {said[-1][:200]}" if said else "")
    return ""
