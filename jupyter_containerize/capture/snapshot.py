"""EnvironmentSnapshot: what capture found, as plain typed values.

Render turns a snapshot (plus a JobSpec) into a build context; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PinSource = Literal["index", "vcs", "local-wheel", "url"]


@dataclass(frozen=True)
class PinnedDistribution:
    """One locked distribution.

    ``requirement`` is the exact line written to ``requirements.lock``:
    ``name==version`` for index packages, ``name @ git+https://…@<sha>`` for VCS
    installs, ``name @ file:///wheels/<file>.whl`` for local projects built into
    the context and for the kernel's wheels an index lacks, carried in it (``wheel_path`` is
    then the wheel on the host; see ``capture.wheels``), ``name @ https://…``
    for archives installed from a URL (``source="url"``).

    A ``local-wheel`` pin whose wheel is not built (or copied) yet has ``wheel_path=None`` and the
    project (folder, archive or wheel) in ``project_path``; its ``requirement`` is then only a
    placeholder: call ``capture.build_local_wheels`` (or ``build_local_wheel``) first.

    ``reason`` says why the pin is there when nothing the notebook imports requires it, or the
    kernel does not have it: an installed distribution that one in the closure names under an
    extra (see ``capture.distributions.optional_closure``), or a requirement the kernel lacks,
    resolved for the image's platform (see ``capture.resolve.resolve_for_target``); the lock's
    header repeats it.
    """

    name: str
    version: str
    requirement: str
    source: PinSource = "index"
    wheel_path: Path | None = None
    project_path: Path | None = None  # local project of a local-wheel pin (host path)
    # why a distribution the imports don't require, or the kernel lacks, is pinned (``optional for pandas[excel], …``)
    reason: str = ""


@dataclass(frozen=True)
class GpuInfo:
    """CUDA facts of the captured environment."""

    frameworks: tuple[str, ...] = ()  # e.g. ("torch",)
    cuda_version: str | None = None  # CUDA the image needs, e.g. "12.1"
    extra_index_urls: tuple[str, ...] = ()  # e.g. https://download.pytorch.org/whl/cu121
    needs_system_cuda: bool = False  # True: base must be nvidia/cuda:*-cudnn-runtime-*
    cuda_base_image: str | None = None


@dataclass(frozen=True)
class PipConfig:
    """The kernel's pip configuration, credentials split off.

    URLs here never contain credentials; those with credentials are replaced by
    ``build_args`` names whose values live only in ``secret_values`` (in memory,
    passed as build args to the builder stage, never written to the context).
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    cert_file: Path | None = None  # CA bundle on the host (not a secret)
    secret_build_args: tuple[str, ...] = ()  # names of ARGs the builder stage declares
    secret_values: dict[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """The kernel's environment, as needed to rebuild it exactly."""

    notebook: Path
    python_version: str  # exact X.Y.Z
    python_executable: str
    platform: str  # sys.platform of the captured interpreter
    machine: str  # platform.machine() of the captured interpreter
    imports: tuple[str, ...]  # top-level third-party modules the notebook uses
    distributions: tuple[PinnedDistribution, ...]  # the closure, sorted by name
    explicit_requirements: tuple[str, ...] = ()  # from %pip / !pip install lines
    local_modules: tuple[str, ...] = ()  # code copied into the image: paths relative to the notebook's folder
    data_paths: tuple[str, ...] = ()  # what the code reads, mounted read-only: relative to the notebook's folder
    references: tuple[tuple[str, str], ...] = ()  # (local module or data path, why it was taken)
    system_packages: tuple[str, ...] = ()  # Debian packages for ELF NEEDED libraries
    gpu: GpuInfo = GpuInfo()
    pip_config: PipConfig = PipConfig()
    ipykernel_version: str | None = None
    warnings: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()  # third-party modules as imported (``sklearn.linear_model``)
    runner_distributions: tuple[PinnedDistribution, ...] = ()  # the runner's closure as wheels (no index); else ()

    @property
    def notebook_folder(self) -> str:
        """Where the notebook's folder sits under ``/work`` (see :func:`.references.notebook_folder`)."""
        from .references import notebook_folder

        return notebook_folder(self.notebook, (*self.local_modules, *self.data_paths))

    def pin(self, name: str) -> PinnedDistribution | None:
        key = _normalize(name)
        return next((d for d in self.distributions if _normalize(d.name) == key), None)


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
