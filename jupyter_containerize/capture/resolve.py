"""The image's platform as uv sees it: requirements the kernel lacks resolved for it, pins checked against it.

The lock is installed with ``--no-deps``, so whatever the image needs and the kernel does not
have (another OS's dependencies, a broken venv) must be pinned here. uv resolves it with
``--python-platform``/``--python-version`` of the image, the kernel's index settings
(:class:`~.pipconfig.HostIndex`) and every version the kernel has as a constraint.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import CaptureError, listing
from .distributions import find_uv
from .pipconfig import HostIndex, split_credentials
from .probe import normalize
from .snapshot import PinnedDistribution

# glibc 2.28 or newer: the python:*-slim-bookworm bases (2.36) and the CUDA runtime bases
UV_PLATFORMS = {
    "linux/amd64": "x86_64-manylinux_2_28",
    "linux/arm64": "aarch64-manylinux_2_28",
    "linux/arm64/v8": "aarch64-manylinux_2_28",
}
_TIMEOUT_S = 900
# the host's uv settings that don't choose packages; the rest (indexes, constraints…) come from the kernel
_HOST_UV_ENV = frozenset({"UV_CACHE_DIR", "UV_HTTP_TIMEOUT", "UV_NATIVE_TLS", "UV_OFFLINE", "UV_CONCURRENT_DOWNLOADS"})
_PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*(?:#\s*via\s+(.*))?$")


def uv_platform(platform_target: str) -> str | None:
    """uv's ``--python-platform`` for an image platform (``linux/amd64`` → ``x86_64-manylinux_2_28``)."""
    return UV_PLATFORMS.get(platform_target)


def resolve_for_target(
    missing: Mapping[str, Sequence[str]],
    kernel_versions: Mapping[str, str],
    *,
    pinned: Collection[str],
    python_version: str,
    platform_target: str,
    index: HostIndex,
    kernel: str = "the kernel",
) -> list[PinnedDistribution]:
    """Pins of what ``missing`` needs on the image's platform, beyond ``pinned``.

    Args:
        missing: requirement lines the image needs and the kernel lacks (markers already evaluated
            for the target), each with the names of the distributions that need it.
        kernel_versions: ``{name: version}`` of everything the kernel has, given to uv as
            constraints, so no pin moves and what the kernel has is taken at its version.
        pinned: keys (normalized names) already in the lock; they are not pinned again.
        python_version: the kernel's exact ``X.Y.Z``.
        platform_target: the image's platform (a key of :data:`UV_PLATFORMS`).
        index: the kernel's index settings.
        kernel: the kernel's interpreter, for the error message.

    Returns:
        The new pins, sorted by name, each with its ``reason`` (``needed by requests; resolved for
        linux/amd64, not installed in the kernel``).

    Raises:
        CaptureError: uv cannot resolve them (not on the index, conflicting pins, no uv).
    """
    from packaging.requirements import InvalidRequirement, Requirement

    inputs: list[str] = []
    needed_by: dict[str, set[str]] = {}
    for line, users in missing.items():
        try:
            req = Requirement(line)
        except InvalidRequirement:  # packaging rejects it but uv may read it; the name alone, else
            req = Requirement(re.split(r"[^A-Za-z0-9._-]", line.strip(), maxsplit=1)[0])
        req.marker = None  # it holds on the target: decided by the closure, where extras are known
        inputs.append(str(req))
        needed_by.setdefault(normalize(req.name), set()).update(users)
    names = sorted(needed_by)
    constraints = [f"{name}=={version}" for name, version in sorted(kernel_versions.items()) if _valid(version)]
    proc = _compile(sorted(set(inputs)), constraints, python_version=python_version,
                    platform_target=platform_target, index=index)
    if proc.returncode != 0:
        them = "it" if len(names) == 1 else "them"
        requirers = sorted(set().union(*needed_by.values()))
        raise CaptureError(
            f"Required on {platform_target} by {listing(requirers)} but not installed in {kernel}, and uv cannot "
            f"resolve {listing(names)} for {platform_target} from the kernel's package index",
            f"Install {them} in the kernel (pip install {' '.join(names)}), or check its index settings "
            "(pip config list)",
        )
    installed = {normalize(n) for n in kernel_versions}
    pins = []
    for raw in proc.stdout.splitlines():
        m = _PIN_LINE.match(raw.strip())
        if m is None or normalize(m.group(1)) in pinned:
            continue
        name, version, via = m.group(1), m.group(2), m.group(3) or ""
        key = normalize(name)
        via_names = {v.strip() for v in via.split(",") if v.strip() and " " not in v.strip()}
        requirers = sorted(needed_by.get(key, set()) | via_names)
        how = "at the kernel's version" if key in installed else "not installed in the kernel"
        why = f"needed by {listing(requirers)}; " if requirers else ""
        pins.append(PinnedDistribution(name, version, f"{name}=={version}",
                                       reason=f"{why}resolved for {platform_target}, {how}"))
    return sorted(pins, key=lambda p: normalize(p.name))


