"""What disk hygiene keeps and removes, and the space that frees: plain functions, no I/O.

:func:`plan` takes the store's job records, the engine's facts (:mod:`..backends.disk`) and a
:class:`Retention` and says what goes; :func:`usage` says what each notebook and environment holds.
:mod:`.commands` reads the facts and carries the plan out. The rules, in the order they apply:

- **Runs.** A sweep's jobs count as one run of their notebook and go or stay together.
- **Unfinished jobs** (queued, building, pushing, running) always stay, with their image; a notebook
  with an unfinished job that has no image yet keeps every image of its repository (the job may
  be about to reuse one).
- **Finished runs** stay when they are among the ``keep_last`` newest finished runs of their notebook,
  or when they ended within ``older_than`` seconds; with both, either keeps them.
- **Images.** An image a kept job needs (its id or tag) stays. One that only removed jobs used goes.
  One that no job of the store uses goes when it is older than ``older_than`` (never by
  ``keep_last`` alone) and is in scope: its repository is that of a notebook of the store, or
  ``all_images`` was asked for. A builder stage (``…-stageN``) goes with its environment's tag.
- **Never**: an image named in ``protected`` (by tag or id: the extension point for schedules and
  anything else that pins images), an image a container uses (except the stopped containers of removed
  jobs, removed first), a tag that is not this tool's (an image kept by another tag is only untagged),
  an output folder that is not the job's own default one (``--output`` folders are the user's).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..backends.disk import CACHE_MOUNT_TYPE, FINAL_TAG, STAGE_TAG, CacheRecord, EngineFacts, ImageFacts
from .store import JobRecord

IMAGE_REPO = "jupyter-containerize/"


# -- words and numbers ---------------------------------------------------------------------------------

def human_bytes(n: int) -> str:
    """Decimal units, as ``docker images`` shows them: ``0 B``, ``24.6 kB``, ``448 MB``, ``32.7 GB``."""
    if n < 0:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.3g} {unit}"
        value /= 1000
    return f"{n} B"  # unreachable


def age_text(seconds: float) -> str:
    """``30d``, ``12h``, ``90m``, ``45s``: the largest unit that divides it, else one decimal of days or hours."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds:.0f}s"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t > 0 else "-"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


# -- the retention ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Retention:
    """Which finished runs stay: the newest ``keep_last`` of each notebook, or those newer than ``older_than`` s."""

    keep_last: int | None = None
    older_than: float | None = None

    @property
    def given(self) -> bool:
        return self.keep_last is not None or self.older_than is not None

    def describe(self) -> str:
        parts = []
        if self.keep_last is not None:
            parts.append(f"the last {_plural(self.keep_last, 'finished run')} of each notebook")
        if self.older_than is not None:
            parts.append(f"what ended in the last {age_text(self.older_than)}")
        return "keep " + " and ".join(parts or ["everything"]) + ", and every unfinished job"

    def to_dict(self) -> dict[str, Any]:
        return {"keep_last": self.keep_last, "older_than_seconds": self.older_than}


def runs_to_keep(jobs: Sequence[JobRecord], retention: Retention, now: float) -> tuple[list[JobRecord], list[JobRecord]]:
    """(kept, removed) jobs: unfinished runs stay; finished runs by ``retention`` (see the module's rules)."""
    by_notebook: dict[str, dict[str, list[JobRecord]]] = defaultdict(dict)
    for record in jobs:
        by_notebook[record.notebook].setdefault(record.sweep_id or record.id, []).append(record)
    cutoff = None if retention.older_than is None else now - retention.older_than
    kept: list[JobRecord] = []
    removed: list[JobRecord] = []
    for runs in by_notebook.values():
        finished = [run for run in runs.values() if all(j.done for j in run)]
        kept += [j for run in runs.values() if not all(j.done for j in run) for j in run]
        finished.sort(key=lambda run: max((j.created, j.id) for j in run), reverse=True)
        for rank, run in enumerate(finished):
            ended = max(j.finished or j.created for j in run)
            keep = ((retention.keep_last is not None and rank < retention.keep_last)
                    or (cutoff is not None and ended > cutoff))
            (kept if keep else removed).extend(run)
    return kept, removed


