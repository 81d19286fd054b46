"""Pushing built images to a registry (and reusing a registry image as build cache).

Credentials come from the engine's own credential store: whatever ``docker login
REGISTRY`` (or ``DockerClient.login``) saved in ``~/.docker/config.json`` or a
credential helper is what docker-py sends; this module never asks for a password.

The flow a CI machine with an empty engine follows (seed tutorial 003, "Mistake 5")::

    pull_cache(spec.build.cache_from, emit)          # layers from the last push, if any
    image = build_image(context, emit, cache_from=(spec.build.cache_from,))
    image = push_image(image, spec.build.push, emit)  # REPO:TAG and REPO:<content hash>
    push_cache(image, spec.build.cache_from, emit)    # refresh the cache tag
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import docker
import docker.errors

from ..errors import RegistryError
from ..events import Event, PushProgress
from .base import ImageRef
from .engine import connect, engine_says

EventSink = Callable[[Event], None]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_AUTH_WORDS = ("denied", "unauthorized", "authentication required", "no basic auth credentials")
_UNREACHABLE_WORDS = ("connection refused", "no such host", "i/o timeout", "dial tcp", "server gave http response",
                      "network is unreachable", "timeout exceeded", "eof")


@dataclass(frozen=True)
class ImageName:
    """``REGISTRY/REPO[:TAG]`` split into its parts (no network involved)."""

    repository: str  # with the registry host, e.g. "127.0.0.1:5000/team/model"
    tag: str = ""

    @property
    def registry(self) -> str:
        """The registry host (``docker.io`` when the first part is not a host)."""
        first, sep, _ = self.repository.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return first
        return "docker.io"

    def with_tag(self, tag: str) -> str:
        return f"{self.repository}:{tag}"


def split_reference(reference: str) -> ImageName:
    """Split ``host:port/repo:tag`` (a digest suffix is dropped); the port colon is not a tag."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = name.rpartition(":")
        return ImageName(repo, tag)
    return ImageName(name, "")


def content_tag(image: ImageRef) -> str:
    """The content-hash tag of a built image (the tag part of ``image.tag``)."""
    return split_reference(image.tag).tag or "latest"


def push_image(image: ImageRef, target: str, on_event: EventSink,
               client: docker.DockerClient | None = None) -> ImageRef:
    """Tag ``image`` as ``target`` and as ``REPO:<content hash>``, push both, return it with its digest.

    Args:
        image: the built image (its tag carries the content hash).
        target: ``REGISTRY/REPO[:TAG]``; without a tag only the content-hash tag is pushed.
        on_event: receives ``PushProgress`` events (one per layer state change, then the digest).
        client: an engine client (default: a new one from ``connect()``).

    Returns:
        The same image with ``tag`` = the pushed target tag and ``digest`` = ``REPO@sha256:…``.

    Raises:
        RegistryError: the registry refused (log in first) or cannot be reached.
    """
    name = split_reference(target)
    tags = [t for t in dict.fromkeys((name.tag, content_tag(image))) if t]
    own = client is None
    client = client or connect()
    try:
        try:
            local = client.images.get(image.image_id or image.tag)
        except docker.errors.ImageNotFound:
            raise RegistryError(f"The image {image.tag} is not on this engine, so it cannot be pushed",
                                "Build it first (jupyter containerize build).") from None
        digest = ""
        for tag in tags:
            local.tag(name.repository, tag)
            digest = _push(client, name, tag, on_event) or digest
        if not digest:
            digest = _repo_digest(client, name.repository, image.image_id or image.tag)
        if not digest:
            raise RegistryError(f"The registry {name.registry} did not report a digest for {target}",
                                "Check the registry's logs; the push may not have completed.")
        pushed = f"{name.repository}@{digest}"
        on_event(PushProgress(reference=name.with_tag(tags[0]), detail="pushed", digest=pushed))
        return replace(image, tag=name.with_tag(tags[0]), digest=pushed)
    finally:
        if own:
            client.close()


