"""Wheels the index does not have: found on this machine, fit for the image, carried in its context.

A kernel may hold a distribution that no package index serves: a local version
(``torch==2.13.0+cpu``), a wheel installed from a file, a find-links folder or a private build.
Its wheel is looked for where the kernel's pip took it from (``direct_url.json``'s ``file://``
wheel, the find-links folders of its pip configuration) and in pip's and uv's caches where a
wheel is kept as a file (pip's ``wheels/``, the wheels uv built in ``sdists-v*``; uv's unpacked
archives are not wheels). A wheel fits when its name and version are the installed ones and one
of its tags installs on the image: Linux on the target's CPU (:data:`.resolve.UV_PLATFORMS`),
manylinux up to the default base's glibc (:data:`IMAGE_GLIBC`) or ``linux_<cpu>``, with the
kernel's CPython ``X.Y`` (``cpXY``, ``abi3``, ``py3-none-any``…). Resolution for the image stays
at the older glibc that covers the CUDA bases too; a wheel the kernel already has cannot be
swapped for an older build, so it is matched against the base it will most likely meet.

A pin carried so becomes a ``local-wheel`` pin whose ``project_path`` is the wheel, exactly like
a local project: :func:`.distributions.build_local_wheel` copies it into the context's ``wheels/``.

Which pins are carried is decided cheaply: a local version label, a ``direct_url`` to a file, a
find-links hit when the kernel's pip has no index; a find-links hit of a plain version costs one
request to the index (:func:`.distributions.check_index_availability`). ``--wheels-from-kernel``
carries every pin and names, in one error, those without a wheel.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CaptureError, listing
from .distributions import Environment, _file_path, check_index_availability
from .pipconfig import host_index
from .probe import normalize
from .resolve import UV_PLATFORMS
from .snapshot import PinnedDistribution

IMAGE_GLIBC = (2, 36)  # python:X.Y.Z-slim-bookworm, the default base
_MANYLINUX = re.compile(r"^(\w+?)-manylinux_(\d+)_(\d+)$")
_LEGACY = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_LEGACY_ARCHES = {"manylinux2014": ("x86_64", "i686", "aarch64", "ppc64le", "s390x", "armv7l"),
                  "manylinux2010": ("x86_64", "i686"), "manylinux1": ("x86_64", "i686")}


@lru_cache(maxsize=16)
def target_tags(python_version: str, platform_target: str) -> frozenset[Any]:
    """Wheel tags that install on the image: its Linux CPU and the kernel's CPython ``X.Y``.

    Raises:
        CaptureError: the platform is not one wheels are matched for.
    """
    from packaging import tags

    uv_platform = UV_PLATFORMS.get(platform_target)
    m = _MANYLINUX.match(uv_platform or "")
    if m is None:
        raise CaptureError(f"Wheels are not matched for {platform_target}.",
                           f"Use one of {', '.join(UV_PLATFORMS)}.")
    arch, (major, newest) = m.group(1), IMAGE_GLIBC
    platforms = [f"manylinux_{major}_{minor}_{arch}" for minor in range(newest, -1, -1)]
    platforms += [f"{legacy}_{arch}" for legacy, (_, minor) in _LEGACY.items()
                  if minor <= newest and arch in _LEGACY_ARCHES[legacy]]
    platforms.append(f"linux_{arch}")
    xy = tuple(int(p) for p in python_version.split(".")[:2])
    interpreter = f"cp{xy[0]}{xy[1]}"
    found = set(tags.cpython_tags(xy, abis=[interpreter], platforms=platforms))
    found |= set(tags.compatible_tags(xy, interpreter=interpreter, platforms=platforms))
    return frozenset(found)


def wheel_fits(path: Path, name: str, version: str, fitting: frozenset[Any]) -> bool:
    """Whether ``path`` is a wheel of ``name`` ``version`` with a tag in ``fitting``."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        wheel_name, wheel_version, _build, wheel_tags = parse_wheel_filename(path.name)
        wanted = Version(version)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    return wheel_name == normalize(name) and wheel_version == wanted and not wheel_tags.isdisjoint(fitting)


def _wheels_in(folder: Path, recursive: bool) -> list[Path]:
    """Regular ``*.whl`` files in a folder (sorted), none if it cannot be read."""
    if not recursive:
        try:
            return sorted(p for p in folder.iterdir() if p.name.endswith(".whl") and p.is_file())
        except OSError:
            return []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(".whl")]
    return [p for p in found if p.is_file()]


