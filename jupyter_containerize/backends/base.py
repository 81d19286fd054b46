"""The Backend protocol: what every engine (Docker, Slurm, Kubernetes) offers the job manager.

A backend is a plugin, found by name through :mod:`.plugins`; the built-in ones register
exactly as a third-party one does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import validators
from ..errors import BackendError
from ..events import Event
from ..jobspec import OUTPUT_DIR_IN_CONTAINER, JobSpec

if TYPE_CHECKING:
    from ..render.context import BuildContext

EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class ImageRef:
    """A built (or found) image: its tag, engine id and, once pushed, its registry digest."""

    tag: str
    image_id: str
    cached: bool = False
    digest: str = ""  # "registry/repo@sha256:…" once pushed

    @property
    def reference(self) -> str:
        """What a run should name: the digest when there is one, else the tag."""
        return self.digest or self.tag


@dataclass(frozen=True)
class RunRequest:
    """One job's run: the image, the spec, and what the manager decided around it."""

    job_id: str
    image: ImageRef
    spec: JobSpec
    output_dir: Path
    command: tuple[str, ...] = ()  # overrides the image's CMD (e.g. another notebook path)
    extra_env: tuple[tuple[str, str], ...] = ()
    extra_mounts: tuple[tuple[str, str, bool], ...] = ()  # (host path, container path, read-only)


def job_environment(request: RunRequest) -> dict[str, str]:
    """The environment every backend gives the runner: the user's, plus the job id, outputs and parameters."""
    env = dict(request.spec.env)
    env.update(dict(request.extra_env))
    env["JC_JOB_ID"] = request.job_id
    env["JC_OUTPUT_DIR"] = OUTPUT_DIR_IN_CONTAINER
    if request.spec.parameters:
        env["JC_PARAMETERS"] = json.dumps(request.spec.parameters)  # command-line order, as papermill injects them
    limits = request.spec.resources
    if limits.time_limit:  # the runner stops the notebook itself, saves it and says where it was
        env["JC_TIMEOUT"] = str(validators.duration_seconds(limits.time_limit))
    if limits.cell_time_limit:
        env["JC_CELL_TIMEOUT"] = str(validators.duration_seconds(limits.cell_time_limit))
    return env


TIMEOUT_GRACE_SECONDS = 60
"""How long after ``--timeout`` a backend stops a job that did not stop itself (the runner saves the
notebook in that time): Slurm's ``--time`` and Kubernetes' ``activeDeadlineSeconds`` include it."""


def hard_limit_seconds(spec: JobSpec) -> int | None:
    """The time after which the backend (or the job manager's watchdog) stops the job: ``--timeout`` plus grace."""
    if not spec.resources.time_limit:
        return None
    return validators.duration_seconds(spec.resources.time_limit) + TIMEOUT_GRACE_SECONDS


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the backend saw it."""

    exit_code: int | None
    cancelled: bool = False
    last_log_time: str = ""
    #: Why the run was lost for a reason that is not the notebook's (the engine stopped answering or
    #: stopped the container, the node failed): ``--retries`` retries such a run. "" otherwise.
    lost: str = ""
    #: The kernel was killed for using more memory than the job's limit (not retried: the user's call).
    out_of_memory: bool = False


ImageBuild = Callable[[], ImageRef]


class Backend(Protocol):
    """A place where images run as jobs.

    Subclass it to inherit the defaults of the capabilities (``host_paths``, :meth:`preflight`,
    :meth:`build`); an optional classmethod ``from_config(config)`` builds the backend from the
    job manager's :class:`.config.Config` (else the class is called without arguments).
    """

    name: str
    host_paths: bool = True  # whether the job sees this machine's folders (bind mounts): not on Kubernetes
    job_arrays: bool = False  # whether start_array submits many runs as one throttled array (Slurm's job arrays)

    def preflight(self, spec: JobSpec, cuda_version: str | None = None) -> None:
        """Refuse, before anything is built, what this backend cannot run (``cuda_version``: the image's CUDA).

        Called twice: when the job is submitted, before it is recorded (``cuda_version`` None: tools,
        client libraries, a cluster's configuration, a GPU runtime); again once the environment is
        captured, with the image's CUDA version. Keep it quick. Default: nothing to refuse.
        """
        return None

    def build(self, context: BuildContext, spec: JobSpec, on_event: EventSink, engine_build: ImageBuild) -> ImageRef:
        """The image the job will run, from the rendered build ``context``.

        Default: ``engine_build()``, the local engine's build of ``context`` (pushed when the spec
        asks). A backend that builds elsewhere, or runs without an image, returns its own reference.
        """
        return engine_build()

    def start(self, request: RunRequest) -> str:
        """Start the job; return the backend's reference (container id, Slurm job id, …)."""
        ...

    def start_array(self, requests: Sequence[RunRequest], max_parallel: int) -> list[str]:
        """Start ``requests`` as one array of which at most ``max_parallel`` run at once; their refs, in order.

        Only where ``job_arrays`` is true (Slurm: one ``sbatch --array``). Each run stays its own job:
        ``refs[i]`` belongs to ``requests[i].job_id`` and works with :meth:`follow`, :meth:`cancel`,
        :meth:`remove` and :meth:`is_running` exactly as a ref from :meth:`start` does (a cancel ends
        that run only). On an error nothing was started. Default (``job_arrays`` false): a
        :class:`.errors.BackendError`; start the runs one by one with :meth:`start` instead.
        """
        raise BackendError(f"The {self.name} backend cannot start jobs as one array",
                           "Start them one by one (its job_arrays is false).")

    def follow(self, job_id: str, ref: str, on_event: EventSink, since: str = "",
               stop: threading.Event | None = None) -> RunOutcome:
        """Stream the job's events until it ends (or ``stop`` is set); resume after ``since``.

        The manager always passes ``stop``: it is set when the manager closes (the server stops;
        the job must keep running for a later re-attach) and when a cancel did not end the job
        within the manager's grace (a pod stuck Pending, a controller that lost the job). Check it
        at least once a poll, never sleep past it (``stop.wait(poll)``), and return promptly with
        ``exit_code=None`` and the position reached as ``last_log_time``.
        """
        ...

    def cancel(self, job_id: str, ref: str) -> None:
        """Stop the job; idempotent."""
        ...

    def remove(self, job_id: str, ref: str) -> None:
        """Remove whatever the job left on the backend (containers, pods); idempotent.

        ``ref`` is "" when the job never got one: remove what ``job_id`` names there, if anything.
        """
        ...

    def is_running(self, job_id: str, ref: str) -> bool:
        """Whether the job is still running there."""
        ...