# -- the space images take -----------------------------------------------------------------------------

def freed_bytes(images: Sequence[ImageFacts], going: Collection[str]) -> tuple[int, bool]:
    """The bytes the engine frees when it deletes the images whose ids are in ``going``, and whether that is exact.

    The engine gives each image's Size and SharedSize (the bytes of its layers another image also
    has), not each layer's. Layers form a tree (chain IDs: equal prefixes, equal IDs), so the
    cumulative size is known at every image's top (its Size) and at its deepest shared layer (its
    SharedSize); a layer goes when no image that stays has it. Where a fork of the tree has no known
    size (both sides shared further down) the estimate is the smallest the facts allow, and not exact.
    """
    going = set(going)
    top = [i for i in images if i.top_level]
    known, parent, children = _layer_tree(images)
    stays = {n for image in top if image.id not in going for n in image.layers}
    freed = {n for image in top if image.id in going for n in image.layers if n not in stays}
    exact = [True]
    lowest: dict[str, int] = {}

    def smallest_known_below(node: str) -> int:
        """The least cumulative size known at or under ``node``: no less than the size at ``node`` itself."""
        if node not in lowest:
            sizes = [known[node]] if node in known else []
            sizes += [smallest_known_below(c) for c in children[node]]
            lowest[node] = min(sizes) if sizes else 0
        return lowest[node]

    def subtree(node: str, above: int) -> int:
        """Bytes of ``node`` and everything under it, the cumulative size above it being ``above``."""
        end = node
        while end not in known and len(children[end]) == 1:
            end = next(iter(children[end]))
        if end in known:
            at = known[end]
        else:
            at, exact[0] = smallest_known_below(end), False
        return max(0, at - above) + sum(subtree(c, at) for c in children[end])

    total = 0
    for root in sorted(n for n in freed if parent.get(n) not in freed):
        up = parent.get(root)
        if up is None:
            above = 0
        elif up in known:
            above = known[up]
        else:  # as large as the facts allow: the estimate stays a lower bound
            above, exact[0] = smallest_known_below(up), False
        total += subtree(root, above)
    return total, exact[0]


def _layer_tree(images: Sequence[ImageFacts]) -> tuple[dict[str, int], dict[str, str | None],
                                                       dict[str | None, set[str]]]:
    """The layer tree of ``images``: the cumulative size known at a layer, each layer's parent, its children.

    Shared means in more than one top-level image, as the engine counts it for SharedSize.
    """
    refs: dict[str, int] = defaultdict(int)
    for image in images:
        for node in image.layers if image.top_level else ():
            refs[node] += 1
    known: dict[str, int] = {}
    parent: dict[str, str | None] = {}
    children: dict[str | None, set[str]] = defaultdict(set)
    for image in images:
        for depth, node in enumerate(image.layers):
            up = image.layers[depth - 1] if depth else None
            parent[node] = up
            children[up].add(node)
        if image.layers and image.size >= 0:
            known[image.layers[-1]] = image.size
        if image.top_level and image.shared_size >= 0:
            shared = [n for n in image.layers if refs[n] > 1]  # a prefix: a layer's images all have its parents
            if shared:
                known[shared[-1]] = image.shared_size
    return known, parent, children


# -- the plan ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobRemoval:
    """A job that goes: its record, and its output folder when that is the job's own."""

    id: str
    notebook: str
    status: str
    ended: float
    name: str = ""
    sweep_id: str = ""
    folder: str = ""  # removed with the job; "" when none or not the job's own
    folder_kept: str = ""  # a folder that stays (given with --output), for the report
    folder_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImageRemoval:
    """An image whose tags of this tool go (and the image with them when no other tag keeps it)."""

    image_id: str
    refs: tuple[str, ...]  # the tags to remove (or the id of an untagged image)
    reason: str
    deleted: bool  # the engine deletes the image: every tag of it goes and no container keeps it
    kept_by: tuple[str, ...] = ()  # other tags, which keep the image
    containers: tuple[str, ...] = ()  # stopped containers of removed jobs, removed first
    size: int = -1
    unique: int = -1
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "refs": list(self.refs), "kept_by": list(self.kept_by),
                "containers": list(self.containers)}


