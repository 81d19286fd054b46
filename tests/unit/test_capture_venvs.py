"""capture() against real virtual environments built with uv from PyPI (slow, cached per session)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.capture import build_local_wheels, capture, snapshot_from_probe
from jupyter_containerize.capture.interpreter import run_probe
from jupyter_containerize.capture.probe import normalize
from jupyter_containerize.errors import CaptureError
from jupyter_containerize.render.locks import requirements_lock
from tests.support.venvs import make_project, make_venv, site_packages, uv, write_nb

pytestmark = pytest.mark.slow

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def freeze(python: Path) -> dict[str, str]:
    lines = uv("pip", "freeze", "--python", str(python)).splitlines()
    out = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:==| @ )(.+)$", line)
        if m:
            out[normalize(m.group(1))] = m.group(2)
    return out


def requires(python: Path, names: list[str]) -> dict[str, set[str]]:
    """What ``uv pip show`` says each installed distribution requires (an independent view)."""
    out: dict[str, set[str]] = {}
    name = ""
    for line in uv("pip", "show", "--python", str(python), *names).splitlines():
        if line.startswith("Name: "):
            name = normalize(line[6:].strip())
        elif line.startswith("Requires:"):
            out[name] = {normalize(r.strip()) for r in line[9:].split(",") if r.strip()}
    return out


def rewrite(path: Path, text: str) -> None:
    """Replace an installed file without writing through uv's hardlinks into its cache."""
    path.unlink(missing_ok=True)
    path.write_text(text)


def dist_info(python: Path, name: str) -> Path:
    return next(site_packages(python).glob(f"{name}-*.dist-info"))


@pytest.fixture(scope="session")
def science(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn, PyYAML, pillow, opencv-python-headless, matplotlib, protobuf + googleapis-common-protos."""
    return make_venv(tmp_path_factory.mktemp("venv") / "science", "scikit-learn", "pyyaml", "pillow",
                     "opencv-python-headless", "matplotlib", "protobuf", "googleapis-common-protos")


@pytest.fixture(scope="session")
def special(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A venv with an editable project, a local-folder install, a conda-style record, a VCS
    record, a platform-only package and a compiled extension that needs the system's libgomp."""
    root = tmp_path_factory.mktemp("special")
    editable = make_project(root, "localproj", ["six", 'appnope; sys_platform == "darwin"'])
    folder = make_project(root, "dirproj", [])
    broken = make_project(root, "brokenproj", [])
    python = make_venv(root / "venv", "six", "idna", "appnope", "packaging")
    uv("pip", "install", "-q", "--python", str(python), "-e", str(editable), "-e", str(broken), str(folder))
    (broken / "pyproject.toml").write_text(
        (broken / "pyproject.toml").read_text().replace('"hatchling"', '"no-such-backend-pkg-xyz"')
        .replace("hatchling.build", "no_such_backend"))
    # conda-style record: pip freeze would print "six @ file:///home/conda/feedstock_root/…"
    rewrite(dist_info(python, "six") / "direct_url.json", json.dumps(
        {"url": "file:///home/conda/feedstock_root/build_artifacts/six_1700000000000/work", "dir_info": {}}))
    # conda-only build of packaging: a version that PyPI does not have
    pk = dist_info(python, "packaging")
    meta = pk / "METADATA"
    rewrite(meta, re.sub(r"(?m)^Version: .*$", "Version: 24.0.post999", meta.read_text(), count=1))
    rewrite(pk / "direct_url.json", json.dumps(
        {"url": "file:///opt/conda/conda-bld/packaging_1/work/packaging-24.0.tar.bz2", "archive_info": {}}))
    # VCS record (GitHub is not reachable here: hand-written as pip writes it)
    rewrite(dist_info(python, "idna") / "direct_url.json", json.dumps(
        {"url": "https://github.com/kjd/idna.git",
         "vcs_info": {"vcs": "git", "commit_id": COMMIT, "requested_revision": "main"}}))
    # compiled extension needing libgomp.so.1 that its distribution does not bundle
    sp = site_packages(python)
    ext_dir = sp / "ompkg"
    ext_dir.mkdir()
    (ext_dir / "__init__.py").write_text("")
    src = root / "omp.c"
    src.write_text("#include <omp.h>\nint f(void){return omp_get_max_threads();}\n")
    so = ext_dir / f"_omp{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["gcc", "-shared", "-fPIC", "-fopenmp", "-o", str(so), str(src)], check=True)
    di = sp / "ompkg-1.0.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: ompkg\nVersion: 1.0\n\n")
    (di / "INSTALLER").write_text("manual\n")
    (di / "RECORD").write_text(f"ompkg/__init__.py,,\nompkg/{so.name},,\n"
                               "ompkg-1.0.dist-info/METADATA,,\nompkg-1.0.dist-info/RECORD,,\n")
    return {"python": python, "root": root, "editable": editable, "folder": folder, "broken": broken}


