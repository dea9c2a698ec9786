"""Anti-passback per area: a person who is in cannot come in again before going out.

Pure: presence is what the store remembers for (person, area); the caller saves the new
presence in the same transaction as the decision's journal row, so it survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PassbackMode(StrEnum):
    OFF = "off"
    HARD = "hard"  # deny a second entry (or exit) in a row
    SOFT = "soft"  # grant, but flag the event
    TIMED = "timed"  # deny, but presence expires after passback_minutes


@dataclass(frozen=True, slots=True)
class Presence:
    """Where the store last saw a person in an area: ``state`` "in" or "out" at ``ts``."""

    area: str
    state: str
    ts: float


def violates(
    mode: PassbackMode,
    presence: Presence | None,
    direction: str,
    now: float,
    expire_seconds: float,
) -> bool:
    """True when passing ``direction`` now would repeat the person's last passage."""
    if mode is PassbackMode.OFF or presence is None:
        return False
    if mode is PassbackMode.TIMED and now - presence.ts >= expire_seconds:
        return False
    return presence.state == direction
