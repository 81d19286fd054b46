"""The engine's and the filesystem's side of disk hygiene: what this tool's images, containers, build cache
and output folders hold, and their removal.

What to keep and what to remove is decided in :mod:`..jobs.retention` (no I/O); this module only reads
facts and carries out removals. It never forces: an image a container uses is refused by the engine,
and that refusal is reported, never overridden. An image is this tool's when a tag of it has the
shape this tool gives it (``jupyter-containerize/<notebook slug>:<hash16>``, render/context.py) and it
carries the lock-hash label (render/dockerfile.py), or when a tag is a builder stage's
(``…:<hash16>-stageN``, builder.py ``_keep_stage_cache``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import EngineError
from ..render.dockerfile import LABEL_PREFIX
from .engine import JOB_LABEL, engine_says

if TYPE_CHECKING:
    import docker

_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
FINAL_TAG = re.compile(rf"^jupyter-containerize/({_SLUG}):([0-9a-f]{{16}})$")
STAGE_TAG = re.compile(rf"^jupyter-containerize/({_SLUG}):([0-9a-f]{{16}})-stage(\d+)$")
LOCK_LABEL = f"{LABEL_PREFIX}.lock-hash"
NOTEBOOK_LABEL = f"{LABEL_PREFIX}.notebook"
CACHE_MOUNT_TYPE = "exec.cachemount"  # BuildKit's record of a RUN --mount=type=cache (uv's download cache)
# BuildKit's other record types, pruned one type at a time (the engine takes one value per filter).
PRUNED_CACHE_TYPES = ("regular", "source.local", "source.git.checkout", "internal", "frontend")


@dataclass(frozen=True)
class ImageFacts:
    """One image as the engine reports it. Sizes are -1 where they were not read."""

    id: str
    tags: tuple[str, ...] = ()
    created: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    size: int = -1
    shared_size: int = -1
    layers: tuple[str, ...] = ()  # chain IDs, base first
    top_level: bool = True  # False: an untagged parent of another image (a classic build's step)

    @property
    def final_tags(self) -> tuple[str, ...]:
        """This tool's environment tags on the image (``jupyter-containerize/<slug>:<hash16>``)."""
        if LOCK_LABEL not in self.labels:
            return ()
        return tuple(t for t in self.tags if FINAL_TAG.match(t))

    @property
    def stage_tags(self) -> tuple[str, ...]:
        """This tool's builder-stage tags on the image (``…:<hash16>-stageN``)."""
        return tuple(t for t in self.tags if STAGE_TAG.match(t))

    @property
    def ours(self) -> bool:
        """Tagged by this tool, or an untagged environment of it (a tag moved to a rebuild)."""
        return bool(self.final_tags or self.stage_tags) or (not self.tags and LOCK_LABEL in self.labels)

    @property
    def unique_size(self) -> int:
        """Bytes no other image shares (the engine's Size - SharedSize), -1 when unknown."""
        return self.size - self.shared_size if self.size >= 0 and self.shared_size >= 0 else -1

    @property
    def notebook(self) -> str:
        """The notebook's file name, from the image's label."""
        return self.labels.get(NOTEBOOK_LABEL, "")


@dataclass(frozen=True)
class ContainerFacts:
    """A container (of any owner) and the image it holds on to."""

    id: str
    name: str
    image_id: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    job_id: str = ""  # this tool's job label, when it has one

    @property
    def active(self) -> bool:
        return self.state not in ("exited", "dead", "created")


@dataclass(frozen=True)
class CacheRecord:
    """One BuildKit build-cache record (``GET /system/df``)."""

    id: str
    type: str
    size: int
    last_used: float | None  # None: never used since it was made
    in_use: bool = False
    shared: bool = False
    description: str = ""


@dataclass(frozen=True)
class EngineFacts:
    """What the engine holds: images (with every intermediate one when sizes were read), containers, cache."""

    images: tuple[ImageFacts, ...] = ()
    containers: tuple[ContainerFacts, ...] = ()
    cache: tuple[CacheRecord, ...] = ()
    sizes: bool = False  # sizes, layers and the build cache were read
    reachable: bool = True


def chain_ids(diff_ids: Iterable[str]) -> tuple[str, ...]:
    """The OCI chain IDs of a layer stack (base first): equal prefixes, equal IDs."""
    chain: list[str] = []
    for diff in diff_ids:
        chain.append(diff if not chain else "sha256:" + hashlib.sha256(f"{chain[-1]} {diff}".encode()).hexdigest())
    return tuple(chain)


def _tags(raw: Any) -> tuple[str, ...]:
    return tuple(sorted(t for t in raw or () if t and t != "<none>:<none>"))