def pull_cache(reference: str | None, on_event: EventSink, client: docker.DockerClient | None = None) -> bool:
    """Pull the cache image ``reference`` if the registry has it; False (not an error) when it does not yet."""
    if not reference:
        return False
    name = split_reference(reference)
    own = client is None
    client = client or connect()
    try:
        on_event(PushProgress(reference=reference, detail="pulling build cache"))
        try:
            for chunk in client.api.pull(name.repository, tag=name.tag or "latest", stream=True, decode=True):
                error = _chunk_error(chunk)
                if error:
                    return _cache_miss(reference, error, on_event)
        except docker.errors.NotFound as e:
            return _cache_miss(reference, engine_says(e), on_event)
        except docker.errors.APIError as e:
            return _cache_miss(reference, engine_says(e), on_event)
        on_event(PushProgress(reference=reference, detail="build cache pulled"))
        return True
    finally:
        if own:
            client.close()


def push_cache(image: ImageRef, reference: str | None, on_event: EventSink,
               client: docker.DockerClient | None = None) -> str:
    """Tag ``image`` as the cache ``reference`` and push it; returns the cache digest ("" when none asked)."""
    if not reference:
        return ""
    name = split_reference(reference)
    own = client is None
    client = client or connect()
    try:
        client.images.get(image.image_id or image.tag).tag(name.repository, name.tag or "latest")
        return _push(client, name, name.tag or "latest", on_event)
    finally:
        if own:
            client.close()


def _cache_miss(reference: str, error: str, on_event: EventSink) -> bool:
    kind = _classify(error)
    if kind == "auth":
        raise _auth_error(split_reference(reference).registry, error)
    if kind == "unreachable":
        raise _unreachable_error(split_reference(reference).registry, error)
    on_event(PushProgress(reference=reference, detail="no build cache yet (first build)"))
    return False


def _push(client: docker.DockerClient, name: ImageName, tag: str, on_event: EventSink) -> str:
    """Push one tag, forwarding progress; return the ``sha256:…`` digest the registry reported."""
    reference = name.with_tag(tag)
    digest = ""
    try:
        stream: Iterable[dict[str, Any]] = client.api.push(name.repository, tag=tag, stream=True, decode=True)
        last: dict[str, str] = {}
        for chunk in stream:
            error = _chunk_error(chunk)
            if error:
                raise _error_for(name.registry, error)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and _DIGEST.fullmatch(str(aux.get("Digest", ""))):
                digest = str(aux["Digest"])
                continue
            status = str(chunk.get("status", ""))
            found = _DIGEST.search(status) if "digest:" in status else None
            if found:
                digest = found.group(0)
            layer = str(chunk.get("id", ""))
            # Byte counters change many times a second; report each layer's state changes only.
            if status and last.get(layer) != status:
                last[layer] = status
                detail = f"{layer}: {status}" if layer and layer != tag else status
                on_event(PushProgress(reference=reference, detail=detail))
    except docker.errors.APIError as e:
        raise _error_for(name.registry, engine_says(e)) from None
    except docker.errors.DockerException as e:
        raise _unreachable_error(name.registry, engine_says(e)) from None
    return digest


def _chunk_error(chunk: dict[str, Any]) -> str:
    detail = chunk.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    return str(chunk.get("error") or "")


def _classify(message: str) -> str:
    low = message.lower()
    if any(w in low for w in _AUTH_WORDS):
        return "auth"
    if any(w in low for w in _UNREACHABLE_WORDS):
        return "unreachable"
    return "other"


def _error_for(registry: str, message: str) -> RegistryError:
    kind = _classify(message)
    if kind == "auth":
        return _auth_error(registry, message)
    if kind == "unreachable":
        return _unreachable_error(registry, message)
    return RegistryError(f"The push to {registry} failed: {engine_says(message)}", "Check the registry and the image name.")


def _auth_error(registry: str, message: str) -> RegistryError:
    return RegistryError(f"The registry {registry} refused the request ({engine_says(message)})",
                         f"Run `docker login {registry}` first (the engine's credential store is used).")


def _unreachable_error(registry: str, message: str) -> RegistryError:
    return RegistryError(f"The registry {registry} cannot be reached ({engine_says(message)})",
                         "Check that it runs and that the address and port are right.")


def _repo_digest(client: docker.DockerClient, repository: str, image: str) -> str:
    """The digest the engine recorded for ``repository`` after a push (a fallback)."""
    try:
        digests = client.images.get(image).attrs.get("RepoDigests") or []
    except docker.errors.DockerException:
        return ""
    for entry in digests:
        repo, _, digest = str(entry).partition("@")
        if repo == repository and _DIGEST.fullmatch(digest):
            return digest
    return ""