@dataclass(frozen=True)
class SparedImage:
    """An image the retention would remove but a safety rule keeps."""

    ref: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CacheEstimate:
    """BuildKit cache records unused for longer than the age (cache mounts aside)."""

    records: int
    bytes: int
    mounts_kept: int  # bytes of the cache mounts (uv's download cache), kept


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes: jobs (record + own folder), images and builder stages, optionally build cache."""

    retention: Retention
    jobs: tuple[JobRemoval, ...] = ()
    kept_jobs: int = 0
    images: tuple[ImageRemoval, ...] = ()
    spared: tuple[SparedImage, ...] = ()
    cache: CacheEstimate | None = None
    image_bytes: int = 0  # what deleting the images frees (-1: sizes were not read)
    exact: bool = True
    notes: tuple[str, ...] = ()
    # How it was asked for (a prune re-plans just before it removes anything) and the facts it saw.
    all_images: bool = False
    build_cache: bool = False
    protected: frozenset[str] = frozenset()
    facts: tuple[ImageFacts, ...] = field(default=(), repr=False, compare=False)

    @property
    def folder_bytes(self) -> int:
        return sum(j.folder_bytes for j in self.jobs)

    @property
    def empty(self) -> bool:
        return not (self.jobs or self.images or (self.cache and self.cache.records))

    def with_folder_sizes(self, sizes: Mapping[str, int]) -> PrunePlan:
        return replace(self, jobs=tuple(replace(j, folder_bytes=sizes.get(j.folder, 0)) for j in self.jobs))

    def to_dict(self) -> dict[str, Any]:
        cache = None if self.cache is None else dict(self.cache.__dict__)
        return {"retention": self.retention.to_dict(), "jobs": [j.to_dict() for j in self.jobs],
                "kept_jobs": self.kept_jobs, "images": [i.to_dict() for i in self.images],
                "spared": [s.to_dict() for s in self.spared], "build_cache": cache,
                "bytes": {"images": self.image_bytes, "folders": self.folder_bytes,
                          "build_cache": self.cache.bytes if self.cache else 0},
                "exact": self.exact, "notes": list(self.notes)}

    def text(self, verb: str = "would remove") -> str:
        """The plan as lines (``verb``: ``would remove`` for a dry run, ``removing`` before a real one)."""
        out = [f"prune: {self.retention.describe()}"]
        out += [f"note: {n}" for n in self.notes]
        out += _job_lines(self.jobs, verb, self.kept_jobs)
        out += _image_lines(self.images, verb)
        out += [f"left alone: {s.ref} ({s.reason})" for s in self.spared]
        if self.cache is not None:
            out.append(f"build cache: {verb} {_plural(self.cache.records, 'entry')} "
                       f"({human_bytes(self.cache.bytes)}) unused for {age_text(self.retention.older_than or 0)}; "
                       f"uv's download cache ({human_bytes(self.cache.mounts_kept)}) stays")
        if self.empty:
            out.append("nothing to remove")
        about = "" if self.exact else "at least "
        cache = self.cache.bytes if self.cache else 0
        total = max(0, self.image_bytes) + self.folder_bytes + cache
        out.append(f"{'would free' if verb.startswith('would') else 'frees'} {about}{human_bytes(total)}: images "
                   f"{about}{human_bytes(self.image_bytes)}, folders {human_bytes(self.folder_bytes)}"
                   + (f", build cache about {human_bytes(cache)}" if self.cache is not None else ""))
        return "\n".join(out)


def _job_lines(jobs: Sequence[JobRemoval], verb: str, kept: int) -> list[str]:
    if not jobs:
        return []
    out = [f"{verb} {_plural(len(jobs), 'job')} ({kept} kept):"]
    for j in jobs:
        name = f"  {j.name}" if j.name else ""
        out.append(f"  job {j.id}  {j.status:9}  {_when(j.ended)}  {j.notebook}{name}")
        if j.folder:
            out.append(f"    folder {j.folder}  {human_bytes(j.folder_bytes)}")
        elif j.folder_kept:
            out.append(f"    folder {j.folder_kept} stays (given with --output)")
    return out


def _image_lines(images: Sequence[ImageRemoval], verb: str) -> list[str]:
    out = []
    deleted = [i for i in images if i.deleted]
    untagged = [i for i in images if not i.deleted]
    if deleted:
        out.append(f"{verb} {_plural(len(deleted), 'image')}:")
        for i in deleted:
            size = f"  {human_bytes(i.size)}, {human_bytes(i.unique)} unique" if i.size >= 0 else ""
            out.append(f"  {', '.join(i.refs)}{size}  ({i.reason})")
    if untagged:
        out.append(f"{verb} {_plural(len(untagged), 'tag')} of images other tags keep:")
        out += [f"  {', '.join(i.refs)}  (the image stays: {', '.join(i.kept_by)}; {i.reason})" for i in untagged]
    return out


def _repo_hash(tag: str) -> tuple[str, str] | None:
    m = FINAL_TAG.match(tag) or STAGE_TAG.match(tag)
    return (IMAGE_REPO + m.group(1), m.group(2)) if m else None


def plan(jobs: Sequence[JobRecord], engine: EngineFacts, retention: Retention, now: float | None = None, *,
         owned_folder: Callable[[JobRecord], bool], repos: Mapping[str, str] | None = None, all_images: bool = False,
         protected: Collection[str] = (), build_cache: bool = False) -> PrunePlan:
    """What a prune with ``retention`` removes (see the module's rules).

    Args:
        jobs: Every job of the store.
        engine: The engine's images (and intermediate images, for sizes), containers and build cache.
        owned_folder: Whether a job's ``output_dir`` is its own default folder (never a ``--output`` one).
        repos: The image repository of each notebook of the store (``jupyter-containerize/<slug>``).
        all_images: Also this tool's images of notebooks that have no job in this store.
        protected: Image tags or ids that never go (schedules pin their images here).
        build_cache: Also estimate the BuildKit cache records unused for ``older_than``.
    """
    now = time.time() if now is None else now
    repos = repos or {}
    kept, removed = runs_to_keep(jobs, retention, now)
    removed_ids = {r.id for r in removed}
    unfinished = [r for r in jobs if not r.done]
    needed = {ref for r in kept for ref in (r.image_tag, r.image_id) if ref}
    used_by_removed = {ref for r in removed for ref in (r.image_tag, r.image_id) if ref}
    busy_hashes = {r.lock_hash[:16] for r in unfinished if r.lock_hash}
    busy_repos = {repos[r.notebook] for r in unfinished if not r.image_tag and r.notebook in repos}
    in_scope = set(repos.values())
    cutoff = None if retention.older_than is None else now - retention.older_than
    images = [i for i in engine.images if i.top_level]

    spared: list[SparedImage] = []
    removals: list[ImageRemoval] = []

    def take(image: ImageFacts, refs: list[str], why: str) -> bool:
        reason = _spared_because(image, refs, protected, busy_hashes, busy_repos, engine, removed_ids)
        if reason:
            spared.append(SparedImage(refs[0], reason))
            return False
        others = tuple(t for t in image.tags if t not in refs)
        removals.append(ImageRemoval(
            image_id=image.id, refs=tuple(refs), reason=why, deleted=not others, kept_by=others,
            containers=tuple(c.id for c in engine.containers if c.image_id == image.id), size=image.size,
            unique=image.unique_size, created=image.created))
        return True

    going: set[str] = set()  # environment tags that go: their builder stages go with them
    for image in images:
        if not image.ours or image.stage_tags or {image.id, *image.tags} & needed:
            continue
        refs = list(image.final_tags) or [image.id]
        if {image.id, *image.tags} & used_by_removed:
            why = "only removed jobs used it"
        elif (cutoff is not None and image.created < cutoff and image.final_tags
              and (all_images or any(_in(t, in_scope) for t in refs))):
            why = f"no job uses it; built {age_text(now - image.created)} ago"
        else:
            continue
        if take(image, refs, why):
            going.update(image.final_tags)
    environments = {t for i in images for t in i.tags}
    for image in images:
        stages = [t for t in image.stage_tags
                  if t.rsplit("-stage", 1)[0] in going
                  or (t.rsplit("-stage", 1)[0] not in environments and cutoff is not None and image.created < cutoff
                      and (all_images or _in(t, in_scope)))]
        if stages:
            take(image, stages, "builder stage of an environment that goes" if stages[0].rsplit("-stage", 1)[0]
                 in going else f"builder stage of no environment; built {age_text(now - image.created)} ago")
    removals.sort(key=lambda r: r.refs)
    image_bytes, exact = freed_bytes(engine.images, {r.image_id for r in removals if r.deleted}) if engine.sizes \
        else (-1, False)
    job_removals = tuple(sorted((_job_removal(r, owned_folder) for r in removed), key=lambda j: (j.notebook, j.ended)))
    notes = () if engine.reachable else ("no Docker engine answers: images were left alone",)
    return PrunePlan(retention=retention, jobs=job_removals, kept_jobs=len(kept), images=tuple(removals),
                     spared=tuple(sorted(spared, key=lambda s: s.ref)),
                     cache=cache_estimate(engine.cache, cutoff) if build_cache and cutoff is not None else None,
                     image_bytes=image_bytes, exact=exact, notes=notes, all_images=all_images,
                     build_cache=build_cache, protected=frozenset(protected), facts=engine.images)


def _in(tag: str, repos: Collection[str]) -> bool:
    found = _repo_hash(tag)
    return found is not None and found[0] in repos


def _spared_because(image: ImageFacts, refs: Sequence[str], protected: Collection[str], busy_hashes: set[str],
                    busy_repos: set[str], engine: EngineFacts, removed_ids: set[str]) -> str:
    if image.id in protected or any(t in protected for t in image.tags):
        return "protected"
    places = [_repo_hash(t) for t in refs]
    if any(p and (p[1] in busy_hashes or p[0] in busy_repos) for p in places):
        return "an unfinished job of its notebook may use it"
    for c in engine.containers:
        if c.image_id == image.id and (c.active or c.job_id not in removed_ids):
            return f"container {c.name} ({c.state}) uses it"
    return ""


def _job_removal(record: JobRecord, owned_folder: Callable[[JobRecord], bool]) -> JobRemoval:
    own = bool(record.output_dir) and owned_folder(record)
    return JobRemoval(id=record.id, notebook=record.notebook, status=record.status,
                      ended=record.finished or record.created, name=record.name, sweep_id=record.sweep_id,
                      folder=record.output_dir if own else "",
                      folder_kept=record.output_dir if record.output_dir and not own else "")


def cache_estimate(records: Iterable[CacheRecord], cutoff: float) -> CacheEstimate:
    """The BuildKit records a prune ``until`` the cutoff removes: unused since (or never used), cache mounts aside."""
    records = list(records)
    going = [r for r in records if r.type != CACHE_MOUNT_TYPE and not r.in_use
             and (r.last_used is None or r.last_used < cutoff)]
    return CacheEstimate(records=len(going), bytes=sum(r.size for r in going),
                         mounts_kept=sum(r.size for r in records if r.type == CACHE_MOUNT_TYPE))


# -- what a prune did -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PruneResult:
    """What a prune removed, what it could not, and the space it freed."""

    plan: PrunePlan
    jobs: tuple[str, ...] = ()  # ids of the jobs removed (record and own folder)
    images: tuple[ImageRemoval, ...] = ()  # the removals the engine carried out
    deleted: tuple[str, ...] = ()  # image ids the engine deleted
    failures: tuple[str, ...] = ()
    image_bytes: int = 0
    folder_bytes: int = 0
    cache_records: int = 0
    cache_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": list(self.jobs), "images": [i.to_dict() for i in self.images], "deleted": list(self.deleted),
                "failures": list(self.failures), "bytes": {"images": self.image_bytes, "folders": self.folder_bytes,
                                                           "build_cache": self.cache_bytes},
                "build_cache_records": self.cache_records, "exact": self.plan.exact}

    def text(self) -> str:
        out = []
        done = set(self.jobs)
        jobs = [j for j in self.plan.jobs if j.id in done]
        out += _job_lines(jobs, "removed", self.plan.kept_jobs)
        out += _image_lines(self.images, "removed")
        if self.cache_records or self.plan.cache is not None:
            out.append(f"removed {_plural(self.cache_records, 'build cache entry')} ({human_bytes(self.cache_bytes)})")
        out += [f"could not remove: {f}" for f in self.failures]
        if not (jobs or self.images or self.cache_records or self.failures):
            out.append("nothing to remove")
        about = "" if self.plan.exact else "at least "
        total = max(0, self.image_bytes) + self.folder_bytes + self.cache_bytes
        out.append(f"freed {about}{human_bytes(total)}: images {about}{human_bytes(self.image_bytes)}, "
                   f"folders {human_bytes(self.folder_bytes)}, build cache {human_bytes(self.cache_bytes)}")
        return "\n".join(out)


# -- du ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnvironmentUsage:
    """One image of this tool: its sizes and the jobs of the store that use it."""

    ref: str
    image_id: str
    notebook: str
    created: float
    size: int
    unique: int
    jobs: int
    stage: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NotebookUsage:
    """One notebook: its jobs, their output folders, its images and what deleting all of them would free."""

    notebook: str  # the path of a notebook of the store, else (in_store False) an image repository no job uses
    jobs: int
    outputs: int
    images: int
    image_bytes: int  # freed if every image of it went
    in_store: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DiskUsage:
    """``du``: space per notebook and per environment, and the engine's build cache."""

    notebooks: tuple[NotebookUsage, ...]
    environments: tuple[EnvironmentUsage, ...]
    image_bytes: int  # freed if every image of this tool went
    output_bytes: int
    cache_bytes: int
    cache_mount_bytes: int
    exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"notebooks": [n.to_dict() for n in self.notebooks],
                "environments": [e.to_dict() for e in self.environments],
                "totals": {"images": self.image_bytes, "outputs": self.output_bytes,
                           "build_cache": self.cache_bytes, "cache_mounts": self.cache_mount_bytes},
                "exact": self.exact}

    def text(self) -> str:
        names = [_short(n.notebook) if n.in_store else f"{n.notebook} (no job)" for n in self.notebooks]
        width = max([len(name) for name in names] + [8])
        out = [f"{'NOTEBOOK':{width}}  {'JOBS':>4}  {'OUTPUTS':>9}  {'IMAGES':>6}  {'IMAGE SPACE':>11}"]
        for name, n in zip(names, self.notebooks, strict=True):
            out.append(f"{name:{width}}  {n.jobs if n.in_store else '-':>4}  "
                       f"{human_bytes(n.outputs) if n.in_store else '-':>9}  {n.images:>6}  "
                       f"{human_bytes(n.image_bytes):>11}")
        refw = max([len(e.ref) for e in self.environments] + [11])
        out += ["", f"{'ENVIRONMENT':{refw}}  {'CREATED':16}  {'SIZE':>9}  {'UNIQUE':>9}  {'JOBS':>4}"]
        for e in self.environments:
            out.append(f"{e.ref:{refw}}  {_when(e.created):16}  {human_bytes(e.size):>9}  {human_bytes(e.unique):>9}  "
                       f"{e.jobs:>4}" + ("  (builder stage)" if e.stage else ""))
        about = "" if self.exact else "at least "
        out += ["",
                f"images of this tool: {_plural(len(self.environments), 'image')}, {about}"
                f"{human_bytes(self.image_bytes)} freed if all went (IMAGE SPACE: freed if that notebook's went; "
                "UNIQUE: in no other image)",
                f"output folders: {human_bytes(self.output_bytes)}",
                f"build cache (the engine's, every build's): {human_bytes(self.cache_bytes)}, of which uv's download "
                f"cache {human_bytes(self.cache_mount_bytes)}",
                "free space with: jupyter containerize prune --keep-last N | --older-than AGE [--build-cache] --dry-run"]
        return "\n".join(out)


