"""The lock files of a build context: the user's, the kernel's addition, the runner's.

All three are plain requirement files that uv reads. They carry a header that names
what they were made from, and nothing that changes between two renders of the same
inputs (no dates, no host paths).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from collections.abc import Sequence

from ..capture.snapshot import EnvironmentSnapshot, PinnedDistribution
from .. import validators
from .quoting import comment_text

TOOL = "jupyter-containerize"


def tool_version() -> str:
    """The version of this package (from its metadata, else the module's)."""
    try:
        return importlib.metadata.version(TOOL)
    except importlib.metadata.PackageNotFoundError:
        from .. import __version__

        return __version__


def _lines(pins: Sequence[PinnedDistribution]) -> list[str]:
    for pin in pins:
        if "\n" in pin.requirement or "\r" in pin.requirement:
            raise ValueError(f"a requirement line contains a newline: {pin.name}")
    by_name = {(_normalize(pin.name), pin.requirement) for pin in pins}
    return [requirement for _, requirement in sorted(by_name)]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_lock(snapshot: EnvironmentSnapshot, freeze: str) -> str:
    """``requirements.lock``: the captured closure, one requirement per line, sorted.

    The header names each pin that nothing imported requires, and why it is there.
    """
    lines = _lines(snapshot.distributions)
    header = [
        f"# requirements.lock: written by {TOOL} {tool_version()}; edit the environment, not this file.",
        # No notebook name: notebooks with the same environment share the install step's build cache.
        (f"# python {snapshot.python_version} ({comment_text(snapshot.platform)} {comment_text(snapshot.machine)}); "
         f"freeze {freeze}; {len(lines)} distributions"),
    ]
    if snapshot.explicit_requirements:
        header.append("# asked for in the notebook: " + comment_text(", ".join(sorted(snapshot.explicit_requirements))))
    header += [f"# {comment_text(pin.name)}: {comment_text(pin.reason)}"
               for pin in sorted(snapshot.distributions, key=lambda p: _normalize(p.name)) if pin.reason]
    return "\n".join(header + lines) + "\n"


def kernel_lock(snapshot: EnvironmentSnapshot, host_ipykernel: str | None) -> str | None:
    """``kernel.lock`` when the lock lacks ipykernel: the kernel's own version, else ``None``.

    It is installed with ``-c requirements.lock``, so it can add packages but never
    move a pin the user captured.
    """
    if snapshot.pin("ipykernel") is not None:
        return None
    version = snapshot.ipykernel_version or host_ipykernel
    if not version:
        return "# kernel.lock: ipykernel for the kernel (any version the lock allows)\nipykernel\n"
    validators.version(version, "ipykernel")
    return f"# kernel.lock: ipykernel of the captured kernel, constrained by requirements.lock\nipykernel=={version}\n"


def runner_lock(pins: Sequence[PinnedDistribution]) -> str:
    """``runner.lock``: the runner venv's pins (nbclient, nbformat and their closure)."""
    lines = _lines(pins)
    return f"# runner.lock: the runner's own venv (/opt/jc-runner), written by {TOOL} {tool_version()}\n" + "\n".join(
        lines
    ) + "\n"


def lock_hash(text: str) -> str:
    """sha256 of a lock file's text (the image's lock-hash label)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
