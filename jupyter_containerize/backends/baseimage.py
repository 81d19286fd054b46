"""Offline base images: ``python:X.Y.Z-slim-bookworm`` built from Debian's packages.

When no registry can be reached (air-gapped sites, this project's CI), the base
image that generated Dockerfiles name is built locally instead: a Debian
bookworm root made with debootstrap, the runtime libraries CPython needs from
apt, and a copy of a CPython X.Y.Z build found on the host (its stdlib only, no
site-packages). The result is tagged exactly like the official image, so the
rendered Dockerfile stays the same online and offline.
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
from pathlib import Path

import docker
import docker.errors

from ..errors import BuildError, EngineError
from ..events import BuildLog, Event
from .buildlog import BuildStreamParser

DEBIAN_SUITE = "bookworm"
ROOTFS_IMAGE = f"jupyter-containerize/debian-minbase:{DEBIAN_SUITE}"
# What python:X.Y-slim-bookworm carries besides libc: CPython's runtime libraries.
RUNTIME_PACKAGES = (
    "ca-certificates", "netbase", "tzdata", "libssl3", "libffi8", "libsqlite3-0", "libbz2-1.0",
    "liblzma5", "libexpat1", "libuuid1", "libncursesw6", "libreadline8", "zlib1g", "libgdbm6",
    "libdb5.3",
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
        # The engine's own explanation, not the SDK's 'NNN Server Error for http+docker://…' wrapper.
        text = str(getattr(e, "explanation", None) or e).strip()
        pull_error = text.splitlines()[-1] if text else type(e).__name__
    m = re.match(r"^python:(\d+\.\d+\.\d+)-slim-" + DEBIAN_SUITE + "$", image)
    if not m:
        raise BuildError(
            f"The base image {image} is not on this engine and could not be pulled ({pull_error[:200]})",
            "Pull or load it first (docker pull / docker load), or choose another --base-image.",
        )
    sink(BuildLog(line=f"{image} could not be pulled; building it offline from Debian's packages."))
    return build_base_image(client, m.group(1), tag=image, on_event=sink)


def find_cpython(version_or_path: str | None) -> tuple[str, Path]:
    """(X.Y.Z, installation prefix) of a CPython build on this host."""
    if version_or_path and not _VERSION.match(version_or_path):
        exe = shutil.which(version_or_path) or version_or_path
        try:
            out = subprocess.run(
                [exe, "-c", "import sys, platform, json; print(json.dumps([platform.python_version(), sys.base_prefix]))"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            raise EngineError(f"The interpreter {version_or_path} could not be run",
                              "Give a working python executable or a version like 3.11.7.") from None
        version, prefix = json.loads(out)
        return str(version), Path(prefix)
    version = version_or_path or ".".join(map(str, sys.version_info[:3]))
    candidates: list[Path] = []
    if version == ".".join(map(str, sys.version_info[:3])):
        candidates.append(Path(sys.base_prefix))
    candidates += [Path.home() / ".pyenv" / "versions" / version, Path("/root/.pyenv/versions") / version,
                   Path("/usr/local"), Path(f"/opt/python/{version}"), Path("/usr")]  # /usr: Debian's own
    short = ".".join(version.split(".")[:2])
    for prefix in candidates:
        python = prefix / "bin" / f"python{short}"
        if python.exists() and _exact_version(python) == version:
            return version, prefix
    raise EngineError(
        f"No CPython {version} build was found on this host to make an offline base image",
        f"Install Python {version} (e.g. pyenv install {version}) or pass --python with an interpreter's path.",
    )


def _exact_version(exe: Path) -> str:
    try:
        return subprocess.run([str(exe), "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


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


def ensure_rootfs_image(client: docker.DockerClient, sink: EventSink) -> str:
    """Import a debootstrap'ed Debian minbase root as ROOTFS_IMAGE (once)."""
    if image_exists(client, ROOTFS_IMAGE):
        return ROOTFS_IMAGE
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if debootstrap is None:
        raise EngineError("debootstrap is needed to build a base image offline",
                          "Install it (apt-get install debootstrap) or pull the base image from a registry.")
    if os.geteuid() != 0:
        raise EngineError("Building an offline base image needs root (debootstrap)",
                          "Run `jupyter containerize base-image` as root once, or pull the base image.")
    with tempfile.TemporaryDirectory(prefix="jc-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        sink(BuildLog(line=f"debootstrap --variant=minbase {DEBIAN_SUITE} …"))
        proc = subprocess.run([debootstrap, "--variant=minbase", DEBIAN_SUITE, str(root), debian_mirror()],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
            raise BuildError("debootstrap failed while making the offline base image",
                             "Check that Debian's mirror is reachable.", step="debootstrap", log_tail=tuple(tail))
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], check=True)
        repo, tag = ROOTFS_IMAGE.rsplit(":", 1)
        client.api.import_image(src=str(tarball), repository=repo, tag=tag)
    return ROOTFS_IMAGE


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
LABEL org.jupyter-containerize.role="offline-base" org.jupyter-containerize.python="{version}"
CMD ["python3"]
"""


def build_base_image(client: docker.DockerClient, version_or_path: str | None = None, tag: str | None = None,
                     force: bool = False, on_event: EventSink | None = None) -> str:
    """Build ``python:X.Y.Z-slim-bookworm`` (or ``tag``) from Debian packages and a host CPython."""
    sink = on_event or (lambda e: None)
    version, prefix = find_cpython(version_or_path)
    tag = tag or official_tag(version)
    if not force and image_exists(client, tag):
        sink(BuildLog(line=f"{tag} already exists."))
        return tag
    rootfs = ensure_rootfs_image(client, sink)
    short = ".".join(version.split(".")[:2])
    with tempfile.TemporaryDirectory(prefix="jc-base-") as tmp:
        ctx = Path(tmp)
        _copy_cpython(prefix, ctx / "python", short)
        _fetch_pip_wheel(ctx / "wheels")
        (ctx / "Dockerfile").write_text(_BASE_DOCKERFILE.format(
            rootfs=rootfs, packages=" ".join(RUNTIME_PACKAGES), short=short, version=version))
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
    if (prefix / "include").exists():
        shutil.copytree(prefix / "include", dest / "include", symlinks=True)
