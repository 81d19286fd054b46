"""Validation and quoting of every value that reaches a Dockerfile.

Nothing is ever pasted into an instruction unchecked: identifiers are matched
against strict patterns (and refused otherwise), free text is quoted with Docker's
own escaping, and paths only appear in JSON (exec-form) arrays. Free text with
control characters is refused or, for labels, replaced, because a newline in a
Dockerfile starts a new instruction.
"""

from __future__ import annotations

import json
import re

from ..errors import OptionError

# Docker's reference grammar (distribution/reference), simplified: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    rf"^(?:(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!-]*$")
_PYTHON_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_image_ref(ref: str) -> str:
    """Return ``ref`` if it is a well-formed, pinned image reference.

    Raises:
        OptionError: malformed, or without a tag or digest, or tagged ``latest``.
    """
    m = _IMAGE_REF.match(ref)
    if not m or len(ref) > 255:
        raise OptionError(f"The base image {ref!r} is not a valid image reference", "Use a form like python:3.11.7-slim-bookworm.")
    if not m.group("tag") and not m.group("digest"):
        raise OptionError(f"The base image {ref!r} has no tag", "Pin it with an exact tag or digest, never the implicit latest.")
    if m.group("tag") == "latest" and not m.group("digest"):
        raise OptionError(f"The base image {ref!r} uses the 'latest' tag", "Pin an exact tag so rebuilds are reproducible.")
    return ref


def validate_debian_package(name: str) -> str:
    """Return ``name`` if it is a valid Debian package name."""
    if not _DEBIAN_PACKAGE.match(name):
        raise OptionError(f"{name!r} is not a valid Debian package name", "Check the captured system packages.")
    return name


def validate_arg_name(name: str) -> str:
    """Return ``name`` if it can be a Dockerfile ARG name."""
    if not _ARG_NAME.match(name):
        raise OptionError(f"{name!r} is not a valid build-arg name", "Use letters, digits and underscores.")
    return name


def validate_version(version: str, what: str) -> str:
    """Return ``version`` if it only has characters a version can have."""
    if not _VERSION.match(version):
        raise OptionError(f"The {what} version {version!r} is not a plain version string", "")
    return version


def validate_python_version(version: str) -> str:
    """Return ``version`` if it is an exact ``X.Y.Z``."""
    if not _PYTHON_VERSION.match(version):
        raise OptionError(f"The Python version {version!r} is not an exact X.Y.Z", "Capture from a real interpreter.")
    return version


def validate_uid(uid: int) -> int:
    """Return ``uid`` if it is an unprivileged user id."""
    if isinstance(uid, bool) or not isinstance(uid, int) or not 1 <= uid <= 2**31 - 2:
        raise OptionError(f"The UID {uid!r} is not usable for the container user", "Give a number from 1 to 2147483646; 0 (root) is never used.")
    return uid


def json_array(*items: str) -> str:
    """An exec-form JSON array; non-ASCII and control characters become ``\\u`` escapes."""
    return json.dumps(list(items), ensure_ascii=True)


def quoted(value: str, what: str) -> str:
    """A double-quoted word for ``ENV``/``LABEL``: Docker unescapes ``\\\\``, ``\\"`` and ``\\$``.

    Raises:
        OptionError: the value has a control character (a newline would end the instruction).
    """
    if _CONTROL.search(value):
        raise OptionError(f"The {what} contains a control character and cannot be written to a Dockerfile", "")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def label_text(value: str) -> str:
    """A safe label value for free text (e.g. a notebook name): control characters become ``?``."""
    return quoted(_CONTROL.sub("?", value), "label")


def comment_text(value: str) -> str:
    """Text safe inside a ``#`` comment line."""
    return _CONTROL.sub("?", value)
