"""The one place that says what a valid value is: sizes, durations, image references, UIDs, versions, names.

Every front end (the option parser), the Dockerfile renderer and the backends (Slurm's
``#SBATCH`` lines, Kubernetes manifests) check and convert values here, so a value one of
them accepts is never refused, or read differently, by another. Each check returns the value
(normalised where that is harmless) or raises :class:`~.errors.OptionError` with one sentence.
"""

from __future__ import annotations

import math
import re
import unicodedata

from .errors import OptionError

# Docker's reference grammar (distribution/reference), simplified: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    rf"^(?:(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?)/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([bkmgt]?)$", re.IGNORECASE)
_UNIT_MIB = {"b": 1 / 2**20, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}
_TIME = re.compile(r"^(?:(\d+)-)?(\d{1,3})(?::(\d\d))?(?::(\d\d))?$")  # Slurm's: M, M:S, H:M:S, D-H[:M[:S]]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!-]*$")
_PYTHON_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
MAX_UID = 2**31 - 2
MAX_JOB_NAME = 100


def image_ref(ref: str, what: str, *, pinned: bool = False) -> str:
    """``ref`` if it is a well-formed image reference; ``pinned``: with a tag or digest, never ``latest``."""
    m = _IMAGE_REF.match(ref)
    if not m or len(ref) > 255:
        raise OptionError(f"{what} {ref!r} is not an image reference",
                          "Write it like registry.example:5000/team/image:tag or python:3.11.7-slim-bookworm.")
    if pinned and not m.group("tag") and not m.group("digest"):
        raise OptionError(f"{what} {ref!r} has no tag", "Pin it with an exact tag or digest, never the implicit latest.")
    if pinned and m.group("tag") == "latest" and not m.group("digest"):
        raise OptionError(f"{what} {ref!r} uses the 'latest' tag", "Pin an exact tag so rebuilds are reproducible.")
    return ref


def _size(value: str, flag: str) -> re.Match[str]:
    m = _SIZE.match(value.strip())
    if m is None:
        raise OptionError(f"{flag} {value!r} is not a size", f"Write it like {flag} 512m or {flag} 2g.")
    return m


def size(value: str, flag: str) -> str:
    """A Docker size (``512m``, ``2g``, ``1.5t``; bytes without a unit), lower-cased."""
    return _size(value, flag).group(0).lower()


def size_mib(value: str, flag: str = "--memory") -> int:
    """A Docker size as whole MiB (rounded up, at least 1), for ``--mem`` and Kubernetes limits."""
    m = _size(value, flag)
    return max(1, math.ceil(float(m.group(1)) * _UNIT_MIB[m.group(2).lower() or "b"]))


def _duration(value: str, flag: str) -> re.Match[str]:
    m = _TIME.match(value.strip())
    if m is None:
        raise OptionError(f"{flag} {value!r} is not a duration", f"Write it like {flag} 01:30:00.")
    return m


