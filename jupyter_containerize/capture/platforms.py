"""Platform-only distributions: what a macOS/Windows kernel has that a Linux image can't."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def drop_platform_only(names: Iterable[str], platform_target: str) -> tuple[list[str], list[str]]:
    """Split ``names`` into those that fit a Linux ``platform_target`` and warnings for the others."""
    kept: list[str] = []
    warnings: list[str] = []
    for name in names:
        system = platform_only(name) if platform_target.startswith("linux") else None
        if system is None:
            kept.append(name)
        else:
            warnings.append(f"{name} is only for {system} and was left out of the {platform_target} image.")
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
