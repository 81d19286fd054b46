"""One exception root for every predictable failure.

Each error carries one sentence saying what went wrong and, in ``hint``, what to
do next. Front ends print ``str(error)`` and never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


def listing(names: Sequence[str]) -> str:
    """Names for a sentence: ``a``, ``a and b``, ``a, b and c``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


class ContainerizeError(Exception):
    """Root of all predictable jupyter-containerize failures."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message.rstrip('.')}. {self.hint}"
        return self.message


class OptionError(ContainerizeError):
    """A flag or option value is malformed."""


class NotebookError(ContainerizeError):
    """The notebook cannot be read or does not fit the request."""


class InterpreterError(ContainerizeError):
    """The target interpreter or kernelspec cannot be used for capture."""


class CaptureError(ContainerizeError):
    """The environment cannot be captured faithfully."""


class EngineError(ContainerizeError):
    """The container engine is unreachable or refused a request."""


class Unreachable(ContainerizeError):
    """The engine or a cluster's controller did not answer: the same request may work a little later
    (``--retries`` tries a job's start again)."""


class EngineUnreachable(EngineError, Unreachable):
    """No Docker engine answers (any more)."""


class GpuError(EngineError):
    """GPUs were requested but the engine or driver cannot provide them."""


class BuildError(ContainerizeError):
    """An image build failed."""

    def __init__(self, message: str, hint: str = "", step: str = "", log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint)
        self.step = step
        self.log_tail = log_tail


class JobError(ContainerizeError):
    """A job failed, was not found, or cannot change state."""


class JobNotFound(JobError):
    """No job with that id exists in the store."""


class ScheduleNotFound(JobNotFound):
    """No schedule with that id exists in the store."""


class RegistryError(ContainerizeError):
    """A registry push or pull failed."""


class BackendError(ContainerizeError):
    """A Slurm / Kubernetes backend failed."""


class ControllerUnreachable(BackendError, Unreachable):
    """The Slurm controller or the Kubernetes API did not answer, or said it was busy."""


class RemoteCellError(JobError):
    """A notebook cell failed inside the container."""

    def __init__(self, message: str, hint: str = "", cell_index: int | None = None, traceback: str = "") -> None:
        super().__init__(message, hint)
        self.cell_index = cell_index
        self.traceback = traceback