def _short(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home):] if path.startswith(home + "/") else path


def usage(jobs: Sequence[JobRecord], engine: EngineFacts, output_sizes: Mapping[str, int],
          repos: Mapping[str, str]) -> DiskUsage:
    """Space per notebook (store notebooks first, then image repositories no job uses) and per environment.

    ``output_sizes``: the bytes of each output folder (by path); ``repos``: each store notebook's repository.
    """
    images = [i for i in engine.images if i.top_level and i.ours]
    users: dict[str, set[str]] = defaultdict(set)  # image id -> job ids
    ids_by_ref = {ref: i.id for i in images for ref in (i.id, *i.tags)}
    for r in jobs:
        for ref in (r.image_id, r.image_tag):
            if ref in ids_by_ref:
                users[ids_by_ref[ref]].add(r.id)
    envs = []
    for i in images:
        ref = (i.final_tags or i.stage_tags or (i.id[:19],))[0]
        found = _repo_hash(ref)
        envs.append(EnvironmentUsage(ref=ref, image_id=i.id, notebook=i.notebook or (found[0] if found else ""),
                                     created=i.created, size=i.size, unique=i.unique_size, jobs=len(users[i.id]),
                                     stage=bool(i.stage_tags and not i.final_tags)))
    envs.sort(key=lambda e: (e.ref.rsplit(":", 1)[0], -e.created))
    job_ids_by_nb: dict[str, set[str]] = defaultdict(set)
    for r in jobs:
        job_ids_by_nb[r.notebook].add(r.id)
    rows = []
    exact = engine.sizes
    placed: set[str] = set()
    for notebook in sorted(job_ids_by_nb):
        mine = {iid for iid, who in users.items() if who & job_ids_by_nb[notebook]}
        placed |= mine
        folders = {r.output_dir for r in jobs if r.notebook == notebook and r.output_dir}
        freed, ok = freed_bytes(engine.images, mine) if engine.sizes else (-1, False)
        exact = exact and ok
        rows.append(NotebookUsage(notebook=notebook, jobs=len(job_ids_by_nb[notebook]),
                                  outputs=sum(output_sizes.get(f, 0) for f in folders), images=len(mine),
                                  image_bytes=freed))
    by_repo: dict[str, set[str]] = defaultdict(set)
    for i in images:
        if i.id not in placed:
            found = _repo_hash((i.final_tags or i.stage_tags or ("",))[0])
            by_repo[found[0] if found else "(untagged)"].add(i.id)
    for repo in sorted(by_repo):
        freed, ok = freed_bytes(engine.images, by_repo[repo]) if engine.sizes else (-1, False)
        exact = exact and ok
        rows.append(NotebookUsage(notebook=repo, jobs=0, outputs=0, images=len(by_repo[repo]),
                                  image_bytes=freed, in_store=False))
    total, ok = freed_bytes(engine.images, {i.id for i in images}) if engine.sizes else (-1, False)
    folders = {r.output_dir for r in jobs if r.output_dir}
    return DiskUsage(notebooks=tuple(rows), environments=tuple(envs), image_bytes=total,
                     output_bytes=sum(output_sizes.get(f, 0) for f in folders),
                     cache_bytes=sum(r.size for r in engine.cache),
                     cache_mount_bytes=sum(r.size for r in engine.cache if r.type == CACHE_MOUNT_TYPE),
                     exact=exact and ok)

