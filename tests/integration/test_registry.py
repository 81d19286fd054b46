"""Pushing to a REAL registry (Debian's docker-registry 2.8 on loopback), with and without htpasswd auth."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest

from jupyter_containerize.backends.base import ImageRef
from jupyter_containerize.backends.builder import build_image
from jupyter_containerize.backends.registry import pull_cache, push_cache, push_image
from jupyter_containerize.errors import RegistryError
from jupyter_containerize.events import BuildFinished, Event, LayerCached, PushProgress
from tests.support.engine import start_or_fail

pytestmark = pytest.mark.engine
PLAIN = "127.0.0.1:" + os.environ.get("JC_REGISTRY_PORT", "5000")
AUTH = "127.0.0.1:" + os.environ.get("JC_REGISTRY_AUTH_PORT", "5001")
USER = os.environ.get("JC_REGISTRY_USER", "jc")
PASSWORD = os.environ.get("JC_REGISTRY_PASSWORD", "jc-secret")
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def registries() -> None:
    """Both loopback registries; failing to start them fails the tests (never a skip)."""
    start_or_fail("start-registry.sh", "the registries")


@pytest.fixture()
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private credential store (what `docker login` writes), so no test sees another's login."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    (tmp_path / "docker-config").mkdir()
    return tmp_path / "docker-config"


@pytest.fixture()
def small_image(engine: docker.DockerClient, base_image: str) -> Iterator[ImageRef]:
    """A fresh two-layer image, tagged like the builder tags (REPO:<content hash>)."""
    tag = f"jc-test/registry:{uuid.uuid4().hex[:16]}"
    image, _ = engine.images.build(fileobj=_dockerfile(base_image, uuid.uuid4().hex), tag=tag, rm=True)
    yield ImageRef(tag=tag, image_id=str(image.id))
    engine.images.remove(str(image.id), force=True)


def _dockerfile(base: str, nonce: str) -> Any:
    import io

    return io.BytesIO(f"FROM {base}\nRUN echo {nonce} > /nonce\n".encode())


def _registry_get(url: str, accept: str = MANIFEST, auth: tuple[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    if auth:
        import base64

        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(resp.headers), resp.read()


def test_push_tags_both_and_reports_the_registry_digest(registries: None, engine: docker.DockerClient,
                                                       small_image: ImageRef) -> None:
    events: list[Event] = []
    repo = f"{PLAIN}/jc-test/push-{uuid.uuid4().hex[:8]}"
    pushed = push_image(small_image, f"{repo}:v1.0", events.append)

    content_tag = small_image.tag.rsplit(":", 1)[1]
    assert pushed.tag == f"{repo}:v1.0"
    assert pushed.digest.startswith(f"{repo}@sha256:") and pushed.reference == pushed.digest
    progress = [e for e in events if isinstance(e, PushProgress)]
    assert any("Pushed" in e.detail or "Layer already exists" in e.detail for e in progress)
    assert progress[-1].digest == pushed.digest
    _, body = _registry_get(f"http://{PLAIN}/v2/{repo.split('/', 1)[1]}/tags/list", accept="application/json")
    assert sorted(json.loads(body)["tags"]) == sorted(["v1.0", content_tag])
    headers, _ = _registry_get(f"http://{PLAIN}/v2/{repo.split('/', 1)[1]}/manifests/v1.0")
    assert headers["Docker-Content-Digest"] == pushed.digest.split("@", 1)[1]

    # A later run names the image by digest: pullable on an engine that lost every tag.
    for t in (f"{repo}:v1.0", f"{repo}:{content_tag}"):
        engine.images.remove(t)
    pulled = engine.images.pull(pushed.digest)
    assert pulled.id == small_image.image_id


def test_push_without_tag_pushes_the_content_hash(registries: None, small_image: ImageRef) -> None:
    repo = f"{PLAIN}/jc-test/hash-{uuid.uuid4().hex[:8]}"
    pushed = push_image(small_image, repo, lambda e: None)
    assert pushed.tag == f"{repo}:{small_image.tag.rsplit(':', 1)[1]}"
    assert "@sha256:" in pushed.digest


def test_auth_registry_refuses_then_accepts_after_docker_login(registries: None, docker_config: Path,
                                                              small_image: ImageRef) -> None:
    target = f"{AUTH}/jc-test/auth-{uuid.uuid4().hex[:8]}:v1"
    with pytest.raises(RegistryError) as refused:
        push_image(small_image, target, lambda e: None)
    assert f"docker login {AUTH}" in str(refused.value)

    # The engine's credential store: `docker login` writes DOCKER_CONFIG/config.json; push_image's client reads it.
    login = subprocess.run(["docker", "login", "--username", USER, "--password-stdin", AUTH], check=False, input=PASSWORD,
                           capture_output=True, text=True, env={**os.environ, "DOCKER_CONFIG": str(docker_config)})
    assert login.returncode == 0, login.stderr
    pushed = push_image(small_image, target, lambda e: None)
    headers, _ = _registry_get(f"http://{AUTH}/v2/{target.split('/', 1)[1].rsplit(':', 1)[0]}/manifests/v1",
                               auth=(USER, PASSWORD))
    assert headers["Docker-Content-Digest"] == pushed.digest.split("@", 1)[1]


def test_client_login_is_used_and_bad_password_is_a_clear_error(registries: None, docker_config: Path,
                                                                engine: docker.DockerClient, small_image: ImageRef) -> None:
    from jupyter_containerize.backends.engine import connect

    client = connect()
    try:
        with pytest.raises(docker.errors.APIError):
            client.login(USER, "wrong", registry=f"http://{AUTH}")
        client.login(USER, PASSWORD, registry=AUTH)
        pushed = push_image(small_image, f"{AUTH}/jc-test/login-{uuid.uuid4().hex[:8]}:v2", lambda e: None,
                            client=client)
        assert "@sha256:" in pushed.digest
    finally:
        client.close()


def test_unreachable_registry_is_a_clear_error(engine: docker.DockerClient, small_image: ImageRef) -> None:
    with pytest.raises(RegistryError) as e:
        push_image(small_image, "127.0.0.1:1/jc-test/nowhere:v1", lambda e: None)
    assert "cannot be reached" in str(e.value) and "127.0.0.1:1" in str(e.value)


def test_cache_from_lets_an_empty_engine_reuse_layers(registries: None, engine: docker.DockerClient,
                                                     base_image: str, tmp_path: Path) -> None:
    """CI with an empty engine: pull the cache tag, build with cache_from, no step runs again."""
    nonce = uuid.uuid4().hex
    dockerfile = f"FROM {base_image}\nRUN echo {nonce} > /nonce && date +%s%N > /built-at\nCOPY app.txt /app.txt\n"
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "app.txt").write_text("hello\n")
    context = SimpleNamespace(path=tmp_path, dockerfile=dockerfile, base_image=base_image, build_args={}, buildkit=False,
                              image_tag=f"jc-test/cache:{nonce[:16]}")
    cache_ref = f"{PLAIN}/jc-test/cache-{nonce[:8]}:cache"

    assert pull_cache(cache_ref, lambda e: None) is False  # first build: no cache yet, not an error
    first = build_image(context, lambda e: None, cache_from=(cache_ref,))  # type: ignore[arg-type]
    built_at = engine.containers.run(first.image_id, ["cat", "/built-at"], remove=True)
    assert push_cache(first, cache_ref, lambda e: None).startswith("sha256:")

    # Forget every local trace of the build: the engine is now "empty" but for the base image.
    engine.images.remove(context.image_tag, force=True)
    engine.images.remove(cache_ref, force=True)
    assert not engine.images.list(filters={"reference": context.image_tag})

    events: list[Event] = []
    assert pull_cache(cache_ref, events.append) is True
    second = build_image(context, events.append, cache_from=(cache_ref,))  # type: ignore[arg-type]
    # Every step after FROM comes from the pulled cache (RUN and COPY: two LayerCached events).
    assert sum(isinstance(e, LayerCached) for e in events) == 2
    assert [e for e in events if isinstance(e, BuildFinished)]
    assert engine.containers.run(second.image_id, ["cat", "/built-at"], remove=True) == built_at
    engine.images.remove(second.image_id, force=True)