@dataclass
class WheelFinder:
    """Wheel files of the kernel's find-links folders and caches, listed once each, on demand."""

    find_links: tuple[Path, ...]
    caches: tuple[Path, ...]  # folders searched recursively
    fitting: frozenset[Any]
    no_index: bool = False  # the kernel's pip has no index: a find-links hit is all it had
    _listed: dict[Path, dict[str, list[Path]]] = field(default_factory=dict, repr=False)

    def _index(self, folder: Path, recursive: bool) -> dict[str, list[Path]]:
        if folder not in self._listed:
            by_name: dict[str, list[Path]] = {}
            for wheel in ([folder] if folder.is_file() else _wheels_in(folder, recursive)):
                by_name.setdefault(normalize(wheel.name.split("-", 1)[0]), []).append(wheel)
            self._listed[folder] = by_name
        return self._listed[folder]

    def _first(self, folders: Iterable[Path], recursive: bool, name: str, version: str) -> Path | None:
        for folder in folders:
            for wheel in self._index(folder, recursive).get(normalize(name), ()):
                if wheel_fits(wheel, name, version, self.fitting):
                    return wheel
        return None

    def in_find_links(self, name: str, version: str) -> Path | None:
        """A fitting wheel in the kernel's find-links folders."""
        return self._first(self.find_links, False, name, version)

    def anywhere(self, name: str, version: str) -> Path | None:
        """A fitting wheel in the find-links folders, else in pip's and uv's caches."""
        return self.in_find_links(name, version) or self._first(self.caches, True, name, version)


def wheel_finder(probe: Mapping[str, Any], python_version: str, platform_target: str) -> WheelFinder:
    """The :class:`WheelFinder` of a probe: its pip configuration's local find-links and its caches."""
    index = host_index(probe.get("pip_config", {}))
    folders: list[Path] = []
    for link in index.find_links:
        path = _file_path(link) if "://" in link else Path(link).expanduser()
        if path is not None and path.exists():
            folders.append(path)
    caches: list[Path] = []
    raw = probe.get("caches") or {}
    if raw.get("pip"):
        caches.append(Path(raw["pip"]) / "wheels")
    if raw.get("uv"):
        uv_cache = Path(raw["uv"])
        with contextlib.suppress(OSError):  # only the wheels uv built; its archive-v* folders hold unpacked wheels
            caches += sorted(p for p in uv_cache.iterdir() if p.name.startswith("sdists-v") and p.is_dir())
    return WheelFinder(tuple(folders), tuple(p for p in caches if p.is_dir()),
                       target_tags(python_version, platform_target), no_index=index.no_index)


@dataclass(frozen=True)
class Carried:
    """What :func:`carry_wheels` did."""

    pins: tuple[PinnedDistribution, ...]
    carried: tuple[str, ...] = ()  # ``name==version`` of each pin that became a context wheel
    missing: tuple[str, ...] = ()  # every-mode: ``name==version`` without a wheel found
    warnings: tuple[str, ...] = ()


def carry_wheels(
    pins: Sequence[PinnedDistribution],
    env: Environment,
    finder: WheelFinder,
    *,
    every: bool = False,
    index_url: str | None = None,
    cert: Path | None = None,
) -> Carried:
    """Turn the pins the index does not have into context wheels, found as files on this machine.

    Args:
        pins: the snapshot's pins.
        env: the kernel's installed distributions (``direct_url.json`` of each).
        finder: where the kernel's wheels may lie.
        every: ``--wheels-from-kernel``: carry every pin that is not a context wheel yet.
        index_url: the image's package index (credentials allowed, never shown), asked about a
            find-links hit of a plain version; ``None``: such hits stay index pins.
        cert: CA bundle for that request.

    Returns:
        The pins, those carried as ``local-wheel`` pins whose ``project_path`` is the wheel found (copy
        them with :func:`.distributions.build_local_wheel`), and what was carried or is missing.
    """
    out: list[PinnedDistribution] = []
    carried: list[str] = []
    missing: list[str] = []
    warnings: list[str] = []
    ask: dict[int, Path] = {}  # position in out → find-links wheel whose version the index may have
    for pin in pins:
        label = f"{pin.name}=={pin.version}"
        dist = env.get(pin.name)
        direct = _installed_wheel(dist.direct_url if dist is not None else None)
        if pin.source == "local-wheel":
            project = pin.project_path or pin.wheel_path
            if (project is None or project.suffix != ".whl" or not finder.fitting  # no tags known: no judgement
                    or wheel_fits(project, pin.name, pin.version, finder.fitting)):
                out.append(pin)
                continue
            # installed from a wheel for another platform: another wheel of that version, else the index
            found = finder.anywhere(pin.name, pin.version)
            if found is None:
                if every:
                    missing.append(label)
                warnings.append(f"{pin.name} was installed from {project.name}, which does not install on the "
                                f"image; pinned as {label} from the package index.")
                out.append(replace(pin, requirement=label, source="index", project_path=None, wheel_path=None))
                continue
            out.append(_carry(pin, found))
            carried.append(label)
            continue
        found, hit = _kernel_wheel(pin, finder, every=every or direct is not None, ask_index=index_url is not None)
        if hit is not None:
            ask[len(out)] = hit
        if found is not None:
            out.append(_carry(pin, found))
            carried.append(label)
            continue
        if every:
            missing.append(label)
        out.append(pin)
    if ask and index_url is not None:
        carried += _carry_absent_from_index(out, ask, index_url, cert)
    if carried:
        why = "With --wheels-from-kernel" if every else "Not on the package index, so"
        warnings.append(f"{why} carried into the image as the kernel's wheels found on this machine: "
                        f"{', '.join(sorted(carried, key=str.lower))}.")
    return Carried(tuple(out), tuple(carried), tuple(missing), tuple(warnings))


