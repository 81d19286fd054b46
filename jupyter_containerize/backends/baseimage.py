"""Offline base images: ``python:X.Y.Z-slim-bookworm`` built from Debian's packages.

When no registry can be reached (air-gapped sites, this project's CI), the base
image that generated Dockerfiles name is built locally instead: a Debian root made
with debootstrap, the runtime libraries CPython needs from apt, and a copy of a
CPython X.Y.Z build found on the host (its stdlib only, no site-packages). The
result is tagged exactly like the official image, so the rendered Dockerfile stays
the same online and offline.

The copied interpreter runs only on a C library at least as new as the one it was
built against, so the root is the oldest Debian release whose glibc is new enough:
bookworm for the interpreters of Debian 12 and most builds, trixie for Debian 13's
own python3 (glibc 2.41). The image's label ``org.jupyter-containerize.debian``
says which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from ..errors import BuildError, EngineError
from ..events import BuildLog, Event, StatusChanged
from .buildlog import BuildStreamParser
from .engine import engine_says

DEBIAN_SUITE = "bookworm"  # the release official_tag() names


@dataclass(frozen=True)
class DebianRelease:
    suite: str
    glibc: tuple[int, int]
    # What python:X.Y-slim carries besides libc: CPython's runtime libraries, by this release's names.
    runtime_packages: tuple[str, ...]

    @property
    def rootfs_image(self) -> str:
        return f"jupyter-containerize/debian-minbase:{self.suite}"


_COMMON = ("ca-certificates", "netbase", "tzdata", "libffi8", "libsqlite3-0", "libbz2-1.0", "liblzma5", "libexpat1",
           "libuuid1", "libncursesw6", "zlib1g")
# Oldest first: an interpreter gets the first release whose glibc is at least the one it needs.
RELEASES = (
    DebianRelease("bookworm", (2, 36), _COMMON + ("libssl3", "libreadline8", "libgdbm6", "libdb5.3")),
    DebianRelease("trixie", (2, 41), _COMMON + ("libssl3t64", "libreadline8t64", "libgdbm6t64", "libdb5.3t64")),
)
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
EventSink = Callable[[Event], None]


def official_tag(python_version: str) -> str:
    """The tag of the official slim image for this Python (what Dockerfiles name)."""
    return f"python:{python_version}-slim-{DEBIAN_SUITE}"


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(client: docker.DockerClient, image: str, on_event: EventSink | None = None) -> str:
    """Make sure ``image`` exists locally: present, pulled, or (for python:X.Y.Z-slim-bookworm) built offline."""
    sink = on_event or (lambda e: None)
    if image_exists(client, image):
        return image
    try:
        sink(BuildLog(line=f"Pulling {image} …"))
        client.images.pull(image)
        return image
    except docker.errors.DockerException as e:
        pull_error = engine_says(e)
    m = re.match(r"^python:(\d+\.\d+\.\d+)-slim-" + DEBIAN_SUITE + "$", image)
    if not m:
        raise BuildError(
            f"The base image {image} is not on this engine and could not be pulled ({pull_error[:200]})",
            "Pull or load it first (docker pull / docker load), or choose another --base-image.",
        )
    sink(BuildLog(line=f"{image} could not be pulled ({pull_error[:200]})."))
    return build_base_image(client, m.group(1), tag=image, on_event=sink)


@dataclass(frozen=True)
class HostPython:
    """A CPython build on this host that an offline base image can carry."""
    version: str
    prefix: Path
    glibc: tuple[int, int] | None  # the C library it runs on (None: not a glibc build)


_DESCRIBE = ("import sys, platform, json; "
             "print(json.dumps([platform.python_version(), sys.base_prefix, platform.libc_ver()]))")


def _describe(exe: str | Path) -> HostPython | None:
    try:
        out = subprocess.run([str(exe), "-c", _DESCRIBE], capture_output=True, text=True, timeout=60, check=True).stdout
        version, prefix, (libc, libc_version) = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    glibc = tuple(int(p) for p in libc_version.split(".")[:2]) if libc == "glibc" and libc_version else None
    return HostPython(str(version), Path(prefix), glibc)  # type: ignore[arg-type]


def find_cpython(version_or_path: str | None) -> HostPython:
    """A CPython build on this host: an interpreter's path, or an exact X.Y.Z looked for where builds live."""
    if version_or_path and not _VERSION.match(version_or_path):
        found = _describe(shutil.which(version_or_path) or version_or_path)
        if found is None:
            raise EngineError(f"The interpreter {version_or_path} could not be run",
                              "Give a working python executable or a version like 3.11.7.")
        return found
    version = version_or_path or ".".join(map(str, sys.version_info[:3]))
    candidates: list[Path] = []
    if version == ".".join(map(str, sys.version_info[:3])):
        candidates.append(Path(sys.base_prefix))
    candidates += [Path.home() / ".pyenv" / "versions" / version, Path("/root/.pyenv/versions") / version,
                   Path("/usr/local"), Path(f"/opt/python/{version}"), Path("/usr")]  # /usr: Debian's own
    short = ".".join(version.split(".")[:2])
    for prefix in candidates:
        python = prefix / "bin" / f"python{short}"
        if python.exists() and (found := _describe(python)) is not None and found.version == version:
            return found
    raise EngineError(
        f"No CPython {version} build was found on this host to make an offline base image",
        f"Install Python {version} (e.g. pyenv install {version}) or pass --python with an interpreter's path.",
    )