def test_imports_map_to_distributions_and_pins_equal_freeze(science: Path, tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("import threadpoolctl\n")
    nb = write_nb(
        tmp_path / "exp.ipynb",
        "%matplotlib inline\nimport numpy as np\nimport os",
        "%%time\nfrom sklearn.linear_model import LinearRegression",
        "!pip install -q pyyaml\nimport cv2, yaml\nfrom PIL import Image",
        "def load():\n    import importlib\n    return importlib.import_module('google.protobuf.json_format')",
        "import helpers",
    )
    snap = capture(nb, str(science))
    pins = {normalize(p.name): p for p in snap.distributions}
    assert {"scikit-learn", "pillow", "pyyaml", "opencv-python-headless", "matplotlib", "protobuf",
            "threadpoolctl"} <= set(pins)
    assert "googleapis-common-protos" not in pins  # namespace package resolved by the submodule
    assert snap.local_modules == ("helpers.py",)
    assert snap.explicit_requirements == ("pyyaml",)
    assert "google.protobuf.json_format" in snap.imports or "google.protobuf" in snap.imports
    frozen = freeze(science)
    assert {k: p.version for k, p in pins.items()} == {k: frozen[k] for k in pins}
    assert all(p.requirement == f"{p.name}=={p.version}" and p.source == "index" for p in pins.values())
    # closed under Requires-Dist, as uv sees it
    for name, deps in requires(science, sorted(pins)).items():
        assert deps <= set(pins), (name, deps - set(pins))
    # scikit-learn bundles libgomp in scikit_learn.libs: nothing from apt for it
    assert "libgomp1" not in snap.system_packages
    assert snap.python_version == ".".join(map(str, sys.version_info[:3]))
    assert snap.python_executable.startswith(str(science.parent.parent))
    assert not [w for w in snap.warnings if "not installed" in w]


def test_namespace_package_submodules(science: Path, tmp_path: Path) -> None:
    snap = capture(write_nb(tmp_path / "nb.ipynb", "from google.api import annotations_pb2"), str(science))
    assert {normalize(p.name) for p in snap.distributions} == {"googleapis-common-protos", "protobuf"}
    snap = capture(write_nb(tmp_path / "nb2.ipynb", "from google import protobuf"), str(science))
    assert [p.name for p in snap.distributions] == ["protobuf"]


def test_freeze_all_is_the_whole_environment(science: Path, tmp_path: Path) -> None:
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import yaml"), str(science), freeze="all")
    assert {normalize(p.name): p.version for p in snap.distributions} == freeze(science)


def test_special_records(special: dict[str, Any], tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import six, idna, localproj, dirproj, ompkg, packaging")
    snap = capture(nb, str(special["python"]))
    pins = {normalize(p.name): p for p in snap.distributions}
    assert pins["six"].requirement.startswith("six==") and pins["six"].source == "index"
    assert pins["packaging"].requirement == "packaging==24.0.post999"
    assert not any("@ file://" in p.requirement and p.source != "local-wheel" for p in pins.values())
    assert pins["idna"].requirement == f"idna @ git+https://github.com/kjd/idna.git@{COMMIT}"
    assert pins["idna"].source == "vcs"
    assert "appnope" not in pins  # its marker says darwin; the image is linux
    for name, project in (("localproj", special["editable"]), ("dirproj", special["folder"])):
        assert pins[name].source == "local-wheel" and pins[name].project_path == project
        assert pins[name].wheel_path is None
    assert "libgomp1" in snap.system_packages
    built = build_local_wheels(snap, tmp_path / "wheels")
    local = {p.name: p for p in built.distributions if p.source == "local-wheel"}
    wheel = local["localproj"].wheel_path
    assert wheel is not None and wheel.parent == tmp_path / "wheels" and wheel.is_file()
    assert re.fullmatch(r"localproj-0\.1\.0-.*-none-any\.whl", wheel.name)
    assert local["localproj"].requirement == f"localproj @ file:///wheels/{wheel.name}"
    assert local["dirproj"].wheel_path is not None and local["dirproj"].wheel_path.is_file()


def test_unbuildable_local_project_is_a_clear_error(special: dict[str, Any], tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import brokenproj")
    with pytest.raises(CaptureError, match="brokenproj") as err:
        capture(nb, str(special["python"]), wheel_dir=tmp_path / "wheels")
    assert str(special["broken"]) in str(err.value) and err.value.hint


def test_version_missing_from_index_is_a_warning(special: dict[str, Any], tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import packaging, six")
    snap = capture(nb, str(special["python"]), check_index=True)
    missing = [w for w in snap.warnings if "Not on the package index" in w]
    assert len(missing) == 1 and "packaging==24.0.post999" in missing[0] and "six==" not in missing[0]


def test_foreign_platform_drops_platform_only_packages(special: dict[str, Any], tmp_path: Path) -> None:
    probe = run_probe(str(special["python"]))  # real metadata, seen as if the kernel ran on macOS/arm64
    probe = {**probe, "platform": "darwin", "machine": "arm64",
             "marker_environment": {**probe["marker_environment"], "sys_platform": "darwin",
                                    "platform_system": "Darwin", "platform_machine": "arm64"}}
    nb = write_nb(tmp_path / "nb.ipynb", "import appnope, localproj")
    snap = snapshot_from_probe(nb, probe)
    names = {normalize(p.name) for p in snap.distributions}
    assert "appnope" not in names and {"localproj", "six"} <= names
    assert any("appnope" in w and "macOS" in w for w in snap.warnings)
    assert any("darwin/arm64" in w and "linux/amd64" in w for w in snap.warnings)


def test_in_process_uses_sys_modules(tmp_path: Path) -> None:
    import importlib

    name = "hypothesis"
    importlib.import_module(name)
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import nbformat"), in_process=True)
    names = {normalize(p.name) for p in snap.distributions}
    assert {"hypothesis", "nbformat", "ipykernel"} <= names
    assert "jupyter-containerize" not in names and "docker" not in names
    assert snap.ipykernel_version is not None
    assert snap.python_executable == sys.executable


def test_credentials_never_reach_public_fields(science: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://user:s3cret@host.example/simple")
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import yaml"), str(science))
    public = dataclasses.replace(snap, pip_config=dataclasses.replace(snap.pip_config, secret_values={}))
    assert "s3cret" not in repr(public)
    assert snap.pip_config.index_url == "https://host.example/simple"
    assert snap.pip_config.secret_values == {"JC_INDEX_URL": "https://user:s3cret@host.example/simple"}


@pytest.fixture(scope="session")
def extras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """corelib (needs coredep) names under extras: optlib (installed; it needs optdep and names chainlib
    under its own extra, which is not followed), speedlib behind a compound marker that holds, winlib
    behind one that does not (on linux), testlib under its development extras, and never-installed-xyz,
    which the venv lacks. unrelatedlib is installed, named by nothing."""
    root = tmp_path_factory.mktemp("extras")
    projects = [
        make_project(root, "corelib", ["coredep"], optional={
            "excel": ["optlib>=0.1"], "fast": ['speedlib; python_version >= "3.9"'],
            "win": ['winlib; sys_platform == "win32"'], "cloud": ["never-installed-xyz"],
            "test": ["testlib"], "docs": ["testlib"]}),
        make_project(root, "optlib", ["optdep"], optional={"more": ["chainlib"]}),
        *(make_project(root, name, []) for name in ("coredep", "optdep", "chainlib", "speedlib", "winlib", "testlib",
                                                 "unrelatedlib")),
    ]
    for project in projects:  # wheels installed by name: plain name==version pins, as from an index
        uv("build", "-q", "--wheel", "--out-dir", str(root / "wheels"), str(project))
    python = make_venv(root / "venv")
    uv("pip", "install", "-q", "--python", str(python), "--no-index", "--find-links", str(root / "wheels"),
       *(p.name for p in projects))
    return python


def test_optional_dependencies_the_kernel_has_are_pinned_with_their_reason(extras: Path, tmp_path: Path) -> None:
    meta = (dist_info(extras, "corelib") / "METADATA").read_text()
    assert re.search(r"Requires-Dist: speedlib; .*python_version.*and extra == .fast.", meta)  # a compound marker
    nb = write_nb(tmp_path / "nb.ipynb", "import corelib")
    snap = capture(nb, str(extras))
    reasons = {normalize(p.name): p.reason for p in snap.distributions}
    assert reasons == {
        "corelib": "",
        "coredep": "",
        "optlib": "optional for corelib[excel], installed in the kernel",
        "speedlib": "optional for corelib[fast], installed in the kernel",
        "optdep": "needed by optlib, optional for corelib[excel]; installed in the kernel",
    }  # not chainlib (an optional dependency's own extra), not testlib (corelib[test], corelib[docs])
    frozen = freeze(extras)
    assert {normalize(p.name): p.version for p in snap.distributions} == {k: frozen[k] for k in reasons}
    assert not [w for w in snap.warnings if "never-installed-xyz" in w]
    lock = requirements_lock(snap, "imports").splitlines()
    header = [ln for ln in lock if ln.startswith("#")]
    assert header[-3:] == [
        "# optdep: needed by optlib, optional for corelib[excel]; installed in the kernel",
        "# optlib: optional for corelib[excel], installed in the kernel",
        "# speedlib: optional for corelib[fast], installed in the kernel",
    ]
    assert [ln for ln in lock if not ln.startswith("#")] == [
        f"{n}=={frozen[n]}" for n in ("coredep", "corelib", "optdep", "optlib", "speedlib")]
    assert requirements_lock(capture(nb, str(extras)), "imports") == "\n".join(lock) + "\n"  # deterministic


def test_freeze_imports_only_leaves_optional_dependencies_out(extras: Path, tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import corelib")
    snap = capture(nb, str(extras), freeze="imports-only")
    assert {normalize(p.name) for p in snap.distributions} == {"corelib", "coredep"}
    assert not any(p.reason for p in snap.distributions)
    assert "optional for" not in requirements_lock(snap, "imports-only")
    # a distribution that names nothing installed under its extras adds nothing
    snap = capture(write_nb(tmp_path / "nb2.ipynb", "import optdep, unrelatedlib"), str(extras))
    assert {normalize(p.name) for p in snap.distributions} == {"optdep", "unrelatedlib"}


def test_a_module_the_kernel_lacks_stops_the_capture(extras: Path, tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import corelib\nimport xgboost")
    with pytest.raises(CaptureError) as err:
        capture(nb, str(extras))
    message = str(err.value)
    assert message.startswith("The notebook imports xgboost, which the kernel (")
    assert str(extras.parent.parent) in message and "(pip install xgboost) or pass --python" in message
    assert "\n" not in message
    nb = write_nb(tmp_path / "many.ipynb", "import sklearn.linear_model, xgboost\nfrom cv2 import dnn\nimport corelib")
    with pytest.raises(CaptureError) as err:
        capture(nb, str(extras))
    assert err.value.message.startswith("The notebook imports cv2, sklearn and xgboost, which the kernel")
    assert "Install them there (pip install opencv-python scikit-learn xgboost)" in err.value.hint


@pytest.mark.parametrize("cells", [
    ("try:\n    import xgboost\nexcept ImportError:\n    xgboost = None",),
    ("try:\n    from xgboost import XGBClassifier\nexcept (ValueError, ModuleNotFoundError):\n    pass",),
    ("!pip install -q xgboost", "import xgboost"),
    ("%pip install scikit-learn==1.5.0", "from sklearn import svm"),
    ("!pip install -r requirements.txt", "import xgboost"),
    ("import xgboost_helpers, json, jupyter_containerize",),
])
def test_optional_installed_later_or_local_imports_do_not_stop_it(
        extras: Path, tmp_path: Path, cells: tuple[str, ...]) -> None:
    (tmp_path / "xgboost_helpers.py").write_text("import corelib\n")
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import corelib", *cells), str(extras))
    assert "corelib" in {p.name for p in snap.distributions}
    if cells[0].startswith("try"):
        assert any("xgboost" in w and "optional import" in w for w in snap.warnings)


def test_an_import_guarded_by_another_error_still_stops_it(extras: Path, tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "try:\n    import xgboost\nexcept KeyError:\n    pass")
    with pytest.raises(CaptureError, match="imports xgboost"):
        capture(nb, str(extras))
