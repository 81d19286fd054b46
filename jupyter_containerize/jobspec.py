"""JobSpec and its parts: plain typed values, no I/O.

A JobSpec is everything a backend needs to build and run one notebook job. The
option parser (``options.py``) is the only place that creates one from text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

# imports: the imports' closure plus what it can use that the kernel has installed (optional
# dependencies named under extras); imports-only: the closure alone; all: every installed distribution.
FreezeMode = Literal["imports", "imports-only", "all"]
BuilderMode = Literal["auto", "buildkit", "classic"]
VolumeKind = Literal["bind", "volume"]

OUTPUT_DIR_IN_CONTAINER = "/output"
WORK_DIR_IN_CONTAINER = "/work"


@dataclass(frozen=True)
class GpuRequest:
    """GPUs asked of the engine, mirroring ``docker run --gpus``.

    ``count`` is -1 for all GPUs; ``device_ids`` names devices instead of a count.
    """

    count: int = 0
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ("gpu", "utility", "compute")

    @property
    def wanted(self) -> bool:
        return self.count != 0 or bool(self.device_ids)

    def describe(self) -> str:
        if self.device_ids:
            return "device=" + ",".join(self.device_ids)
        if self.count == -1:
            return "all"
        return str(self.count) if self.count else "none"


@dataclass(frozen=True)
class VolumeMount:
    """A bind mount (host path) or a named volume."""

    source: str
    target: str
    read_only: bool = False
    kind: VolumeKind = "bind"

    def describe(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class Resources:
    """Resource limits, in Docker's own units (``--memory 4g``, ``--shm-size 1g``)."""

    cpus: float | None = None
    memory: str | None = None
    shm_size: str | None = None
    time_limit: str | None = None  # the whole job's limit (--timeout), a Slurm wall time, e.g. "02:00:00"
    cell_time_limit: str | None = None  # one cell's limit (--cell-timeout), the same form


@dataclass(frozen=True)
class Hardening:
    """Run-time hardening; every field defaults to the safe choice."""

    cap_drop_all: bool = True
    no_new_privileges: bool = True
    read_only_root: bool = True
    allow_dangerous_mounts: bool = False


@dataclass(frozen=True)
class BuildOptions:
    """What shapes the image: capture and render inputs."""

    python: str | None = None
    base_image: str | None = None
    freeze: FreezeMode = "imports"
    include: tuple[str, ...] = ()
    no_cache: bool = False
    tag: str | None = None
    uid: int | None = None
    push: str | None = None
    cache_from: str | None = None
    builder: BuilderMode = "auto"  # auto: BuildKit when the engine has it (and --cache-from is not given)
    wheels_from_kernel: bool = False  # every pin a wheel of the kernel's, carried in the context; no index


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run one notebook as one container job."""

    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    volumes: tuple[VolumeMount, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    gpus: GpuRequest = GpuRequest()
    resources: Resources = Resources()
    network: str | None = None
    output_dir: Path | None = None
    detach: bool = False
    wait: bool = False
    backend: str = "docker"
    partition: str | None = None
    hardening: Hardening = Hardening()
    build: BuildOptions = BuildOptions()
    max_parallel: int = 2
    auto_mount: bool = True  # mount the data files the notebook reads, read-only, where it reads them
    inject_top: bool = False  # parameters without a 'parameters' cell go to the top (papermill) instead of refused
    name: str = ""  # the user's name for the job (--name), shown wherever jobs are listed; "" when none
    notify: str = ""  # a command or webhook URL told of the job's end (--notify); "": the config's, if any
    retries: int = 0  # more attempts after a failure that is not the notebook's (--retries)

    def with_changes(self, **changes: Any) -> JobSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for the job store and the REST API)."""
        return _to_jsonable(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        d = dict(data)
        d["notebook"] = Path(d["notebook"])
        if d.get("output_dir"):
            d["output_dir"] = Path(d["output_dir"])
        d["volumes"] = tuple(VolumeMount(**v) for v in d.get("volumes", ()))
        g = d.get("gpus", {})
        d["gpus"] = GpuRequest(
            count=g.get("count", 0),
            device_ids=tuple(g.get("device_ids", ())),
            capabilities=tuple(g.get("capabilities", GpuRequest().capabilities)),
        )
        d["resources"] = Resources(**d.get("resources", {}))
        d["hardening"] = Hardening(**d.get("hardening", {}))
        b = dict(d.get("build", {}))
        b["include"] = tuple(b.get("include", ()))
        d["build"] = BuildOptions(**b)
        d["sweep"] = {k: tuple(v) for k, v in d.get("sweep", {}).items()}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def sweep_job_name(name: str, parameters: Mapping[str, Any], swept: Iterable[str]) -> str:
    """A sweep job's name: the sweep's ``name`` and the job's swept values (``NAME lr=0.1 batch=32``); "" without a name."""
    if not name:
        return ""
    values = " ".join(f"{k}={format_value(parameters[k])}" for k in swept if k in parameters)
    return f"{name} {values}".rstrip()


def format_value(value: Any) -> str:
    """A parameter value as the user wrote it: strings bare, everything else as a Python literal."""
    return value if isinstance(value, str) else repr(value)


def _to_jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value
