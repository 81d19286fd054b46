"""Building a rendered context into an image on the Docker engine, as events.

Every run backend (local Docker, Slurm, Kubernetes) uses images built here.
The content hash is the tag: an image already built for the same context is
never rebuilt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import docker
import docker.errors
import docker.utils

from ..errors import BuildError, ContainerizeError
from ..events import BuildFinished, BuildStarted, Event
from .base import ImageRef
from .baseimage import ensure_base_image, image_exists
from .buildkit import BuildKitStreamParser
from .buildlog import BuildProgress, BuildStreamParser
from ..render.steps import instructions, step_facts, step_plan
from .engine import STREAM_FAILURES, EngineAPI, connect, engine_says, new_api_client

if TYPE_CHECKING:
    from docker.models.images import Image

    from ..render import BuildContext

EventSink = Callable[[Event], None]


class BuildCancelled(ContainerizeError):
    """The build was cancelled by the user."""


def build_image(
    context: BuildContext,
    on_event: EventSink,
    *,
    no_cache: bool = False,
    extra_tags: tuple[str, ...] = (),
    cache_from: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
    client: docker.DockerClient | None = None,
    network_mode: str | None = None,
) -> ImageRef:
    """Build ``context`` (tagged with its content hash) unless that image already exists.

    ``network_mode`` is the RUN steps' network (``none`` cuts the package index off).
    """
    own_client = client is None
    client = client or connect()
    try:
        started = time.monotonic()
        if not no_cache and image_exists(client, context.image_tag):
            image = client.images.get(context.image_tag)
            _tag_extra(image, extra_tags)
            on_event(BuildFinished(image_id=_image_id(image), tag=context.image_tag, cached=True, steps_run=0,
                                   seconds=0.0))
            return ImageRef(tag=context.image_tag, image_id=_image_id(image), cached=True)
        ensure_base_image(client, context.base_image, on_event)
        if cancel is not None and cancel.is_set():  # cancelled while queued or capturing: build nothing
            raise BuildCancelled("The build was cancelled", "Start it again when you are ready.")
        facts = step_facts(context.path)
        if context.buildkit:
            plan = step_plan(context.dockerfile, facts)
            parser: BuildProgress = BuildKitStreamParser(plan=plan)
            total = plan.total
        else:
            parser = BuildStreamParser(facts=facts)
            total = len(instructions(context.dockerfile))
        on_event(BuildStarted(tag=context.image_tag, total_steps=total))
        _stream_build(context, parser, on_event, no_cache, cache_from, cancel, network_mode)
        if cancel is not None and cancel.is_set():
            raise BuildCancelled("The build was cancelled", "Start it again when you are ready.")
        if parser.error or not image_exists(client, context.image_tag):
            step = f"step {parser.step}/{parser.total} ({parser.label or parser.instruction[:120]})" if parser.step \
                else "the start"
            tail = "\n".join(parser.tail)
            raise BuildError(
                f"The image build failed at {step}: {parser.error or 'the engine ended the build'}",
                f"Last lines of the build:\n{tail}" if tail else "Check the Dockerfile with `jupyter containerize dockerfile`.",
                step=parser.instruction,
                log_tail=tuple(parser.tail),
            )
        image = client.images.get(context.image_tag)
        _tag_extra(image, extra_tags)
        _keep_stage_cache(client, context.image_tag, parser.stage_images)
        on_event(BuildFinished(image_id=_image_id(image), tag=context.image_tag, cached=parser.steps_run == 0,
                               steps_run=parser.steps_run, seconds=round(time.monotonic() - started, 3)))
        return ImageRef(tag=context.image_tag, image_id=_image_id(image), cached=parser.steps_run == 0)
    finally:
        if own_client:
            client.close()


def _stream_build(context: BuildContext, parser: BuildProgress, on_event: EventSink, no_cache: bool,
                  cache_from: tuple[str, ...], cancel: threading.Event | None, network_mode: str | None = None) -> None:
    api = new_api_client()
    done = threading.Event()

    def hang_up_on_cancel() -> None:
        # Both builders cancel a build when its client disconnects.
        while not done.wait(0.2):
            if cancel is not None and cancel.is_set():
                stream = api.last_stream
                if stream is None:
                    continue  # the build request is not sent yet: hang up as soon as it is
                stream.close()
                return

    watcher = threading.Thread(target=hang_up_on_cancel, daemon=True)
    watcher.start()
    try:
        if context.buildkit:
            stream = _buildkit_stream(api, context, no_cache=no_cache, network_mode=network_mode)
        else:
            stream = api.build(
                path=str(context.path), tag=context.image_tag, rm=True, forcerm=True, decode=True, pull=False,
                nocache=no_cache, buildargs=dict(context.build_args) or None, cache_from=list(cache_from) or None,
                network_mode=network_mode,
            )
        for chunk in stream:
            for event in parser.feed(chunk):
                on_event(event)
        for event in parser.finish():
            on_event(event)
    except STREAM_FAILURES as e:
        if cancel is None or not cancel.is_set():
            parser.error = parser.error or engine_says(e)
    finally:
        done.set()
        api.close()


def _buildkit_stream(api: EngineAPI, context: BuildContext, *, no_cache: bool,
                     network_mode: str | None) -> Iterator[dict[str, Any]]:
    """``POST /build?version=2``: BuildKit through the engine's own API (docker-py has no flag for it).

    The context goes as a gzipped tar in the request body, which the engine hands BuildKit
    as a remote context, so no client session is needed (and none of what needs one:
    secrets, SSH, local cache export; :func:`..render.dockerfile.make_plan` avoids them).
    """
    ignore = context.path / ".dockerignore"
    exclude = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.strip().startswith("#")] if ignore.is_file() else None
    body = docker.utils.tar(context.path, exclude=exclude, gzip=True)
    params: dict[str, Any] = {"t": context.image_tag, "dockerfile": "Dockerfile", "rm": True,
                              "forcerm": True, "pull": False, "nocache": no_cache}
    if network_mode:
        params["networkmode"] = network_mode
    try:
        yield from api.build_v2(body, params)
    finally:
        body.close()


def _keep_stage_cache(client: docker.DockerClient, tag: str, stage_images: list[str]) -> None:
    """Tag the builder stage: untagged, its layers would go with the next `docker image prune`,
    and a notebook-only edit would then reinstall every package."""
    repo, _, version = tag.rpartition(":")
    for i, image_id in enumerate(stage_images):
        try:
            client.images.get(image_id).tag(repo, f"{version}-stage{i}")
        except docker.errors.DockerException:
            continue




def _image_id(image: Image) -> str:
    # docker-py's Model.id is Optional (attrs.get("Id")); an image the engine just returned always has one
    return cast(str, image.id)


def _tag_extra(image: Image, tags: tuple[str, ...]) -> None:
    for ref in tags:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        image.tag(repo, tag)