def _kernel_wheel(pin: PinnedDistribution, finder: WheelFinder, *, every: bool,
                  ask_index: bool) -> tuple[Path | None, Path | None]:
    """The wheel file to carry for a pin that is not a context wheel (``None``: none), and a find-links
    wheel to carry only if the index lacks the version (``None``: nothing to ask).

    ``every``: carry it whatever its source (``--wheels-from-kernel``, or installed from a wheel file).
    ``ask_index``: the image's index can be asked; else a find-links hit is carried at once.
    """
    from packaging.version import InvalidVersion, Version

    try:
        local = Version(pin.version).local is not None
    except InvalidVersion:
        local = False
    if every or local:
        return finder.anywhere(pin.name, pin.version), None
    if pin.source == "index":
        hit = finder.in_find_links(pin.name, pin.version)
        if hit is not None and (finder.no_index or not ask_index):
            return hit, None
        return None, hit
    return None, None


def _carry_absent_from_index(out: list[PinnedDistribution], ask: Mapping[int, Path], index_url: str,
                             cert: Path | None) -> list[str]:
    """Carry ``ask[i]`` for each ``out[i]`` (replaced in place) whose version the index lacks; their labels."""
    asked = [out[i] for i in sorted(ask)]
    try:
        absent = set(check_index_availability(asked, index_url, cert=cert))
    except CaptureError:  # the index cannot say: the kernel's own wheel is the safe choice
        absent = {f"{p.name}=={p.version}" for p in asked}
    carried = []
    for i in sorted(ask):
        label = f"{out[i].name}=={out[i].version}"
        if label in absent:
            out[i] = _carry(out[i], ask[i])
            carried.append(label)
    return carried


def _installed_wheel(direct_url: Mapping[str, Any] | None) -> Path | None:
    """The ``.whl`` file a distribution was installed from, per its ``direct_url.json``."""
    if not direct_url or not isinstance(direct_url.get("url"), str) or "archive_info" not in direct_url:
        return None
    path = _file_path(direct_url["url"])
    return path if path is not None and path.suffix == ".whl" else None


def _carry(pin: PinnedDistribution, wheel: Path) -> PinnedDistribution:
    """A pending ``local-wheel`` pin of ``wheel`` (its requirement a placeholder until it is copied)."""
    return replace(pin, requirement=f"{pin.name}=={pin.version}", source="local-wheel", project_path=wheel,
                   wheel_path=None)


def missing_wheels_error(missing: Sequence[str], finder: WheelFinder) -> CaptureError:
    """The one-sentence error of ``--wheels-from-kernel`` when some pins have no wheel on this machine."""
    names = listing(missing)
    places = [str(p) for p in finder.find_links] or ["no find-links folder"]
    return CaptureError(
        f"--wheels-from-kernel builds without a package index, but no wheel for the image was found for {names} "
        f"(looked in {', '.join(places)}, pip's and uv's caches)",
        "Put those wheels in a find-links folder of the kernel's pip configuration (pip download "
        "--only-binary=:all: -d DIR …), or build without --wheels-from-kernel.",
    )
