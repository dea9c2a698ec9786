"""The two-person rule: two different authorised people within N seconds open the door.

Pure: the caller keeps the ``Pending`` first person between reads (in memory: a restart in
the middle of a two-person entry only makes the first person badge again, which is the safe
side). The first authorised read is denied with reason ``two_person`` and waits; a read by a
*different* authorised person within ``seconds`` of it grants and clears the wait; the same
person again only restarts their own wait. A denied read (unknown card, wrong zone...) never
counts as either person: only reads the other rules granted reach this rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pending:
    """The first person of a two-person entry, waiting since ``since`` (monotonic seconds:
    a wall-clock step must neither stretch nor cut the wait)."""

    person_id: str
    since: float


@dataclass(frozen=True, slots=True)
class TwoPersonResult:
    granted: bool
    pending: Pending | None
    partner: str | None = None  # on a grant: the first person, carried in the event


def two_person(
    pending: Pending | None, person_id: str, mono_now: float, seconds: float
) -> TwoPersonResult:
    """Step the rule with an authorised read by ``person_id`` at ``mono_now``."""
    live = pending is not None and 0 <= mono_now - pending.since <= seconds
    if pending is not None and live and pending.person_id != person_id:
        return TwoPersonResult(True, None, partner=pending.person_id)
    return TwoPersonResult(False, Pending(person_id, mono_now))