def duration(value: str, flag: str = "--time") -> str:
    """A Slurm-style wall time: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
    return _duration(value, flag).group(0)


def duration_seconds(value: str, flag: str = "--time") -> int:
    """A Slurm-style wall time in seconds."""
    days, a, b, c = (int(g) if g else None for g in _duration(value, flag).groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        return days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:
        return (a or 0) * 3600 + (b or 0) * 60 + c
    if b is not None:
        return (a or 0) * 60 + b
    return (a or 0) * 60


_AGE = re.compile(r"^(\d{1,9}(?:\.\d{1,6})?)([smhdw])$", re.IGNORECASE)
_AGE_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_AGE_SECONDS = 100 * 365 * 86400


def age_seconds(value: str, flag: str = "--older-than") -> float:
    """An age in seconds: ``30d``, ``12h``, ``2w``, ``90m``, ``45s`` (``m`` is minutes, as in Docker's
    ``until``), or a wall time with a ``-`` or ``:`` (``1-12``, ``36:00:00``: :func:`duration_seconds`)."""
    text = value.strip()
    m = _AGE.match(text)
    if m is not None:
        seconds = float(m.group(1)) * _AGE_UNIT_SECONDS[m.group(2).lower()]
    elif ("-" in text or ":" in text) and _TIME.match(text):
        seconds = float(duration_seconds(text, flag))
    else:
        raise OptionError(f"{flag} {value!r} is not an age", f"Write it like {flag} 30d (units s, m, h, d, w).")
    if seconds > MAX_AGE_SECONDS:
        raise OptionError(f"{flag} {value!r} is more than 100 years", f"Give a shorter age, e.g. {flag} 365d.")
    return seconds


def time_limit(value: str, flag: str = "--timeout") -> str:
    """A job's or a cell's time limit, as a Slurm wall time (``D-HH:MM:SS``) whatever form it was given in:
    ``2h``, ``30m``, ``90s``, ``1d`` or a wall time ``01:30:00`` / ``1-12``. At least one second."""
    try:
        seconds = math.ceil(age_seconds(value, flag))
    except OptionError:
        raise OptionError(f"{flag} {value!r} is not a time limit",
                          f"Write it like {flag} 2h (units s, m, h, d) or {flag} 01:30:00.") from None
    if seconds < 1:
        raise OptionError(f"{flag} {value!r} is no time at all", f"Give at least one second, e.g. {flag} 30m.")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def notify_target(value: str, flag: str = "--notify") -> str:
    """A webhook URL (``http(s)://host/…``) or a command line (split like a shell would, run without one)."""
    import shlex
    from urllib.parse import urlsplit

    text = value.strip()
    if urlsplit(text).scheme in ("http", "https"):
        if not urlsplit(text).hostname:
            raise OptionError(f"{flag} {value!r} is a URL without a host", "Give e.g. https://hooks.example/x.")
        return text
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise OptionError(f"{flag} {value!r} cannot be split into a command ({e})",
                          "Close the quote, or give a webhook URL.") from None
    if not argv:
        raise OptionError(f"{flag} is empty", "Give a command to run or a webhook URL.")
    return text


def keep_count(value: int, flag: str = "--keep-last") -> int:
    """How many of the newest jobs of each notebook to keep: 1 or more (0 would keep none of them)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{flag} {value!r} is not a number of jobs to keep",
                          f"Give 1 or more (to keep jobs by age alone, give --older-than without {flag}).")
    return value


def uid(value: int, flag: str = "--uid") -> int:
    """An unprivileged user id: 1 to 2147483646 (0, root, is never used)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UID:
        raise OptionError(f"{flag} {value!r} is not allowed",
                          f"Give an unprivileged UID from 1 to {MAX_UID}; jobs never run as root.")
    return value


def name(value: str, what: str) -> str:
    """A name that no shell, Slurm or engine expands: letters, digits, ``._-``, at most 128."""
    if not _NAME.match(value):
        raise OptionError(f"{what} {value!r} is not a valid name", "Use letters, digits, '.', '_' and '-'.")
    return value


def job_name(value: str, what: str = "--name") -> str:
    """A job's name as people write it (spaces allowed): at most 100 printable characters, trimmed."""
    text = value.strip()
    if not text or len(text) > MAX_JOB_NAME or any(unicodedata.category(c).startswith("C") for c in text):
        raise OptionError(f"{what} {value[:120]!r} is not a job name",
                          f"Give 1 to {MAX_JOB_NAME} printable characters, e.g. {what} baseline.")
    return text


def version(value: str, what: str) -> str:
    """A plain version string (digits, letters, ``.+!-``)."""
    if not _VERSION.match(value):
        raise OptionError(f"The {what} version {value!r} is not a plain version string",
                          "Check the installed package's metadata.")
    return value


def python_version(value: str) -> str:
    """An exact ``X.Y.Z``."""
    if not _PYTHON_VERSION.match(value):
        raise OptionError(f"The Python version {value!r} is not an exact X.Y.Z", "Capture from a real interpreter.")
    return value