def release_for(python: HostPython) -> DebianRelease:
    """The oldest Debian release whose C library runs this interpreter."""
    needed = python.glibc or (0, 0)
    for release in RELEASES:
        if release.glibc >= needed:
            return release
    newest = RELEASES[-1]
    raise EngineError(
        f"Python {python.version} at {python.prefix} needs glibc {'.'.join(map(str, needed))}, newer than Debian "
        f"{newest.suite}'s {'.'.join(map(str, newest.glibc))}, so no offline base image can carry it",
        "Pull the base image from a registry, or pass --python with an interpreter built for Debian 12 or 13.",
    )


def debian_mirror() -> str:
    """The host's Debian mirror (deb822 or one-line sources), else deb.debian.org."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return "http://deb.debian.org/debian"


def ensure_rootfs_image(client: docker.DockerClient, release: DebianRelease, sink: EventSink) -> str:
    """Import a debootstrap'ed Debian minbase root of that release (once)."""
    if image_exists(client, release.rootfs_image):
        return release.rootfs_image
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if debootstrap is None:
        raise EngineError("debootstrap is needed to build a base image offline",
                          "Install it (apt-get install debootstrap) or pull the base image from a registry.")
    if os.geteuid() != 0:
        raise EngineError("Building an offline base image needs root (debootstrap)",
                          "Run `jupyter containerize base-image` as root once, or pull the base image.")
    with tempfile.TemporaryDirectory(prefix="jc-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        sink(BuildLog(line=f"debootstrap --variant=minbase {release.suite} …"))
        proc = subprocess.run([debootstrap, "--variant=minbase", release.suite, str(root), debian_mirror()],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
            raise BuildError("debootstrap failed while making the offline base image",
                             "Check that Debian's mirror is reachable.", step="debootstrap", log_tail=tuple(tail))
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], check=True)
        repo, tag = release.rootfs_image.rsplit(":", 1)
        client.api.import_image(src=str(tarball), repository=repo, tag=tag)
    return release.rootfs_image


_BASE_DOCKERFILE = """\
FROM {rootfs}
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \\
 && apt-get install -y --no-install-recommends {packages} \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY python/ /usr/local/
COPY wheels/ /tmp/jc-wheels/
RUN ldconfig \\
 && ln -sf python{short} /usr/local/bin/python3 && ln -sf python3 /usr/local/bin/python \\
 && python3 -c "import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, decimal, readline" \\
 && (python3 -m ensurepip --default-pip \\
     || {{ w=$(ls /tmp/jc-wheels/pip-*.whl) && python3 "$w/pip" install --no-index --no-cache-dir "$w"; }}) \\
 && python3 -m pip --version \\
 && python3 -m compileall -q /usr/local/lib/python{short} >/dev/null \\
 && rm -rf /root/.cache /tmp/jc-wheels
LABEL org.jupyter-containerize.role="offline-base" org.jupyter-containerize.python="{version}" \\
      org.jupyter-containerize.debian="{suite}"
CMD ["python3"]
"""