def _time(text: Any) -> float | None:
    if not text or str(text).startswith("0001-"):
        return None
    value = str(text).replace("Z", "+00:00")
    head, dot, rest = value.partition(".")
    if dot:  # Go writes nanoseconds; Python reads at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        value = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def read_engine(client: docker.DockerClient, *, sizes: bool = True) -> EngineFacts:
    """The engine's images, containers and (with ``sizes``) image sizes, layer chains and build cache.

    Without ``sizes`` only the calls a decision needs are made (no ``/system/df``, no inspect of each image).

    Raises:
        EngineError: the engine refused or stopped answering.
    """
    import docker.errors
    import requests

    try:
        api = client.api
        containers = tuple(
            ContainerFacts(id=str(c["Id"]), name=str((c.get("Names") or ["?"])[0]).lstrip("/"),
                           image_id=str(c.get("ImageID") or ""), state=str(c.get("State") or ""),
                           job_id=str((c.get("Labels") or {}).get(JOB_LABEL, "")))
            for c in api.containers(all=True))
        if not sizes:
            images = tuple(ImageFacts(id=str(i["Id"]), tags=_tags(i.get("RepoTags")), created=float(i.get("Created") or 0),
                                      labels=dict(i.get("Labels") or {}))
                           for i in api.images())
            return EngineFacts(images=images, containers=containers)
        df = _disk_usage(client)
        top = {str(i["Id"]): i for i in df.get("Images") or ()}
        facts = []
        for i in api.images(all=True):
            image_id = str(i["Id"])
            try:
                layers = chain_ids((client.images.get(image_id).attrs.get("RootFS") or {}).get("Layers") or ())
            except docker.errors.NotFound:  # removed since it was listed
                continue
            listed = top.get(image_id, i)
            shared = listed.get("SharedSize")
            facts.append(ImageFacts(
                id=image_id, tags=_tags(listed.get("RepoTags")), created=float(listed.get("Created") or 0),
                labels=dict(listed.get("Labels") or {}), size=int(listed.get("Size") or 0),
                shared_size=shared if isinstance(shared, int) and shared >= 0 else -1,
                layers=layers, top_level=image_id in top))
        cache = tuple(
            CacheRecord(id=str(r.get("ID")), type=str(r.get("Type") or ""), size=int(r.get("Size") or 0),
                        last_used=_time(r.get("LastUsedAt")), in_use=bool(r.get("InUse")),
                        shared=bool(r.get("Shared")), description=str(r.get("Description") or ""))
            for r in df.get("BuildCache") or ())
        return EngineFacts(images=tuple(facts), containers=containers, cache=cache, sizes=True)
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise EngineError(f"The engine could not list its images ({engine_says(e)})",
                          "Check that it runs (`docker info`), then try again.") from None


def _disk_usage(client: docker.DockerClient, tries: int = 20) -> dict[str, Any]:
    """``GET /system/df``; an engine before 23.0 answers one such call at a time and refuses the others."""
    import docker.errors

    for attempt in range(tries):
        try:
            return dict(client.api.df())
        except docker.errors.APIError as e:
            if "already running" not in str(e) or attempt == tries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def remove_image(client: docker.DockerClient, ref: str) -> tuple[str, ...]:
    """Untag ``ref`` (a tag, or the id of an untagged image); the engine deletes the image with its last tag.
    Never forced. Returns the ids the engine deleted (none when another tag keeps the image, or it was gone).

    Raises:
        EngineError: the engine refused (a container uses the image), in its own words.
    """
    import docker.errors
    import requests

    try:
        answer = client.api.remove_image(ref, force=False, noprune=False)
    except docker.errors.NotFound:
        return ()
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise EngineError(f"The engine kept {ref} ({engine_says(e)})") from None
    return tuple(str(item["Deleted"]) for item in answer or () if isinstance(item, dict) and item.get("Deleted"))


def remove_container(client: docker.DockerClient, container_id: str) -> None:
    """Remove a stopped container (never a running one: not forced).

    Raises:
        EngineError: the engine refused.
    """
    import docker.errors
    import requests

    try:
        client.api.remove_container(container_id, force=False)
    except docker.errors.NotFound:
        return
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise EngineError(f"The engine kept container {container_id[:12]} ({engine_says(e)})") from None


def prune_build_cache(client: docker.DockerClient, older_than: float) -> tuple[int, int]:
    """Remove the BuildKit cache records not used for ``older_than`` seconds, every type but the cache
    mounts (uv's download cache, shared by every environment). Returns (records, bytes) the engine freed.

    Raises:
        EngineError: the engine refused (an engine without BuildKit has no build cache to prune).
    """
    import docker.errors
    import requests

    records = freed = 0
    for kind in PRUNED_CACHE_TYPES:
        try:
            # docker-py's stubs know only the until and dangling filters; the engine takes every BuildKit one
            answer = client.api.prune_builds(filters=cast(Any, {"until": f"{int(older_than)}s", "type": kind}))
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineError(f"The engine could not prune its build cache ({engine_says(e)})") from None
        records += len(answer.get("CachesDeleted") or ())
        freed += int(answer.get("SpaceReclaimed") or 0)
    return records, freed


def folder_bytes(path: Path) -> int:
    """Disk space a folder's files take (allocated blocks, as ``du``); 0 when it is missing. Links are not followed."""
    total = 0
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_blocks * 512
    for root, dirs, files in os.walk(path, onerror=lambda _e: None):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


def remove_output_folder(path: Path) -> None:
    """Remove a job's output folder, then its ``<stem>.jc-jobs`` parent if that is left empty.

    Raises:
        OSError: a file could not be removed (permissions).
    """
    if path.is_symlink() or not path.exists():
        return
    shutil.rmtree(path)
    parent = path.parent
    if parent.name.endswith(".jc-jobs"):
        with contextlib.suppress(OSError):  # other jobs' folders are still there
            parent.rmdir()
