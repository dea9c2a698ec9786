"""The pure decision core: from a credential read and what the store knows to a decision.

No IO and no clock: ``now`` (seconds since the epoch, UTC) is passed in, so every rule can be
tested with time driven by the test and the same inputs always give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from enum import StrEnum

from edgegate.core.offline import OfflinePolicy
from edgegate.core.passback import PassbackMode, Presence, violates
from edgegate.core.reads import CredentialRead
from edgegate.core.schedule import Window, local_time, schedule_allows
from edgegate.core.two_person import Pending, two_person


class Reason(StrEnum):
    """Every reason a decision carries: ``granted`` or why the door refused (journaled as the
    ``reason`` of ``access_denied``). One enum, so no path invents its own string."""

    GRANTED = "granted"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    PERSON_DISABLED = "person_disabled"
    LOW_SCORE = "low_score"
    # Door rules: see docs/rules.md for the order and the config keys.
    LOCKOUT = "lockout"
    LOCKDOWN = "lockdown"
    ZONE = "zone"
    GROUP = "group"
    SCHEDULE = "schedule"
    SETTLEMENT_REQUIRED = "settlement_required"
    PASSBACK = "passback"
    # Keypad PIN (card+PIN doors, edgegate/core/pin.py).
    WRONG_PIN = "wrong_pin"
    PIN_TIMEOUT = "pin_timeout"
    NO_PIN = "no_pin"
    # Visitor QR passes (edgegate/core/visitor_pass.py).
    FORGED = "forged"  # not a pass signed by a trusted office key
    REPLAYED = "replayed"  # a single-entry pass shown again at a door it already opened
    # Card+face doors (edgegate/face/cardface.py): no face of the card's person in time, or
    # only someone else's face.
    FACE_REQUIRED = "face_required"
    FACE_MISMATCH = "face_mismatch"
    # Rules across doors and by the clock (docs/rules.md, edgegate/core/two_person.py,
    # offline.py, interlock.py).
    TWO_PERSON = "two_person"  # the first of two people: waits for a second
    OFFLINE = "offline"  # the office has been silent too long for this person's groups
    INTERLOCK = "interlock"  # the other door of the mantrap is open, released or unknown


class DoorMode(StrEnum):
    NORMAL = "normal"
    LOCKDOWN = "lockdown"  # deny all but the configured groups
    EMERGENCY = "emergency"  # every lock released (fire input or command)
    ATTENDED = "attended"  # staff release every passage (reader fault or staff choice)


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    """What the config says about this door, in the form the core needs (built once)."""

    zone: str = ""
    area: str = ""
    door_groups: frozenset[str] = frozenset()
    passback: PassbackMode = PassbackMode.OFF
    passback_seconds: float = 0.0
    windows: tuple[Window, ...] = ()
    holidays: frozenset[date] = frozenset()
    tz: tzinfo | None = None
    lockdown_groups: frozenset[str] = frozenset()
    offline: OfflinePolicy = field(default_factory=OfflinePolicy)
    two_person_seconds: float = 0.0  # 0: the two-person rule is off


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything beyond the credential that a decision depends on, snapshotted by the caller:
    the door's policy, the door's mode, the reader's lockout and the person's presence; for
    the rules across doors, how long the office has been silent, whether the interlock's
    other door allows a release (None: no interlock) and the first person of a two-person
    entry waiting, on the monotonic clock ``mono_now``."""

    policy: DoorPolicy = field(default_factory=DoorPolicy)
    mode: DoorMode = DoorMode.NORMAL
    reader_locked_until: float | None = None
    presence: Presence | None = None
    office_silent_for: float | None = None
    interlock_ok: bool | None = None
    pending: Pending | None = None
    mono_now: float = 0.0


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
    # Soft rules that granted anyway (e.g. "passback" in soft mode): carried in the event.
    flags: tuple[str, ...] = ()
    # Two-person rule: on a grant, the first person of the two (carried in the event).
    partner: str | None = None

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
    context: RuleContext | None = None,
) -> Decision:
    """Decide on one read. ``record`` is the store's match for the read, or None.

    Order matters and is the order a technician checks by hand: is the credential known, is it
    enabled (a lost card is revoked before anything else is asked), is it within its own
    validity window, is its person enabled and within theirs. With a ``context`` the door's
    rules follow (``_rules``); a locked-out reader refuses before anything is looked at.
    """
    if context is not None and context.reader_locked_until is not None:
        if record is None:
            return Decision(False, Reason.LOCKOUT)
        return Decision(False, Reason.LOCKOUT, record.person_id, record.person_name)
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
    if context is None:
        return Decision(True, Reason.GRANTED, pid, name)
    return _rules(read, record, now, context)


def _str_set(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v) for v in value)
    return frozenset()


def person_groups(record: CredentialRecord) -> frozenset[str]:
    return _str_set(record.attrs.get("groups"))


def _rules(
    read: CredentialRead, record: CredentialRecord, now: float, ctx: RuleContext
) -> Decision:
    """The door's rules for a valid credential, in order: lockdown, zone (visitors), door
    groups, schedule, offline too long, exit hold, anti-passback, interlock, and last the
    two-person rule (only a read every other rule grants counts as one of the two)."""
    pid, name, policy = record.person_id, record.person_name, ctx.policy
    groups = person_groups(record)
    if ctx.mode is DoorMode.LOCKDOWN and not groups & policy.lockdown_groups:
        return Decision(False, Reason.LOCKDOWN, pid, name)
    zones = record.attrs.get("zones")
    if zones is not None and policy.zone not in _str_set(zones):
        return Decision(False, Reason.ZONE, pid, name)
    if policy.door_groups and not groups & policy.door_groups:
        return Decision(False, Reason.GROUP, pid, name)
    if policy.windows and not schedule_allows(
        groups, policy.windows, policy.holidays, local_time(now, policy.tz)
    ):
        return Decision(False, Reason.SCHEDULE, pid, name)
    if policy.offline.refuses(groups, ctx.office_silent_for):
        return Decision(False, Reason.OFFLINE, pid, name)
    direction = str(read.direction)
    if direction == "out" and record.attrs.get("settled") is False:
        return Decision(False, Reason.SETTLEMENT_REQUIRED, pid, name)
    flags: tuple[str, ...] = ()
    if violates(policy.passback, ctx.presence, direction, now, policy.passback_seconds):
        if policy.passback is not PassbackMode.SOFT:
            return Decision(False, Reason.PASSBACK, pid, name)
        flags = ("passback",)
    if ctx.interlock_ok is False:
        return Decision(False, Reason.INTERLOCK, pid, name)
    if policy.two_person_seconds > 0:
        pair = two_person(ctx.pending, pid, ctx.mono_now, policy.two_person_seconds)
        if not pair.granted:
            return Decision(False, Reason.TWO_PERSON, pid, name)
        return Decision(True, Reason.GRANTED, pid, name, flags=flags, partner=pair.partner)
    return Decision(True, Reason.GRANTED, pid, name, flags=flags)