def build_base_image(client: docker.DockerClient, version_or_path: str | None = None, tag: str | None = None,
                     force: bool = False, on_event: EventSink | None = None) -> str:
    """Build ``python:X.Y.Z-slim-bookworm`` (or ``tag``) from Debian packages and a host CPython."""
    sink = on_event or (lambda e: None)
    python = find_cpython(version_or_path)
    tag = tag or official_tag(python.version)
    if not force and image_exists(client, tag):
        sink(BuildLog(line=f"{tag} already exists."))
        return tag
    release = release_for(python)
    sink(StatusChanged(status="building", detail=f"the offline base image {tag} from Debian {release.suite}'s "
                                                 f"packages and the Python {python.version} of {python.prefix} "
                                                 "(once, about a minute)"))
    rootfs = ensure_rootfs_image(client, release, sink)
    short = ".".join(python.version.split(".")[:2])
    with tempfile.TemporaryDirectory(prefix="jc-base-") as tmp:
        ctx = Path(tmp)
        _copy_cpython(python.prefix, ctx / "python", short)
        _fetch_pip_wheel(ctx / "wheels")
        (ctx / "Dockerfile").write_text(_BASE_DOCKERFILE.format(
            rootfs=rootfs, packages=" ".join(release.runtime_packages), short=short, version=python.version,
            suite=release.suite))
        parser = BuildStreamParser()
        for chunk in client.api.build(path=str(ctx), tag=tag, rm=True, forcerm=True, decode=True, pull=False):
            for event in parser.feed(chunk):
                sink(event)
        if parser.error:
            tail = "\n".join(parser.tail)
            raise BuildError(f"Building the offline base image failed at step {parser.step}: {parser.error}",
                             f"Last lines of the build:\n{tail}", step=parser.instruction, log_tail=tuple(parser.tail))
    return tag


def _fetch_pip_wheel(dest: Path) -> None:
    """A pip wheel for interpreters whose ensurepip is disabled (Debian's own python3)."""
    dest.mkdir()
    local = sorted(Path("/usr/share/python-wheels").glob("pip-*.whl"))
    if local:
        shutil.copy2(local[-1], dest / local[-1].name)
        return
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--dest", str(dest), "pip"], capture_output=True, check=False, timeout=300)


def _copy_cpython(prefix: Path, dest: Path, short: str) -> None:
    """Copy the interpreter, its shared library and its stdlib (no site-packages, tests or caches)."""
    (dest / "bin").mkdir(parents=True)
    for exe in (prefix / "bin").glob(f"python{short}*"):
        if exe.is_file() and not exe.name.endswith("-config"):
            shutil.copy2(exe, dest / "bin" / exe.name)
    lib = prefix / "lib"
    (dest / "lib").mkdir()
    for so in lib.glob("libpython*.so*"):
        shutil.copy2(so, dest / "lib" / so.name, follow_symlinks=False)
    # EXTERNALLY-MANAGED (PEP 668, Debian): the copy is the image's own Python, as in the official images.
    skip = {"site-packages", "test", "tests", "__pycache__", "idlelib", "tkinter", "turtledemo", "lib2to3",
            "EXTERNALLY-MANAGED"}
    shutil.copytree(
        lib / f"python{short}", dest / "lib" / f"python{short}", symlinks=True,
        ignore=lambda d, names: [n for n in names if n in skip or n.endswith((".a", ".pyc"))],
    )
    (dest / "lib" / f"python{short}" / "site-packages").mkdir()
    headers = prefix / "include" / f"python{short}"  # not all of /usr/include for Debian's own python3
    if headers.exists():
        shutil.copytree(headers, dest / "include" / headers.name, symlinks=True)
