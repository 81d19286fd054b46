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

_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
