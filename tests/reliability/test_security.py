"""Security on the real engine: never root, hardened by default, no secret in any layer,
dangerous mounts refused. (Handler authentication: tests/unit/test_handlers_auth.py.)"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import tarfile
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.backends.docker import DockerBackend
from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobs.manager import JobManager, prepare
from jupyter_containerize.jobs.store import JobStore
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook
from tests.support.specs import run_spec

pytestmark = [pytest.mark.engine]


PROBE = (
    "import os, json, pathlib\n"
    "status = dict(l.split(':\\t', 1) for l in pathlib.Path('/proc/self/status').read_text().splitlines() if ':\\t' in l)\n"
    "try:\n    pathlib.Path('/usr/jc-write-test').write_text('x'); root_writable = True\n"
    "except OSError:\n    root_writable = False\n"
    "pathlib.Path('/output/who.json').write_text(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),\n"
    "    'cap_eff': status['CapEff'].strip(), 'cap_bnd': status['CapBnd'].strip(),\n"
    "    'no_new_privs': status['NoNewPrivs'].strip(), 'root_writable': root_writable}))\n"
)


def test_job_never_runs_as_root_and_is_hardened_by_default(tmp_path: Path, job_store: Path, engine: docker.DockerClient,
                                                           base_image: str) -> None:
    nb = write_notebook(tmp_path / "who.ipynb", PROBE)
    spec = run_spec(nb)  # no --uid, and this host runs the tests as root
    assert spec.build.uid is None
    job = JobManager(JobStore(job_store)).submit(spec)
    record = job.wait(timeout=900)
    assert record.status == "succeeded", record.error
    who = json.loads((Path(record.output_dir) / "who.json").read_text())
    assert who["uid"] != 0 and who["euid"] != 0 and who["gid"] != 0, who
    assert int(who["cap_eff"], 16) == 0 and int(who["cap_bnd"], 16) == 0, who  # cap_drop ALL
    assert who["no_new_privs"] == "1" and who["root_writable"] is False, who
    user = engine.images.get(record.image_tag).attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("", "0", "root"), user
    if os.geteuid() != 0:
        assert who["uid"] == os.geteuid()
    assert labelled_containers(engine, job.id) == []


def test_container_options_are_hardened_by_default(tmp_path: Path, engine: docker.DockerClient,
                                                   base_image: str) -> None:
    nb = write_notebook(tmp_path / "h.ipynb", "print(1)")
    image = engine.images.get(base_image)
    assert image.id is not None
    backend = DockerBackend(engine)
    request = RunRequest(job_id="sec" + uuid.uuid4().hex[:8], image=ImageRef(tag=image.id, image_id=image.id),
                         spec=run_spec(nb), output_dir=tmp_path / "out")
    container_id = backend.create(request)
    try:
        host = engine.api.inspect_container(container_id)["HostConfig"]
    finally:
        backend.remove(request.job_id, container_id)
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    assert host["Privileged"] is False


@pytest.mark.parametrize("mount", ["/var/run/docker.sock:/sock", "/run/docker.sock:/sock", "/:/host",
                                   "/etc:/hostetc:ro", "/proc:/hostproc"])
def test_dangerous_mounts_need_the_named_flag(tmp_path: Path, mount: str) -> None:
    nb = write_notebook(tmp_path / "m.ipynb", "print(1)")
    with pytest.raises(OptionError, match="--allow-dangerous-mounts"):
        run_spec(nb, "-v", mount)
    spec = run_spec(nb, "-v", mount, "--allow-dangerous-mounts")
    assert spec.volumes[0].source == os.path.realpath(mount.split(":")[0])


def test_a_symlink_to_the_docker_socket_is_refused_too(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "m.ipynb", "print(1)")
    (tmp_path / "innocent").symlink_to("/var/run/docker.sock")
    (tmp_path / "everything").symlink_to("/")
    for mount in ("./innocent:/data", "./everything:/data"):
        with pytest.raises(OptionError, match="--allow-dangerous-mounts"):
            run_spec(nb, "-v", mount)


# -- secrets of the pip configuration never reach the image ------------------------------------------

TOKEN = "jc-secret-" + uuid.uuid4().hex
PACKAGE = "jcsecretpkg"


def _tiny_wheel(dest: Path) -> Path:
    """A pure-Python wheel built by hand (no network, no build backend)."""
    name = f"{PACKAGE}-0.1.0-py3-none-any.whl"
    dist = f"{PACKAGE}-0.1.0.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": "VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record
    path = dest / name
    with zipfile.ZipFile(path, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return path


class _Index(http.server.BaseHTTPRequestHandler):
    """A PEP 503 simple index of one wheel that insists on the token (basic auth)."""

    wheel: Path
    seen_token: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        import base64

        creds = base64.b64decode(auth.split(" ", 1)[1]).decode() if auth.startswith("Basic ") else ""
        if TOKEN not in creds:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="jc"')
            self.end_headers()
            return
        self.seen_token.append(self.path)
        name = self.wheel.name
        kind = "text/html"
        if self.path.rstrip("/") in ("/simple", ""):
            body = f'<a href="/simple/{PACKAGE}/">{PACKAGE}</a>'.encode()
        elif self.path.rstrip("/") == f"/simple/{PACKAGE}":
            body = f'<a href="/files/{name}">{name}</a>'.encode()
        elif self.path == f"/files/{name}":
            body, kind = self.wheel.read_bytes(), "application/octet-stream"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _bridge_gateway(engine: docker.DockerClient) -> str:
    """The host's address on the default bridge (build containers use it; 127.0.0.1 is their own)."""
    config = engine.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    import ipaddress

    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))  # dockerd gives the bridge the first one


