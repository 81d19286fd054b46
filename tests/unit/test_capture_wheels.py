"""Wheels the index does not have, carried into the context; indexes reached before building.

Real wheels built here, real venvs that installed them (from find-links folders, by path), the
kernel's pip configuration in its environment; the index is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.capture import capture
from jupyter_containerize.capture.probe import normalize
from jupyter_containerize.capture.snapshot import PinnedDistribution, PipConfig
from jupyter_containerize.capture.wheels import target_tags, wheel_fits
from jupyter_containerize.errors import BuildError, CaptureError
from jupyter_containerize.jobs.pipeline import check_indexes
from jupyter_containerize.jobspec import JobSpec
from jupyter_containerize.options import parse
from jupyter_containerize.render import render_context
from jupyter_containerize.render.dockerfile import RUNNER_VENV
from jupyter_containerize.server.payload import options_argv
from tests.support.render import RUNNER_PINS, make_snapshot, spec_for, stages
from tests.support.venvs import make_project, make_venv, site_packages, uv, write_nb

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-token-xyz"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wheel(root: Path, name: str, version: str, out: Path) -> Path:
    """A real wheel of a one-module project, built by uv into ``out``."""
    project = make_project(root / "src" / f"{name}-{version}", name, [], version=version)
    before = set(out.glob("*.whl")) if out.exists() else set()
    uv("build", "-q", "--wheel", "--out-dir", str(out), str(project))
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


@pytest.fixture(scope="session")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A kernel venv that installed: from find-links folders cpuonly 1.0+cpu, plainpkg 0.1.0, a stand-in
    ipykernel, tagged 1.0+cpu and lostpkg 0.1.0 (whose folder is gone since); by path directpkg 1.0 (the
    file kept) and gonepkg 1.0+cpu (the file gone, a copy in a pip cache)."""
    root = tmp_path_factory.mktemp("wheels")
    links, gone, tagsrc, direct = root / "links", root / "gone", root / "tagsrc", root / "direct"
    _wheel(root, "cpuonly", "1.0+cpu", links)
    _wheel(root, "plainpkg", "0.1.0", links)
    _wheel(root, "ipykernel", "6.99.0", links)  # stands in for the kernel's own (every pin must be a wheel)
    for runner in ("nbclient", "nbformat"):  # stand-ins: the job's runner, built from the kernel's wheels too
        _wheel(root, runner, "0.99.0", links)
    lost = _wheel(root, "lostpkg", "0.1.0", gone)
    tagged = _wheel(root, "tagged", "1.0+cpu", tagsrc)
    macpkg = _wheel(root, "macpkg", "1.0", tagsrc)
    directpkg = _wheel(root, "directpkg", "1.0", direct)
    gonepkg = _wheel(root, "gonepkg", "1.0+cpu", direct)
    python = make_venv(root / "kernel")
    uv("pip", "install", "-q", "--python", str(python), "--no-index", "--find-links", str(links), "--find-links",
       str(gone), "--find-links", str(tagsrc), "cpuonly", "plainpkg", "ipykernel", "lostpkg", "tagged", "macpkg", "nbclient", "nbformat")
    uv("pip", "install", "-q", "--python", str(python), str(directpkg), str(gonepkg))
    pip_cache = root / "pipcache" / "wheels" / "ab" / "cd"
    pip_cache.mkdir(parents=True)
    shutil.move(str(gonepkg), pip_cache / gonepkg.name)  # pip keeps the wheels it built like this
    aside = root / "aside"
    aside.mkdir()
    shutil.move(str(lost), aside / lost.name)
    shutil.rmtree(gone)
    # the same tagged 1.0+cpu as wheels for other platforms, and one for the image
    foreign, fitting = root / "foreign", root / "fitting"
    foreign.mkdir()
    fitting.mkdir()
    for tags in ("py3-none-macosx_11_0_arm64", "cp311-cp311-musllinux_1_2_x86_64",
                 "cp311-cp311-manylinux_2_39_x86_64", "cp312-cp312-manylinux_2_17_x86_64",
                 "py3-none-manylinux_2_17_aarch64"):
        shutil.copy(tagged, foreign / f"tagged-1.0+cpu-{tags}.whl")
    shutil.copy(tagged, fitting / "tagged-1.0+cpu-cp311-abi3-manylinux_2_17_x86_64.whl")
    # macpkg, as if installed by path from a macOS wheel (the record pip writes for that)
    mac = shutil.copy(macpkg, foreign / "macpkg-1.0-py3-none-macosx_11_0_arm64.whl")
    record = next(site_packages(python).glob("macpkg-1.0.dist-info"))
    (record / "direct_url.json").write_text(json.dumps({"url": Path(mac).as_uri(), "archive_info": {}}))
    return {"root": root, "python": python, "links": links, "foreign": foreign, "fitting": fitting,
            "pip_cache": root / "pipcache", "aside": aside, "lost": lost.name, "direct": directpkg}


