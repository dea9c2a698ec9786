"""Wall time for dates that is never earlier than what this door already knows.

A Raspberry Pi has no real-time clock: until NTP steps it after boot, the clock reads the last
shutdown (fake-hwclock) or 1970, i.e. behind. A clock behind would make an expired validity
window valid again, a visitor pass usable twice and a schedule admit people at night. The
door knows a lower bound of the real time: the newest time it journaled (or wrote its store)
plus the time it has been running since (monotonic). Until the wall clock reaches that bound,
``SafeWallClock`` returns the bound instead (so validity ends no later than it should,
schedules and timestamps never go back), the events journaled meanwhile are flagged
``clock: "unsynchronised"``, and the daemon journals ``clock_behind`` at start and
``clock_synchronised`` once the wall clock has caught up (docs/rules.md, Time).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Below this, a difference is rounding of stored times and file-system clock granularity (and
# NTP slews such offsets anyway), not a clock behind.
TOLERANCE = 2.0


class SafeWallClock:
    def __init__(
        self,
        floor: float,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self._floor = floor
        self._since = monotonic()

    def floor(self) -> float:
        """The lower bound of the real time: what the door knew, plus the time run since."""
        return self._floor + (self.monotonic() - self._since)

    def behind(self) -> float:
        """Seconds the wall clock is provably behind (0 once it has caught up)."""
        lag = self.floor() - self.wall()
        return lag if lag > TOLERANCE else 0.0

    def __call__(self) -> float:
        wall, floor = self.wall(), self.floor()
        return floor if floor - wall > TOLERANCE else wall