def unavailable_on_target(
    pins: Iterable[PinnedDistribution], *, python_version: str, platform_target: str, index: HostIndex
) -> list[str]:
    """``name==version`` of each index pin with neither a wheel for the image's platform nor an sdist.

    One uv resolution of the whole set (``--no-deps``); uv stops at the first pin it cannot place,
    so a pin it names is set aside and the rest resolved again (once per such pin, not per pin).

    Raises:
        CaptureError: uv failed without naming a pin (the index can't be reached, no uv).
    """
    todo = {normalize(p.name): f"{p.name}=={p.version}" for p in pins if p.source == "index"}
    absent: list[str] = []
    while todo:
        proc = _compile(sorted(todo.values()), [], python_version=python_version,
                        platform_target=platform_target, index=index, no_deps=True)
        if proc.returncode == 0:
            break
        text = proc.stderr.lower()
        named = [key for key, line in todo.items() if f"{key}=={line.partition('==')[2]}".lower() in text]
        if not named:
            raise CaptureError(f"uv cannot check the pins against {platform_target}: {_cause(proc.stderr, index)}")
        for key in named:
            absent.append(todo.pop(key))
    return sorted(absent, key=str.lower)


def _compile(
    inputs: Sequence[str], constraints: Sequence[str], *, python_version: str, platform_target: str,
    index: HostIndex, no_deps: bool = False,
) -> subprocess.CompletedProcess[str]:
    uv = find_uv()
    if uv is None:
        raise CaptureError(f"Resolving for {platform_target} needs uv, which is not installed here.",
                           "Install it (pip install uv) where jupyter-containerize runs.")
    platform = uv_platform(platform_target)
    if platform is None:
        raise CaptureError(f"uv cannot resolve packages for {platform_target}.",
                           f"Use one of {', '.join(UV_PLATFORMS)}, or install what the image needs in the kernel.")
    with tempfile.TemporaryDirectory(prefix="jc-resolve-") as tmp:
        requirements, pins = Path(tmp) / "requirements.in", Path(tmp) / "constraints.txt"
        requirements.write_text("".join(f"{line}\n" for line in inputs), encoding="utf-8")
        pins.write_text("".join(f"{line}\n" for line in constraints), encoding="utf-8")
        cmd = [uv, "--no-config", "pip", "compile", "--quiet", "--no-header", "--annotation-style", "line",
               "--no-python-downloads", "--python-platform", platform, "--python-version", python_version,
               "-c", str(pins), str(requirements)]
        if no_deps:
            cmd.append("--no-deps")
        if index.no_index:
            cmd.append("--no-index")
        for link in index.find_links:
            cmd += ["--find-links", link]
        try:
            return subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp,
                                  env=_uv_environment(index), timeout=_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CaptureError(f"uv could not resolve for {platform_target}: {exc}.") from None


def _uv_environment(index: HostIndex) -> dict[str, str]:
    """The environment of the uv run: index URLs (credentials included) go here, never on a command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k in _HOST_UV_ENV}
    settings = {
        "UV_INDEX_URL": index.index_url or "",
        "UV_EXTRA_INDEX_URL": " ".join(index.extra_index_urls),
        "UV_INSECURE_HOST": " ".join(index.trusted_hosts),
        "SSL_CERT_FILE": str(index.cert_file or ""),
        "NETRC": index.netrc or "",
    }
    env.update({k: v for k, v in settings.items() if v})
    return env


def _cause(stderr: str, index: HostIndex) -> str:
    """uv's reason, in one line (its last ``cause:`` line, else its last line), no credentials in it."""
    for url in (index.index_url, *index.extra_index_urls):
        if url:
            stderr = stderr.replace(url, split_credentials(url)[0])
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    causes = [ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")]
    return (causes[-1] if causes else lines[-1] if lines else "no output").rstrip(".") + "."


def _valid(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True
