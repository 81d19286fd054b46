"""Requirements the kernel lacks, resolved for the image's platform by real uv against a local index.

The kernel's pip configuration (``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``) points at a folder of small
wheels built here, so nothing comes from PyPI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.capture import capture, snapshot_from_probe
from jupyter_containerize.capture.interpreter import run_probe
from jupyter_containerize.capture.probe import normalize
from jupyter_containerize.errors import CaptureError
from jupyter_containerize.render.locks import requirements_lock
from tests.support.venvs import make_project, make_venv, site_packages, uv, write_nb

pytestmark = pytest.mark.slow

RESOLVED = "resolved for linux/amd64, not installed in the kernel"
KERNELS = {  # uv's platform → what the probe of a kernel on it says
    "aarch64-apple-darwin": {"platform": "darwin", "machine": "arm64", "sys_platform": "darwin",
                             "platform_system": "Darwin", "os_name": "posix", "platform_machine": "arm64"},
    "x86_64-pc-windows-msvc": {"platform": "win32", "machine": "AMD64", "sys_platform": "win32",
                               "platform_system": "Windows", "os_name": "nt", "platform_machine": "AMD64"},
}


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A find-links folder of small wheels, and a kernel venv missing some requirements (``--no-deps``).

    needsdep needs missingdep and shared; missingdep needs shared and extradep; extradep 0.2.0 needs
    shared>=0.2, which only an unconstrained resolution takes. brokenneeds needs nowhere-xyz, which
    the index lacks. platpkg needs linuxonly, macdep and windep, each behind its sys_platform marker.
    maconly has only a macOS wheel.
    """
    root = tmp_path_factory.mktemp("index")
    wheels = root / "wheels"
    projects = [
        make_project(root, "needsdep", ["missingdep", "shared"]),
        make_project(root, "missingdep", ["shared", "extradep"]),
        make_project(root, "shared", []),
        make_project(root, "shared", [], version="0.2.0"),
        make_project(root, "extradep", []),
        make_project(root, "extradep", ["shared>=0.2"], version="0.2.0"),
        make_project(root, "brokenneeds", ["nowhere-xyz>=1"]),
        make_project(root, "platpkg", ['linuxonly; sys_platform == "linux"', 'macdep; sys_platform == "darwin"',
                                   'windep; sys_platform == "win32"']),
        *(make_project(root, name, []) for name in ("linuxonly", "macdep", "windep", "maconly")),
    ]
    for project in projects:
        uv("build", "-q", "--wheel", "--out-dir", str(wheels), str(project))
    pure = next(wheels.glob("maconly-0.1.0-*.whl"))
    pure.rename(wheels / "maconly-0.1.0-py3-none-macosx_11_0_arm64.whl")
    python = make_venv(root / "kernel")
    uv("pip", "install", "-q", "--python", str(python), "--no-index", "--find-links", str(wheels), "--no-deps",
       "needsdep", "shared==0.1.0", "brokenneeds")
    return {"wheels": wheels, "python": python, "root": root}


