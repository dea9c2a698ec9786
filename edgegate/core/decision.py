"""The pure decision core: from a credential read and what the store knows to a decision.

No IO and no clock: ``now`` (seconds since the epoch, UTC) is passed in, so every rule can be
tested with time driven by the test and the same inputs always give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from edgegate.hardware.base import CredentialRead


class Reason(StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    PERSON_DISABLED = "person_disabled"
    LOW_SCORE = "low_score"


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A credential joined with its person, as the store returns it for one lookup."""

    kind: str
    value: str
    person_id: str
    enabled: bool = True
    valid_from: float | None = None
    valid_until: float | None = None
    person_enabled: bool = True
    person_valid_from: float | None = None
    person_valid_until: float | None = None
    person_name: str = ""
    attrs: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: Reason
    person_id: str | None = None
    person_name: str = ""

    @property
    def event_type(self) -> str:
        return "access_granted" if self.granted else "access_denied"


def _window(now: float, start: float | None, end: float | None) -> Reason | None:
    if start is not None and now < start:
        return Reason.NOT_YET_VALID
    if end is not None and now >= end:
        return Reason.EXPIRED
    return None


def decide(
    read: CredentialRead,
    record: CredentialRecord | None,
    now: float,
    *,
    min_score: float | None = None,
) -> Decision:
    """Decide on one read. ``record`` is the store's match for the read, or None.

    Order matters and is the order a technician checks by hand: is the credential known, is it
    enabled (a lost card is revoked before anything else is asked), is it within its own
    validity window, is its person enabled and within theirs.
    """
    if record is None:
        return Decision(False, Reason.UNKNOWN)
    pid, name = record.person_id, record.person_name
    if min_score is not None and (read.score is None or read.score < min_score):
        return Decision(False, Reason.LOW_SCORE, pid, name)
    if not record.enabled:
        return Decision(False, Reason.REVOKED, pid, name)
    reason = _window(now, record.valid_from, record.valid_until)
    if reason is not None:
        return Decision(False, reason, pid, name)
    if not record.person_enabled:
        return Decision(False, Reason.PERSON_DISABLED, pid, name)
    reason = _window(now, record.person_valid_from, record.person_valid_until)
    if reason is not None:
        return Decision(False, reason, pid, name)
    return Decision(True, Reason.GRANTED, pid, name)
