"""Which Debian release an offline base image is built from: the one whose C library runs the copied Python."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from jupyter_containerize.backends.baseimage import RELEASES, HostPython, find_cpython, official_tag, release_for
from jupyter_containerize.errors import EngineError


def _python(glibc: tuple[int, int] | None) -> HostPython:
    return HostPython("3.13.5", Path("/usr"), glibc)


@pytest.mark.parametrize(("glibc", "suite"), [
    ((2, 31), "bookworm"),   # an older build (e.g. manylinux-style CPython) runs on the oldest release
    ((2, 36), "bookworm"),   # Debian 12's own python3
    ((2, 37), "trixie"),
    ((2, 41), "trixie"),     # Debian 13's own python3
    (None, "bookworm"),      # not a glibc build (static): any root runs it
])
def test_the_oldest_release_whose_glibc_runs_the_interpreter(glibc: tuple[int, int] | None, suite: str) -> None:
    assert release_for(_python(glibc)).suite == suite


def test_an_interpreter_newer_than_every_release_is_refused_with_what_to_do() -> None:
    with pytest.raises(EngineError) as info:
        release_for(_python((2, 99)))
    assert "needs glibc 2.99, newer than Debian trixie's 2.41" in str(info.value)
    assert "--python" in info.value.hint


def test_this_interpreter_is_described_as_it_runs() -> None:
    found = find_cpython(sys.executable)
    assert found.version == platform.python_version()
    libc, version = platform.libc_ver()
    if libc == "glibc":
        assert found.glibc == tuple(int(p) for p in version.split(".")[:2])
        assert release_for(found).glibc >= found.glibc
    assert found.prefix == Path(sys.base_prefix)


def test_releases_are_oldest_first_and_name_their_own_runtime_packages() -> None:
    assert [r.glibc for r in RELEASES] == sorted(r.glibc for r in RELEASES)
    bookworm, trixie = RELEASES
    assert "libssl3" in bookworm.runtime_packages and "libssl3t64" in trixie.runtime_packages
    assert bookworm.rootfs_image != trixie.rootfs_image
    assert official_tag(platform.python_version()) == f"python:{platform.python_version()}-slim-bookworm"
