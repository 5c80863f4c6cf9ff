"""Cron expressions in IANA time zones: when does a schedule fire next.

Parsing and the field arithmetic are croniter's; this module adds time zones with the
DST rules users expect, working on wall-clock (naive) times and mapping each to one
instant:

- a wall-clock time skipped by a spring-forward fires once, at the first instant after
  the gap (02:30 on the night clocks jump 02:00 -> 03:00 fires at 03:00);
- a wall-clock time repeated by a fall-back fires once, at its first occurrence;
- several skipped times that map to the same instant fire once.

Expressions have 5 fields (minute hour day month weekday: wildcards, ranges, steps,
lists, names such as MON or JAN), ``@hourly``-style aliases, or 6 fields with the
seconds first (``*/10 * * * * *``: every 10 seconds), as robfig/cron and Quartz write it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bananas.errors import ConfigurationError

#: Most wall-clock candidates looked at for one answer (a repeated hour of seconds).
_MAX_CANDIDATES = 10_000


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        ConfigurationError: unknown zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None


class CronExpr:
    """A parsed cron expression in a time zone.

    Args:
        expr: the expression (5 or 6 fields, or an alias such as ``@daily``).
        tz: IANA time zone name; wall-clock times are read in it.

    Raises:
        ConfigurationError: the expression or the zone is invalid.
    """

    def __init__(self, expr: str, tz: str = "UTC") -> None:
        self.expr = " ".join(expr.split())
        self.tz_name = tz
        self.tz = zone(tz)
        fields = self.expr.split(" ")
        self._seconds = len(fields) == 6
        if len(fields) not in (5, 6) and not (len(fields) == 1 and self.expr.startswith("@")):
            raise ConfigurationError(f"cron expression {expr!r} must have 5 or 6 fields (or be an alias like @hourly)")
        bad: tuple[type[Exception], ...] = (*_croniter_errors(), ValueError, KeyError)
        try:
            _croniter()(self.expr, datetime(2000, 1, 1), second_at_beginning=self._seconds).get_next(datetime)
        except bad as exc:
            raise ConfigurationError(f"invalid cron expression {expr!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"CronExpr({self.expr!r}, tz={self.tz_name!r})"

    def _wall(self, instant: float) -> datetime:
        return datetime.fromtimestamp(instant, self.tz).replace(tzinfo=None)

    def _instant(self, wall: datetime) -> float:
        """The instant a wall-clock time fires at: its first occurrence, or the end of the
        gap when a spring-forward skipped it."""
        first = wall.replace(tzinfo=self.tz, fold=0)
        if first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == wall:
            return first.timestamp()
        # Skipped: the gap lies between the two readings; find its end to the second.
        lo = int(wall.replace(tzinfo=self.tz, fold=1).timestamp())
        hi = int(first.timestamp()) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._wall(mid) >= wall:
                hi = mid
            else:
                lo = mid + 1
        return float(lo)

    def next_after(self, after: float) -> float:
        """The first firing instant (unix seconds) strictly after ``after``."""
        start = self._wall(after)
        it = _croniter()(self.expr, start, second_at_beginning=self._seconds)
        for _ in range(_MAX_CANDIDATES):
            wall: datetime = it.get_next(datetime)
            instant = self._instant(wall)
            if instant > after:
                return instant
            # ``after`` is in the second pass of a repeated hour: its wall times already
            # fired. Move on in wall-clock steps (bounded by the candidate cap).
        start = self._wall(after + 7200)
        return self._instant(_croniter()(self.expr, start, second_at_beginning=self._seconds).get_next(datetime))

    def between(self, start: float, end: float, limit: int) -> list[float]:
        """Firing instants in ``[start, end]``, at most ``limit`` of them (the earliest)."""
        out: list[float] = []
        t = self.next_after(start - 1e-6)
        while t <= end and len(out) < limit:
            out.append(t)
            t = self.next_after(t)
        return out

    def prev_before(self, before: float) -> float:
        """The last firing instant strictly before ``before``."""
        it = _croniter()(self.expr, self._wall(before) + timedelta(seconds=1), second_at_beginning=self._seconds)
        for _ in range(_MAX_CANDIDATES):
            instant = self._instant(it.get_prev(datetime))
            if instant < before:
                return instant
        raise ConfigurationError(f"no firing time of {self.expr!r} found before {before}")


def _croniter() -> Any:
    """croniter, imported on first use: with dateutil it is several MiB that a worker
    without schedules never needs."""
    from croniter import croniter

    return croniter


def _croniter_errors() -> tuple[type[Exception], ...]:
    from croniter import CroniterBadCronError, CroniterBadDateError

    return (CroniterBadCronError, CroniterBadDateError)