@pytest.fixture
def local_index(index: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The kernel's pip configuration: the local folder only."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index["wheels"]))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    return index


def foreign_kernel(index: dict[str, Path], uv_platform: str) -> dict[str, Any]:
    """The probe of a real venv holding what uv installs for ``uv_platform``, its markers those of that OS."""
    python = index["root"] / uv_platform / "bin" / "python"
    if not python.exists():
        python = make_venv(index["root"] / uv_platform)
        uv("pip", "install", "-q", "--python", str(python), "--python-platform", uv_platform,
           "--target", str(site_packages(python)), "--no-index", "--find-links", str(index["wheels"]),
           "platpkg", *(("maconly",) if "darwin" in uv_platform else ()))
    facts = KERNELS[uv_platform]
    probe = run_probe(str(python))
    marker_env = {k: v for k, v in facts.items() if k not in ("platform", "machine")}
    return {**probe, "platform": facts["platform"], "machine": facts["machine"],
            "marker_environment": {**probe["marker_environment"], **marker_env}}


def test_a_requirement_the_kernel_lacks_is_resolved_for_the_target(local_index: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    python = local_index["python"]
    installed = {p.name.split("-")[0] for p in site_packages(python).glob("*.dist-info")}
    assert {"needsdep", "shared"} <= installed and not {"missingdep", "extradep"} & installed
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import needsdep"), str(python))
    pins = {normalize(p.name): (p.version, p.reason) for p in snap.distributions}
    assert pins == {
        "needsdep": ("0.1.0", ""),
        "shared": ("0.1.0", ""),  # the kernel's pin does not move to the index's 0.2.0
        "missingdep": ("0.1.0", f"needed by needsdep; {RESOLVED}"),
        "extradep": ("0.1.0", f"needed by missingdep; {RESOLVED}"),  # 0.2.0 would need shared>=0.2
    }
    lock = requirements_lock(snap, "imports").splitlines()
    assert [ln for ln in lock if not ln.startswith("#")] == [
        "extradep==0.1.0", "missingdep==0.1.0", "needsdep==0.1.0", "shared==0.1.0"]
    assert f"# extradep: needed by missingdep; {RESOLVED}" in lock
    assert f"# missingdep: needed by needsdep; {RESOLVED}" in lock
    assert any("so resolved for the image: extradep==0.1.0, missingdep==0.1.0" in w for w in snap.warnings)
    assert not any("image build resolves" in w for w in snap.warnings)


def test_a_requirement_the_index_lacks_stops_the_capture(local_index: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        capture(write_nb(tmp_path / "nb.ipynb", "import brokenneeds"), str(local_index["python"]))
    error = info.value
    assert "brokenneeds" in error.message and "nowhere-xyz" in error.message and "linux/amd64" in error.message
    assert ". " not in error.message.rstrip(".")  # one sentence
    assert "pip install nowhere-xyz" in error.hint


@pytest.mark.parametrize("uv_platform", sorted(KERNELS))
def test_a_foreign_kernel_gets_the_targets_requirements(local_index: dict[str, Path], tmp_path: Path,
                                                        uv_platform: str) -> None:
    probe = foreign_kernel(local_index, uv_platform)
    names = {normalize(d["name"]) for d in probe["distributions"]}
    own = "macdep" if "darwin" in uv_platform else "windep"
    assert {"platpkg", own} <= names and "linuxonly" not in names  # the other OS's metadata, really installed
    imports = "import platpkg, maconly" if "darwin" in uv_platform else "import platpkg"
    snap = snapshot_from_probe(write_nb(tmp_path / "nb.ipynb", imports), probe)
    pins = {normalize(p.name): p.reason for p in snap.distributions}
    assert pins == {"platpkg": "", "linuxonly": f"needed by platpkg; {RESOLVED}",
                    **({"maconly": ""} if "darwin" in uv_platform else {})}
    assert "# linuxonly: needed by platpkg; " + RESOLVED in requirements_lock(snap, "imports").splitlines()
    # every captured index pin is checked against the target in one uv resolution
    unavailable = [w for w in snap.warnings if w.startswith("No wheel for linux/amd64")]
    if "darwin" in uv_platform:
        assert len(unavailable) == 1 and unavailable[0].endswith(": maconly==0.1.0.")
    else:
        assert not unavailable
    # --freeze all takes every installed distribution, except those the kernel has only for its own OS
    snap = snapshot_from_probe(write_nb(tmp_path / "nb.ipynb", "import platpkg"), probe, freeze="all")
    assert own not in {normalize(p.name) for p in snap.distributions}
    assert "linuxonly" in {normalize(p.name) for p in snap.distributions}
    assert any(w.startswith(f"{own} is required only on the kernel's platform") for w in snap.warnings)
