"""Platform-only distributions: what a macOS/Windows kernel has that a Linux image can't.

One rule, two sources: the kernel's own metadata (a distribution that is installed only because
a requirement's marker holds on the kernel's platform and not on the image's) and, for
distributions imported directly, which name no marker, a short table of well-known ones.
Requirements that hold only on the image's platform are the other half: see :mod:`.resolve`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .distributions import Environment, marker_holds
from .probe import normalize

_ONLY_ON = {
    "appnope": "macOS", "pyobjc": "macOS", "pyobjc-core": "macOS", "pyobjc-framework-": "macOS",
    "pywin32": "Windows", "pywin32-ctypes": "Windows", "pypiwin32": "Windows",
    "pywinpty": "Windows", "wmi": "Windows", "comtypes": "Windows", "winshell": "Windows",
    "windows-curses": "Windows", "pyreadline3": "Windows", "pyreadline": "Windows", "wincertstore": "Windows",
    "winkerberos": "Windows", "pywinauto": "Windows", "win32-setctime": "Windows",
}


def platform_only(name: str) -> str | None:
    """The OS a distribution is only for (``"macOS"``, ``"Windows"``), or ``None``."""
    key = normalize(name)
    for prefix, system in _ONLY_ON.items():
        if key == prefix or (prefix.endswith("-") and key.startswith(prefix)):
            return system
    return None


def kernel_platform_only(
    env: Environment, kernel_env: Mapping[str, str], target_env: Mapping[str, str]
) -> set[str]:
    """Keys of installed distributions that the kernel has only for its own platform.

    Some installed distribution requires each of them under a marker that holds for ``kernel_env``
    and not for ``target_env`` (``macdep; sys_platform == "darwin"``), and none requires it under a
    marker that holds for the target.
    """
    kernel_side: set[str] = set()
    target_side: set[str] = set()
    for key in env.dists:
        for dep, _extras, marker, _line in env.requirements(key):
            if dep not in env.dists:
                continue
            if marker_holds(marker, target_env):
                target_side.add(dep)
            elif marker_holds(marker, kernel_env):
                kernel_side.add(dep)
    return kernel_side - target_side


def drop_platform_only(
    names: Iterable[str], platform_target: str, kernel_only: Collection[str] = (), kernel_platform: str = ""
) -> tuple[list[str], list[str]]:
    """Split ``names`` into those that fit a Linux ``platform_target`` and warnings for the others.

    Args:
        names: distribution names (the roots of the closure).
        platform_target: the image's platform.
        kernel_only: keys the kernel has only for its own platform (:func:`kernel_platform_only`).
        kernel_platform: the kernel's platform, for the warning (``darwin/arm64``).
    """
    kept: list[str] = []
    warnings: list[str] = []
    for name in names:
        system = platform_only(name) if platform_target.startswith("linux") else None
        if system is not None:
            warnings.append(f"{name} is only for {system} and was left out of the {platform_target} image.")
        elif normalize(name) in kernel_only:
            warnings.append(f"{name} is required only on the kernel's platform ({kernel_platform or 'another'}) "
                            f"and was left out of the {platform_target} image.")
        else:
            kept.append(name)
    return kept, warnings


def foreign_platform_warning(probe: Mapping[str, Any], platform_target: str) -> str | None:
    """A warning when the captured interpreter runs on another OS or CPU than the image."""
    system, machine = probe.get("platform", ""), str(probe.get("machine", "")).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    target_os, _, target_arch = platform_target.partition("/")
    if system == target_os and arch == target_arch.split("/")[0]:
        return None
    return (f"The kernel runs on {system}/{arch} but the image is {platform_target}: compiled packages are "
            "installed as the image platform's wheels, and platform-only packages are left out.")