@pytest.fixture
def kernel_config(kernel: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The kernel's pip configuration: its find-links folder, its pip cache, an index nothing answers on."""
    port = closed_port()
    monkeypatch.setenv("PIP_FIND_LINKS", str(kernel["links"]))
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("PIP_CACHE_DIR", str(kernel["pip_cache"]))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # an empty one: this host's is not the kernel's
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no find-links or index of this machine's own config
    return {**kernel, "port": port}


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real simple-API index on 127.0.0.1 that has plainpkg 0.1.0 only, and the paths asked of it."""
    page = tmp_path / "index" / "simple" / "plainpkg"
    page.mkdir(parents=True)
    (page / "index.html").write_text('<a href="plainpkg-0.1.0-py3-none-any.whl">plainpkg-0.1.0-py3-none-any.whl</a>\n')
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(tmp_path / "index")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/simple", "asked": asked}
    server.shutdown()
    server.server_close()


def pins(snapshot: Any) -> dict[str, PinnedDistribution]:
    return {normalize(p.name): p for p in snapshot.distributions}


def test_a_local_version_from_a_find_links_folder_becomes_a_context_wheel(
        kernel_config: dict[str, Any], index_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", index_server["url"])
    python = kernel_config["python"]
    installed = {p.name for p in site_packages(python).glob("cpuonly-*.dist-info")}
    assert installed == {"cpuonly-1.0+cpu.dist-info"}  # installed from find-links: no direct_url.json
    assert not (site_packages(python) / "cpuonly-1.0+cpu.dist-info" / "direct_url.json").exists()
    nb = write_nb(tmp_path / "nb.ipynb", "import cpuonly, plainpkg")
    snap = capture(nb, str(python), wheel_dir=tmp_path / "wheels")
    got = pins(snap)
    wheel = "cpuonly-1.0+cpu-py2.py3-none-any.whl"
    assert got["cpuonly"].source == "local-wheel"
    assert got["cpuonly"].requirement == f"cpuonly @ file:///wheels/{wheel}"
    assert (tmp_path / "wheels" / wheel).read_bytes() == (kernel_config["links"] / wheel).read_bytes()
    # plain versions in find-links: the index is asked once for each; what it has stays an index pin
    assert got["plainpkg"] == PinnedDistribution("plainpkg", "0.1.0", "plainpkg==0.1.0")
    assert got["ipykernel"].source == "local-wheel"  # 6.99.0 is not on that index
    assert sorted(index_server["asked"]) == ["/simple/ipykernel/", "/simple/plainpkg/"]  # +cpu decided without it
    assert any("carried into the image" in w and "cpuonly==1.0+cpu" in w for w in snap.warnings)
    ctx = render_context(snap, spec_for(nb), tmp_path / "ctx", runner_pins=RUNNER_PINS)
    assert f"wheels/{wheel}" in ctx.files
    assert f"cpuonly @ file:///wheels/{wheel}" in (ctx.path / "requirements.lock").read_text().splitlines()


def test_a_wheel_installed_by_path_is_carried_even_when_the_file_is_gone(kernel_config: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    python = kernel_config["python"]
    direct_urls = [(site_packages(python) / f"{name}.dist-info" / "direct_url.json").read_text()
                   for name in ("directpkg-1.0", "gonepkg-1.0+cpu")]
    assert len(direct_urls) == 2 and all('"archive_info"' in d and "file://" in d for d in direct_urls)
    assert not (kernel_config["root"] / "direct" / "gonepkg-1.0+cpu-py2.py3-none-any.whl").exists()
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import directpkg, gonepkg"), str(python),
                   wheel_dir=tmp_path / "wheels")
    got = pins(snap)
    assert got["directpkg"].requirement == "directpkg @ file:///wheels/directpkg-1.0-py2.py3-none-any.whl"
    assert got["directpkg"].project_path == kernel_config["direct"]
    # its file is gone, but pip's cache kept the wheel
    assert got["gonepkg"].requirement == "gonepkg @ file:///wheels/gonepkg-1.0+cpu-py2.py3-none-any.whl"
    assert got["gonepkg"].project_path is not None and kernel_config["pip_cache"] in got["gonepkg"].project_path.parents
    assert not any("no longer exists" in w for w in snap.warnings)


def test_a_wheel_for_another_platform_is_not_picked(kernel_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import tagged")
    monkeypatch.setenv("PIP_FIND_LINKS", str(kernel_config["foreign"]))
    snap = capture(nb, str(kernel_config["python"]))
    assert len(list(kernel_config["foreign"].glob("tagged-*.whl"))) == 5
    assert pins(snap)["tagged"] == PinnedDistribution("tagged", "1.0+cpu", "tagged==1.0+cpu")
    monkeypatch.setenv("PIP_FIND_LINKS", f"{kernel_config['foreign']} {kernel_config['fitting']}")
    snap = capture(nb, str(kernel_config["python"]))
    assert pins(snap)["tagged"].project_path == kernel_config["fitting"] / "tagged-1.0+cpu-cp311-abi3-manylinux_2_17_x86_64.whl"


def test_a_wheel_installed_by_path_for_another_platform_is_not_carried(kernel_config: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    snap = capture(write_nb(tmp_path / "nb.ipynb", "import macpkg"), str(kernel_config["python"]),
                   wheel_dir=tmp_path / "wheels")
    assert pins(snap)["macpkg"] == PinnedDistribution("macpkg", "1.0", "macpkg==1.0")
    assert "macpkg was installed from macpkg-1.0-py3-none-macosx_11_0_arm64.whl, which does not install on the " \
           "image; pinned as macpkg==1.0 from the package index." in snap.warnings
    assert not list((tmp_path / "wheels").glob("macpkg-*"))  # not even copied


def test_wheel_tags_follow_the_images_platform_and_python() -> None:
    amd64, arm64 = target_tags("3.11.7", "linux/amd64"), target_tags("3.11.7", "linux/arm64")
    cases = {
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl": (True, False),
        "x-1.0-cp311-cp311-manylinux2014_aarch64.whl": (False, True),
        "x-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (True, False),
        "x-1.0-cp311-cp311-linux_x86_64.whl": (True, False),
        "x-1.0-py3-none-any.whl": (True, True),
        "x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl": (False, False),
        "x-1.0-cp311-cp311-macosx_11_0_arm64.whl": (False, False),
        "x-1.0-cp311-cp311-win_amd64.whl": (False, False),
    }
    for name, (on_amd64, on_arm64) in cases.items():
        dist, version = name.split("-")[:2]
        assert wheel_fits(Path(name), dist, version, amd64) is on_amd64, name
        assert wheel_fits(Path(name), dist, version, arm64) is on_arm64, name
    assert not wheel_fits(Path("x-1.0-py3-none-any.whl"), "x", "1.0+cpu", amd64)  # another version
    assert not wheel_fits(Path("y-1.0-py3-none-any.whl"), "x", "1.0", amd64)


def test_wheels_from_kernel_parses_for_cli_magics_and_rest(tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "print(1)")
    for argv in (["run", str(nb), "--wheels-from-kernel"], f"build {nb} --wheels-from-kernel",
                 ["dockerfile", str(nb), *options_argv({"wheels_from_kernel": True})]):
        spec = parse(argv).spec
        assert spec is not None and spec.build.wheels_from_kernel is True
        assert JobSpec.from_dict(spec.to_dict()).build.wheels_from_kernel is True
    plain = parse(["run", str(nb)]).spec
    assert plain is not None and plain.build.wheels_from_kernel is False


def test_wheels_from_kernel_carries_every_wheel_or_names_the_missing_one(
        kernel_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = write_nb(tmp_path / "nb.ipynb", "import cpuonly, plainpkg, lostpkg, directpkg")
    with pytest.raises(CaptureError) as info:
        capture(nb, str(kernel_config["python"]), wheels_from_kernel=True)
    message = info.value.message
    assert "lostpkg==0.1.0" in message and "--wheels-from-kernel" in message
    assert not any(n in message for n in ("cpuonly", "plainpkg", "directpkg", "ipykernel"))
    assert ". " not in message  # one sentence
    # the missing wheel shows up in uv's cache of built wheels: now every pin is one
    uv_cache = tmp_path / "uv-cache" / "sdists-v11" / "index" / "0123" / "abcd"
    uv_cache.mkdir(parents=True)
    shutil.copy(kernel_config["aside"] / kernel_config["lost"], uv_cache)
    (tmp_path / "uv-cache" / "archive-v0" / "lostpkg-0.1.0-py3-none-any.whl").mkdir(parents=True)  # unpacked: no wheel
    snap = capture(nb, str(kernel_config["python"]), wheels_from_kernel=True, wheel_dir=tmp_path / "wheels")
    got = pins(snap)
    assert set(got) == {"cpuonly", "plainpkg", "lostpkg", "directpkg", "ipykernel"}
    assert sorted(p.requirement.partition(" @ ")[::2] for p in snap.runner_distributions) == [
        ("nbclient", "file:///wheels/nbclient-0.99.0-py2.py3-none-any.whl"),
        ("nbformat", "file:///wheels/nbformat-0.99.0-py2.py3-none-any.whl")]
    assert all(p.source == "local-wheel" and p.requirement.startswith(f"{p.name} @ file:///wheels/")
               for p in got.values())
    spec = parse(["run", str(nb), "--wheels-from-kernel", "--builder", "classic"]).spec
    assert spec is not None
    for builder in ("classic", "buildkit"):
        ctx = render_context(snap, spec, tmp_path / builder, buildkit=builder == "buildkit", runner_pins=RUNNER_PINS)
        assert f"127.0.0.1:{kernel_config['port']}" not in ctx.dockerfile
        lock_step = next(ln for ln in ctx.dockerfile.split("RUN ") if "requirements.lock" in ln and "--no-deps" in ln)
        assert "--no-index" in lock_step
        assert ctx.indexes == () and sorted(f[7:] for f in ctx.files if f.startswith("wheels/")) == sorted(
            p.wheel_path.name for p in got.values() if p.wheel_path is not None)
        # no index anywhere: uv is this machine's, the runner installs the kernel's wheels without one
        assert "tools/uv" in ctx.files and "pip install --target" not in ctx.dockerfile
        runner_step = next(ln for ln in ctx.dockerfile.split("RUN ") if f"{RUNNER_VENV}/bin/python" in ln)
        assert "--no-index -r" in runner_step
        check_indexes(ctx)  # nothing to reach: every pin is a wheel of the context


def _closed_index_context(tmp_path: Path, **changes: Any) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    nb = write_nb(tmp_path / "nb.ipynb", "import numpy")
    snap = make_snapshot(nb, **changes)
    return render_context(snap, spec_for(nb), tmp_path / "ctx", runner_pins=RUNNER_PINS)


def test_an_unreachable_index_stops_the_build_in_one_sentence(tmp_path: Path) -> None:
    port = closed_port()
    clean = f"http://127.0.0.1:{port}/simple"
    config = PipConfig(index_url=clean, secret_build_args=("JC_INDEX_URL",),
                       secret_values={"JC_INDEX_URL": f"http://user:{SECRET}@127.0.0.1:{port}/simple"})
    ctx = _closed_index_context(tmp_path, pip_config=config)
    assert ctx.indexes == ("${JC_INDEX_URL}",)
    started = time.monotonic()
    with pytest.raises(BuildError) as info:
        check_indexes(ctx)
    assert time.monotonic() - started < 10
    error = info.value
    assert error.message == (f"The package index {clean} cannot be reached (Connection refused), so the build "
                             "would fail installing the lock")
    assert SECRET not in str(error) and "user" not in error.message
    assert "--wheels-from-kernel" in error.hint


@pytest.fixture
def tls_index(tmp_path: Path) -> Iterator[str]:
    """A real HTTPS index on 127.0.0.1 with a self-signed certificate (made by openssl here)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    (tmp_path / "tls" / "simple" / "numpy").mkdir(parents=True)
    (tmp_path / "tls" / "simple" / "numpy" / "index.html").write_text("<a href='numpy-1.26.4.tar.gz'>x</a>\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "tls")))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_index_with_an_untrusted_certificate_is_named_unless_its_host_is_trusted(tmp_path: Path,
                                                                                     tls_index: str) -> None:
    url = f"https://{tls_index}/simple"
    ctx = _closed_index_context(tmp_path / "strict", pip_config=PipConfig(index_url=url))
    with pytest.raises(BuildError) as info:
        check_indexes(ctx)
    assert info.value.message.startswith(f"The package index {url} presents a TLS certificate that is not trusted (")
    assert "trusted-host" in info.value.hint
    ctx = _closed_index_context(tmp_path / "trusting", pip_config=PipConfig(index_url=url, trusted_hosts=(tls_index,)))
    assert ctx.trusted_hosts == (tls_index,)
    check_indexes(ctx)  # pip and uv skip verification for it; so does the check


def test_an_extra_index_goes_to_the_lock_step_only_and_is_checked(tmp_path: Path) -> None:
    port = closed_port()
    extra = f"http://127.0.0.1:{port}/whl/cpu"
    torch = PinnedDistribution("torch", "2.13.0+cpu", "torch==2.13.0+cpu")
    for buildkit in (False, True):
        nb = write_nb(tmp_path / f"nb{buildkit}.ipynb", "import torch")
        snap = make_snapshot(nb, distributions=(torch,), pip_config=PipConfig(extra_index_urls=(extra,)))
        ctx = render_context(snap, spec_for(nb), tmp_path / f"ctx{buildkit}", buildkit=buildkit,
                             runner_pins=RUNNER_PINS)
        assert ctx.buildkit is buildkit
        steps = ctx.dockerfile.split("\nRUN ")
        with_extra = [s for s in steps if extra in s]
        assert len(with_extra) == 1 and "requirements.lock" in with_extra[0]
        assert "runner.lock" not in with_extra[0] and "uv==" not in with_extra[0]
        lock_command = next(c for c in with_extra[0].split("&&") if extra in c)
        assert "--no-deps -r" in lock_command and "UV_INDEX_STRATEGY=unsafe-best-match" in lock_command
        if not buildkit:
            builder, final = stages(ctx.dockerfile)
            assert not any(ln.startswith("ENV") and extra in ln for ln in builder) and extra not in "\n".join(final)
        assert ctx.indexes == ("", extra)
        with pytest.raises(BuildError, match=f"The package index {extra} cannot be reached"):
            check_indexes(ctx)


def test_no_index_is_reached_when_every_pin_is_a_context_wheel(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "onlywheel", "1.0", tmp_path / "built")
    pin = PinnedDistribution("onlywheel", "1.0", f"onlywheel @ file:///wheels/{wheel.name}", source="local-wheel",
                             wheel_path=wheel)
    ipykernel = PinnedDistribution("ipykernel", "6.29.0", f"ipykernel @ file:///wheels/{wheel.name}",
                                   source="local-wheel", wheel_path=wheel)
    ctx = _closed_index_context(tmp_path, distributions=(pin, ipykernel),
                                pip_config=PipConfig(index_url=f"http://127.0.0.1:{closed_port()}/simple"))
    assert ctx.indexes == () and "127.0.0.1" not in ctx.dockerfile and ctx.build_args == {}
    assert "--no-index --no-deps -r" in ctx.dockerfile
    check_indexes(ctx)
