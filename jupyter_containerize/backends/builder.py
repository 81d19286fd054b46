"""Building a rendered context into an image on the Docker engine, as events.

Every run backend (local Docker, Slurm, Kubernetes) uses images built here.
The content hash is the tag: an image already built for the same context is
never rebuilt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import docker
import docker.errors

from ..errors import BuildError, ContainerizeError
from ..events import BuildFinished, BuildStarted, Event
from .base import ImageRef
from .baseimage import ensure_base_image, image_exists
from .buildlog import BuildStreamParser
from .engine import connect, new_api_client

if TYPE_CHECKING:
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
            on_event(BuildFinished(image_id=image.id, tag=context.image_tag, cached=True, steps_run=0, seconds=0.0))
            return ImageRef(tag=context.image_tag, image_id=image.id, cached=True)
        ensure_base_image(client, context.base_image, on_event)
        if cancel is not None and cancel.is_set():  # cancelled while queued or capturing: build nothing
            raise BuildCancelled("The build was cancelled", "Start it again when you are ready.")
        total = sum(1 for line in context.dockerfile.splitlines() if _is_instruction(line))
        on_event(BuildStarted(tag=context.image_tag, total_steps=total))
        parser = _stream_build(context, on_event, no_cache, cache_from, cancel, network_mode)
        if cancel is not None and cancel.is_set():
            raise BuildCancelled("The build was cancelled", "Start it again when you are ready.")
        if parser.error or not image_exists(client, context.image_tag):
            step = f"step {parser.step}/{parser.total} ({parser.instruction[:120]})" if parser.step else "the start"
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
        on_event(BuildFinished(image_id=image.id, tag=context.image_tag, cached=parser.steps_run == 0,
                               steps_run=parser.steps_run, seconds=round(time.monotonic() - started, 3)))
        return ImageRef(tag=context.image_tag, image_id=image.id, cached=parser.steps_run == 0)
    finally:
        if own_client:
            client.close()


def _stream_build(context: BuildContext, on_event: EventSink, no_cache: bool, cache_from: tuple[str, ...],
                  cancel: threading.Event | None, network_mode: str | None = None) -> BuildStreamParser:
    api = new_api_client()
    parser = BuildStreamParser()
    done = threading.Event()

    def hang_up_on_cancel() -> None:
        # The classic builder cancels a build when its client disconnects.
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
    except (docker.errors.DockerException, OSError, ValueError, AttributeError) as e:
        if cancel is None or not cancel.is_set():
            parser.error = parser.error or str(e).strip()[:300]
    finally:
        done.set()
        api.close()
    return parser


def _keep_stage_cache(client: docker.DockerClient, tag: str, stage_images: list[str]) -> None:
    """Tag the builder stage: untagged, its layers would go with the next `docker image prune`,
    and a notebook-only edit would then reinstall every package."""
    repo, _, version = tag.rpartition(":")
    for i, image_id in enumerate(stage_images):
        try:
            client.images.get(image_id).tag(repo, f"{version}-stage{i}")
        except docker.errors.DockerException:
            continue


def _is_instruction(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#") and s.split()[0].isupper() and not line.startswith((" ", "\t"))


def _tag_extra(image: docker.models.images.Image, tags: tuple[str, ...]) -> None:
    for ref in tags:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        image.tag(repo, tag)
