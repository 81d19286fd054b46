"""The real Docker engine and the services the tests start: start scripts, labelled containers, image cleanup."""

from __future__ import annotations

import contextlib
import subprocess
from datetime import datetime, timezone

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from . import REPO

TEST_IMAGE_PREFIXES = ("jupyter-containerize/", "jc-test/", "jc-export/", "127.0.0.1:", "localhost:")
KEPT_IMAGES = ("jupyter-containerize/debian-minbase:",)  # the offline base, slow to rebuild


def start_or_fail(script: str, what: str) -> None:
    """Run ``scripts/<script>``, which starts ``what``; failing to start it fails the test, never a skip."""
    done = subprocess.run(["bash", str(REPO / "scripts" / script)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"scripts/{script} could not start {what}:\n{done.stdout}{done.stderr}", pytrace=False)


def labelled_containers(client: docker.DockerClient, job_id: str) -> list[Container]:
    """The containers (running or not) that carry ``job_id``'s label."""
    from jupyter_containerize.backends.engine import JOB_LABEL

    return list(client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}))


def image_tags(client: docker.DockerClient) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}


def remove_images_built_since(client: docker.DockerClient, started: float, tags_before: set[str]) -> None:
    """Untag what this session tagged and remove the untagged images it built (tens of GB over a few
    runs otherwise); tags that were there before, and the base images, stay."""
    for tag in sorted(image_tags(client) - tags_before):
        if tag.startswith(TEST_IMAGE_PREFIXES) and not tag.startswith(KEPT_IMAGES):
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(tag)
    for image in client.images.list(filters={"dangling": True}):
        created = datetime.fromisoformat(image.attrs["Created"][:19]).replace(tzinfo=timezone.utc).timestamp()
        if created >= started and image.id is not None:  # a classic build's untagged stages
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(image.id)
