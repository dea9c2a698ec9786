"""Weekly time windows per group, and holidays. Pure: the caller passes the local time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(text: str) -> int:
    """'07:30' -> minutes after midnight; '24:00' is allowed as the end of a day."""
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
        raise ValueError(f"not a time of day: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Window:
    """``group`` may pass on ``days`` (0 = Monday) from ``start`` to ``end`` minutes (local).

    On a holiday a window applies only when ``on_holidays`` is set (e.g. security staff)."""

    group: str
    days: frozenset[int]
    start: int
    end: int
    on_holidays: bool = False

    def contains(self, local: datetime, holiday: bool) -> bool:
        if holiday and not self.on_holidays:
            return False
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end


def local_time(now: float, tz: tzinfo | None) -> datetime:
    """``now`` in the door's time zone (None: the system's)."""
    return datetime.fromtimestamp(now, tz) if tz is not None else datetime.fromtimestamp(now)


def schedule_allows(
    groups: Iterable[str],
    windows: Iterable[Window],
    holidays: frozenset[date],
    local: datetime,
) -> bool:
    """A person passes when one of their groups has no windows at all (not scheduled) or one
    of their groups' windows contains ``local``. A person in no group is not scheduled."""
    groups = set(groups)
    if not groups:
        return True
    windows = [w for w in windows if w.group in groups]
    scheduled = {w.group for w in windows}
    if groups - scheduled:
        return True
    holiday = local.date() in holidays
    return any(w.contains(local, holiday) for w in windows)
