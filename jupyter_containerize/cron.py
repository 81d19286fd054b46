"""Cron rules for schedules: the expression checked and evaluated by croniter, in a named time zone.

No I/O and no cron grammar of our own: croniter parses and steps through the expression; this
module says which of its forms a schedule takes (five fields or an ``@hourly``-style alias, since
the scheduler wakes once a minute), in which zone it is read (UTC unless ``--tz`` names an IANA
zone; croniter's rules apply across DST changes) and when a schedule is due.

A schedule stores the one occurrence it will run next (``next_run``, epoch seconds). It is due
once the clock has passed that time; it then runs that occurrence once and moves ``next_run`` to the
first occurrence after *now*: however long the server was down, one missed run is caught up, never
a burst.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import OptionError

DEFAULT_TZ = "UTC"
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@dataclass(frozen=True)
class CronRule:
    """A checked cron expression read in the time zone ``tz`` (an IANA name)."""

    expression: str
    tz: str = DEFAULT_TZ

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def next_after(self, t: float) -> int:
        """The first occurrence strictly after ``t`` (epoch seconds), as epoch seconds (whole minutes).

        Raises:
            OptionError: the expression matches no time in the next years (refused when it is checked).
        """
        from croniter import CroniterError, croniter

        start = datetime.fromtimestamp(t, self.zone)
        try:
            found: Any = croniter(self.expression, start).get_next(datetime)
        except (CroniterError, ValueError) as e:
            raise OptionError(f"The cron expression {self.expression!r} matches no time after {start:%Y-%m-%d %H:%M}"
                              f" ({e})", "Give one that recurs, e.g. '0 3 * * *'.") from None
        return int(found.timestamp())

    def local_text(self, t: float) -> str:
        """``t`` as a wall-clock time of the rule's zone: ``2025-01-02 03:00 UTC``, ``… 03:00 CET``."""
        return datetime.fromtimestamp(t, self.zone).strftime("%Y-%m-%d %H:%M %Z")


@dataclass(frozen=True)
class Due:
    """What the scheduler does with a due schedule: run ``occurrence`` once, then wait for ``next_run``."""

    occurrence: int
    next_run: int


def due(rule: CronRule, next_run: int, now: float, *, paused: bool = False) -> Due | None:
    """Whether a schedule whose next occurrence is ``next_run`` runs at ``now``, and which occurrence.

    Not paused and ``next_run`` reached: run that occurrence (however many passed since: one
    catch-up after downtime) and move on to the first occurrence after ``now``. Otherwise ``None``.
    """
    if paused or now < next_run:
        return None
    return Due(occurrence=next_run, next_run=rule.next_after(now))


def cron_rule(expression: str, tz: str | None = None, *, flag: str = "--cron") -> CronRule:
    """``expression`` (five fields, or an alias such as ``@daily``) in zone ``tz`` (default UTC), checked.

    Raises:
        OptionError: the zone is unknown, the expression is not one croniter reads as five fields or an
            alias, or it can never match (``0 0 31 2 *``).
    """
    from croniter import croniter

    zone = (tz or DEFAULT_TZ).strip()
    try:
        if not zone or "\x00" in zone:
            raise ValueError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise OptionError(f"--tz {tz!r} is not a time zone", "Give an IANA name such as UTC or Europe/Berlin.") from None
    text = " ".join(str(expression).split())
    hint = ("Write five fields, minute hour day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 every day) "
            "or '*/15 * * * *', or an alias such as @hourly or @daily.")
    fields = text.split(" ")
    if not text or "\x00" in text or (len(fields) != 5 and not (len(fields) == 1 and text.lower() in _ALIASES)):
        raise OptionError(f"{flag} {expression!r} is not a cron expression of five fields", hint)
    try:
        valid = bool(croniter.is_valid(text, strict=True))
    except Exception:  # noqa: BLE001 - croniter's own errors, and what odd text makes it raise, are all "invalid"
        valid = False
    if not valid:
        raise OptionError(f"{flag} {expression!r} is not a valid cron expression", hint)
    rule = CronRule(text, zone)
    rule.next_after(0)  # matches some time (croniter's strict check leaves out rare impossible forms)
    return rule
