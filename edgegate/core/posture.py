"""Door postures by the clock: free access, card only, card+PIN and lockdown windows.

Pure: the caller passes the local time and what it remembers of the first arrival. A door's
posture is the one of the first configured window that contains the local time (config order
is priority order, so a holiday lockdown listed first wins over a weekday free window), or
``card`` outside every window.

**First to arrive** (as Kisi and ZKAccess do it): a free-access window that names groups in
``first_to_arrive`` opens only once a person of one of those groups has been granted during
that occurrence of the window, so a lobby does not stand open on a snow day when nobody came.
The door remembers the occurrence that was opened by its start time (``opened_at``), so the
next day's occurrence starts closed again without anyone resetting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum


class Posture(StrEnum):
    FREE = "free"  # the lock is held released: anyone passes (reads are still journaled)
    CARD = "card"  # the normal posture: a credential is decided as usual
    CARD_PIN = "card_pin"  # a card must be followed by its holder's PIN
    LOCKDOWN = "lockdown"  # only the lockdown groups pass


@dataclass(frozen=True, slots=True)
class PostureWindow:
    """``posture`` on ``days`` (0 = Monday) from ``start`` to ``end`` minutes, local time.

    ``end`` may be 1440 (midnight). On a holiday the window applies only when ``on_holidays``
    is set; a window with ``only_holidays`` applies on holidays and nowhere else."""

    posture: Posture
    days: frozenset[int]
    start: int
    end: int
    on_holidays: bool = False
    only_holidays: bool = False
    first_to_arrive: frozenset[str] = frozenset()

    def applies(self, local: datetime, holiday: bool) -> bool:
        if self.only_holidays and not holiday:
            return False
        if holiday and not (self.on_holidays or self.only_holidays):
            return False
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end

    def occurrence(self, local: datetime) -> datetime:
        """The local start of the occurrence of this window that contains ``local``."""
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(minutes=self.start)


@dataclass(frozen=True, slots=True)
class PostureNow:
    """The posture in force, and why: the window (None outside every window) and, for a
    first-to-arrive window still waiting, ``waiting`` with the groups that can open it."""

    posture: Posture
    window: PostureWindow | None = None
    occurrence: datetime | None = None
    waiting: bool = False

    def as_state(self) -> dict[str, object]:
        """The posture as the door's ``state`` message carries it."""
        state: dict[str, object] = {"posture": str(self.posture)}
        if self.window is not None:
            state["posture_until"] = f"{self.window.end // 60:02d}:{self.window.end % 60:02d}"
        if self.waiting and self.window is not None:
            state["first_to_arrive"] = sorted(self.window.first_to_arrive)
        return state


def active_window(
    windows: Sequence[PostureWindow], holidays: frozenset[date], local: datetime
) -> PostureWindow | None:
    """The first window (config order) that applies at ``local``."""
    holiday = local.date() in holidays
    for window in windows:
        if window.applies(local, holiday):
            return window
    return None


def posture_at(
    windows: Sequence[PostureWindow],
    holidays: frozenset[date],
    local: datetime,
    opened_at: datetime | None = None,
) -> PostureNow:
    """The door's posture at ``local``. ``opened_at`` is the occurrence start that a first
    arrival opened (see ``first_arrival``); a first-to-arrive free window whose current
    occurrence was not opened is ``card`` (waiting) until someone of its groups arrives."""
    window = active_window(windows, holidays, local)
    if window is None:
        return PostureNow(Posture.CARD)
    occurrence = window.occurrence(local)
    if window.posture is Posture.FREE and window.first_to_arrive and opened_at != occurrence:
        return PostureNow(Posture.CARD, window, occurrence, waiting=True)
    return PostureNow(window.posture, window, occurrence)


def first_arrival(now: PostureNow, granted_groups: Iterable[str]) -> datetime | None:
    """After a grant: the occurrence this grant opens (to remember as ``opened_at``), or None
    when the grant opens nothing (no waiting window, or the person is in none of its groups)."""
    if not now.waiting or now.window is None:
        return None
    if now.window.first_to_arrive & frozenset(granted_groups):
        return now.occurrence
    return None