def test_no_secret_from_the_pip_configuration_in_history_or_any_layer(
        tmp_path: Path, engine: docker.DockerClient, base_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The package exists only on the private index; the kernel has it installed (no direct_url.json).
    site = tmp_path / "site"
    with zipfile.ZipFile(_tiny_wheel(tmp_path)) as z:
        z.extractall(site)
    _Index.wheel = _tiny_wheel(tmp_path)
    _Index.seen_token = []
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://ci:{TOKEN}@{_bridge_gateway(engine)}:{server.server_address[1]}/simple/"
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", url)
    monkeypatch.setenv("JC_SECRET_ENV_CHECK", TOKEN)  # a secret in the environment, too
    nb = write_notebook(tmp_path / "private.ipynb", f"import {PACKAGE}\nprint({PACKAGE}.VALUE)")
    try:
        prepared = prepare(run_spec(nb))
        try:
            assert TOKEN not in prepared.context.dockerfile
            for path in prepared.context.path.rglob("*"):
                assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path
            assert any(TOKEN in v for v in prepared.context.build_args.values())
            assert TOKEN not in repr(prepared.context)
            image = build_image(prepared.context, lambda e: None)
        finally:
            prepared.cleanup()
    finally:
        server.shutdown()
    assert any(PACKAGE in p for p in _Index.seen_token), "the build must have used the private index"
    history = json.dumps(engine.api.history(image.tag))  # type: ignore[no-untyped-call]
    assert TOKEN not in history
    assert TOKEN not in json.dumps(engine.images.get(image.tag).attrs)
    # Every byte of every layer and of the config, as `docker save` writes them.
    saved = subprocess.run(["docker", "save", image.tag], capture_output=True, check=True).stdout
    found = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()  # type: ignore[union-attr]
            if TOKEN.encode() in data:
                found.append(member.name)
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        if inner.isfile() and TOKEN.encode() in layer.extractfile(inner).read():  # type: ignore[union-attr]
                            found.append(f"{member.name}:{inner.name}")
    assert found == [], found
    # And the image works: the private package is really in it.
    out = engine.containers.run(image.tag, entrypoint=["/opt/venv/bin/python", "-c",
                                                       f"import {PACKAGE}; print({PACKAGE}.VALUE)"],
                                remove=True, read_only=True, cap_drop=["ALL"])
    assert out.strip() == b"42"
