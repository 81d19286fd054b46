"""The settings of the job manager and its backends: one object, whoever fills it.

Front ends build one :class:`Config` and hand it to the job manager, which gives it to
each backend it loads (:func:`.plugins.load_backend`). :meth:`Config.from_env` starts
from the ``JC_*`` environment variables (the way these settings were always given) and
takes what a front end sets on top: the CLI and magics their options, the server its
traitlets (``c.ContainerizeApp.slurm_dir = …``). No other module reads these variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import validators
from ..errors import OptionError

DEFAULT_SLURM_DIR = Path.home() / ".local" / "share" / "jupyter-containerize" / "slurm"


def _env(name: str, parse: Callable[[str], Any] = str) -> dict[str, Any]:
    return {"env": name, "parse": parse}


def _keep_last(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OptionError(f"retention_keep_last {value!r} is not a whole number", "Give 1 or more.") from None
    return validators.keep_count(number, "retention_keep_last")


def _age(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return validators.age_seconds(str(value), "retention_older_than")


@dataclass(frozen=True)
class Config:
    """Where jobs are recorded and how each backend reaches its cluster.

    Each field's ``JC_*`` variable is its default (see :meth:`from_env`).
    """

    store_path: Path | None = field(default=None, metadata=_env("JC_STORE", Path))
    """The job store (SQLite); None: the Jupyter data dir's."""
    slurm_dir: Path = field(default=DEFAULT_SLURM_DIR, metadata=_env("JC_SLURM_DIR", Path))
    """Where each Slurm job's script, output file and exit code go; on a filesystem the nodes share."""
    slurm_docker: str = field(default="docker", metadata=_env("JC_SLURM_DOCKER"))
    """The docker command on the Slurm nodes."""
    slurm_poll: float = field(default=1.0, metadata=_env("JC_SLURM_POLL", float))
    """Seconds between Slurm status polls."""
    slurm_unknown_grace: float = field(default=60.0, metadata=_env("JC_SLURM_UNKNOWN_GRACE", float))
    """Seconds a Slurm job may stay unknown to every source (a busy controller) before its follow gives up."""
    k8s_namespace: str | None = field(default=None, metadata=_env("JC_K8S_NAMESPACE"))
    """The Kubernetes namespace; None: the kubeconfig context's, else ``default``."""
    k8s_output_pvc: str | None = field(default=None, metadata=_env("JC_K8S_OUTPUT_PVC"))
    """A PVC mounted at /output; None: an emptyDir, lost with the pod (metrics and logs still arrive)."""
    k8s_ttl: int = field(default=3600, metadata=_env("JC_K8S_TTL", int))
    """The Kubernetes Job's ``ttlSecondsAfterFinished``."""
    k8s_backoff_limit: int = field(default=0, metadata=_env("JC_K8S_BACKOFF_LIMIT", int))
    """The Kubernetes Job's ``backoffLimit`` (0: a failed notebook is not retried)."""
    k8s_poll: float = field(default=2.0, metadata=_env("JC_K8S_POLL", float))
    """Seconds between Kubernetes status polls."""
    retention_keep_last: int | None = field(default=None, metadata=_env("JC_RETENTION_KEEP_LAST", _keep_last))
    """After each job's end, keep each notebook's newest N finished runs (as ``prune --keep-last N``); None: all."""
    retention_older_than: float | None = field(default=None, metadata=_env("JC_RETENTION_OLDER_THAN", _age))
    """After each job's end, remove runs, and images no job uses, older than this (seconds, or text such as
    ``30d``, as ``prune --older-than``); None: keep them. With both, a run either keeps stays."""
    notify: str | None = field(default=None, metadata=_env("JC_NOTIFY"))
    """A command to run or a webhook URL to POST to when any job ends (a job's ``--notify`` replaces it)."""
    backend_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Settings of third-party backends, by backend name (their ``from_config`` reads them)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """The settings in the ``JC_*`` variables of ``env`` (default: this process's), then ``overrides``.

        An override that is None or "" leaves the variable's value (or the default) in place,
        so a front end passes what its user set and nothing else.

        Raises:
            OptionError: a variable or an override does not parse (a poll that is not a number).
        """
        env = os.environ if env is None else env
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise OptionError(f"Unknown setting {unknown[0]!r}", f"Use one of {', '.join(sorted(known))}.")
        values: dict[str, Any] = {}
        for f in fields(cls):
            parse: Callable[[str], Any] = f.metadata.get("parse", str)
            given = overrides.get(f.name)
            if given is not None and given != "":
                values[f.name] = given if f.name == "backend_options" else _parse(parse, given, f.name)
                continue
            name = f.metadata.get("env")
            if name and env.get(name):
                values[f.name] = _parse(parse, env[name], name)
        return cls(**values)


def _parse(parse: Callable[[str], Any], value: Any, name: str) -> Any:
    try:
        return parse(value)
    except (TypeError, ValueError):
        kind = "a number of seconds" if parse is float else "a whole number" if parse is int else "a plain value"
        raise OptionError(f"{name}={value!r} is not {kind}", f"Set {name} to {kind}, or unset it.") from None
