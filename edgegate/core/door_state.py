"""The door state machine: inputs in, (new state, actions, events) out. Pure, no clock.

One function, ``step``, covers the door contact (opened, closed, forced, held open with a
pre-alarm first), the exit button, turnstile passages (one per grant, a second one is
tailgating), the obstruction input (anti-pinch), the fire alarm (every lock released at once,
held until the input clears AND a reset), lockdown and attended modes, and the free-access
posture of an unlock schedule (edgegate/core/posture.py: the lock held released while the
window runs, in normal mode only).

The lock output is derived in ONE place (``_wants_release``) from the reasons the door may be
open: a grant, an exit request or a staff release still running, an emergency, a free-access
window in normal mode, or an obstruction that keeps an already open gate from closing on a
person. So no input sequence can
leave the lock released without one of those reasons (tests/rules/test_door_state_props.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from edgegate.core.decision import DoorMode


class In(StrEnum):
    GRANT = "grant"
    EXIT = "exit"
    STAFF_RELEASE = "staff_release"
    CONTACT_OPEN = "contact_open"
    CONTACT_CLOSE = "contact_close"
    PASSAGE = "passage"
    OBSTRUCTION_ON = "obstruction_on"
    OBSTRUCTION_OFF = "obstruction_off"
    FIRE_ON = "fire_on"
    FIRE_OFF = "fire_off"
    RESET = "reset"
    SET_MODE = "set_mode"
    LOCK = "lock"  # the lock command: end a running release now (an emergency stays)
    FREE_ON = "free_on"  # a free-access window began (or its first person arrived)
    FREE_OFF = "free_off"  # the free-access window ended
    TICK = "tick"


class Action(StrEnum):
    RELEASE = "release"
    LOCK = "lock"


@dataclass(frozen=True, slots=True)
class Input:
    kind: In
    now: float
    person: str | None = None
    staff: str | None = None
    mode: DoorMode | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class MachineConfig:
    turnstile: bool = False
    unlock_seconds: float = 5.0
    held_open_seconds: float = 30.0
    prealarm_seconds: float = 10.0
    relock_on_close: bool = True


@dataclass(frozen=True, slots=True)
class DoorState:
    mode: DoorMode = DoorMode.NORMAL  # normal, lockdown or attended; emergency is separate
    emergency: bool = False
    emergency_source: str | None = None
    fire: bool = False  # the fire input itself (emergency stays latched until a reset)
    lock_released: bool = False
    release_cause: str | None = None  # "grant", "exit" or "attended" while running
    release_until: float | None = None
    person: str | None = None  # who the running release is for
    passes_left: int = 0  # turnstile: passages the running release still allows
    passed: bool = False  # the door opened (or the gate turned) during this release
    obstructed: bool = False
    contact_open: bool = False
    opened_at: float | None = None
    prealarm_sent: bool = False
    held_sent: bool = False
    pending_person: str | None = None  # attended mode: the person waiting for staff
    free: bool = False  # a free-access posture window is running (see ``free_access``)

    @property
    def shown_mode(self) -> str:
        return str(DoorMode.EMERGENCY if self.emergency else self.mode)

    @property
    def free_access(self) -> bool:
        """The free window holds the lock released only in normal mode: a lockdown or an
        attended door ends it at once, and it comes back when the door is normal again."""
        return self.free and self.mode is DoorMode.NORMAL

    def as_dict(self) -> dict[str, Any]:
        alarms = []
        if self.contact_open and self.held_sent:
            alarms.append("door_held_open")
        elif self.contact_open and self.prealarm_sent:
            alarms.append("door_held_prealarm")
        if self.fire:
            alarms.append("fire")
        if self.obstructed:
            alarms.append("obstruction")
        return {
            "lock": "released" if self.lock_released else "locked",
            "contact": "open" if self.contact_open else "closed",
            "mode": self.shown_mode,
            "alarms": alarms,
        }


Events = list[tuple[str, dict[str, Any]]]


@dataclass
class Result:
    state: DoorState
    actions: list[Action] = field(default_factory=list)
    events: Events = field(default_factory=list)


def _wants_release(s: DoorState) -> bool:
    return (
        s.emergency
        or s.free_access
        or s.release_cause is not None
        or (s.lock_released and s.obstructed)
    )


def _end_release(s: DoorState) -> DoorState:
    return replace(s, release_cause=None, release_until=None, passes_left=0)


def _start_release(
    s: DoorState, cause: str, person: str | None, cfg: MachineConfig, now: float
) -> DoorState:
    return replace(
        s,
        release_cause=cause,
        release_until=now + cfg.unlock_seconds,
        person=person,
        passes_left=1,
        passed=False,
    )


def _advance(s: DoorState, now: float, cfg: MachineConfig, events: Events) -> DoorState:
    """Let time pass: end a release that ran out, raise held-open alarms that are due."""
    if s.release_until is not None and (
        now >= s.release_until or now < s.release_until - cfg.unlock_seconds
    ):
        # The second test catches the wall clock stepping back (NTP, RTC-less boot): a release
        # ends rather than lasting until the clock catches up again. Fail secure.
        s = _end_release(s)
    # No held-open alarms while the door is meant to stand open (emergency, free access).
    if s.contact_open and s.opened_at is not None and not s.emergency and not s.free_access:
        open_for = now - s.opened_at
        pre_at = max(0.0, cfg.held_open_seconds - cfg.prealarm_seconds)
        if not s.prealarm_sent and open_for >= pre_at and cfg.prealarm_seconds > 0:
            events.append(("door_held_prealarm", {"open_seconds": round(open_for, 3)}))
            s = replace(s, prealarm_sent=True)
        if not s.held_sent and open_for >= cfg.held_open_seconds:
            events.append(("door_held_open", {"open_seconds": round(open_for, 3)}))
            s = replace(s, held_sent=True, prealarm_sent=True)
    return s


def _emergency_on(s: DoorState, source: str, events: Events) -> DoorState:
    if not s.emergency:
        events.append(("emergency_on", {"source": source}))
    return replace(s, emergency=True, emergency_source=s.emergency_source or source)


def _reset(s: DoorState, source: str, events: Events) -> DoorState:
    if not s.emergency:
        return s
    if s.fire:
        # The fire input is still active: a reset cannot end the emergency (life safety).
        events.append(("emergency_reset_refused", {"source": source, "reason": "fire_input"}))
        return s
    events.append(("emergency_off", {"source": source}))
    return replace(s, emergency=False, emergency_source=None)


def _handle(s: DoorState, inp: Input, cfg: MachineConfig, ev: Events) -> DoorState:
    k, now = inp.kind, inp.now
    if k is In.GRANT:
        if s.mode is DoorMode.ATTENDED and not s.emergency:
            # Attended: a valid credential does not open; it asks staff, who release.
            ev.append(("assist_requested", {"person": inp.person, "mode": "attended"}))
            return replace(s, pending_person=inp.person)
        return _start_release(s, "grant", inp.person, cfg, now)
    if k is In.EXIT:
        ev.append(("exit_request", {"source": inp.source or "exit_button"}))
        return _start_release(s, "exit", None, cfg, now)
    if k is In.STAFF_RELEASE:
        person = inp.person or s.pending_person
        ev.append(("staff_release", {"staff": inp.staff, "person": person, "source": inp.source}))
        return replace(_start_release(s, "attended", person, cfg, now), pending_person=None)
    if k is In.CONTACT_OPEN:
        if s.contact_open:
            return s
        # Forced means opened while locked: a lock still held released (an obstruction after
        # the grant ran out) was not forced. A door found open when the daemon starts may have
        # been opened by anyone while it was down: journaled as such, timed for held-open, but
        # not called forced.
        at_start = inp.source == "startup"
        authorised = s.emergency or s.release_cause is not None or s.lock_released or at_start
        if at_start:
            ev.append(("door_opened", {"at_start": True}))
        else:
            opened = {"person": s.person, "cause": s.release_cause} if s.release_cause else {}
            ev.append(("door_opened", opened))
        if not authorised:
            ev.append(("door_forced", {}))
        return replace(
            s,
            contact_open=True,
            opened_at=now,
            prealarm_sent=False,
            held_sent=False,
            passed=s.passed or s.release_cause is not None,
        )
    if k is In.CONTACT_CLOSE:
        if not s.contact_open:
            return s
        ev.append(("door_closed", {"open_seconds": round(now - (s.opened_at or now), 3)}))
        closed = replace(
            s, contact_open=False, opened_at=None, prealarm_sent=False, held_sent=False
        )
        if closed.release_cause is not None and closed.passed and cfg.relock_on_close:
            # The pass is done: relock at once rather than waiting for unlock_seconds.
            closed = _end_release(closed)
        return closed
    if k is In.PASSAGE:
        if s.release_cause is not None and s.passes_left > 0:
            ev.append(("passage", {"person": s.person}))
            s = replace(s, passes_left=s.passes_left - 1, passed=True)
            # One passage per grant: the gate closes behind the person (unless obstructed).
            return _end_release(s) if cfg.turnstile else s
        ev.append(("passage", {"person": None}))
        if not s.emergency and not s.free_access:
            ev.append(("tailgating", {"person": s.person}))
        return s
    if k is In.OBSTRUCTION_ON:
        if s.obstructed:
            return s
        ev.append(("obstruction", {"state": "on", "holding": s.lock_released}))
        return replace(s, obstructed=True)
    if k is In.OBSTRUCTION_OFF:
        if not s.obstructed:
            return s
        ev.append(("obstruction", {"state": "off"}))
        return replace(s, obstructed=False)
    if k is In.FIRE_ON:
        return _emergency_on(replace(s, fire=True), "fire_alarm", ev)
    if k is In.FIRE_OFF:
        if s.fire:
            ev.append(("fire_alarm_cleared", {}))
        return replace(s, fire=False)
    if k is In.RESET:
        return _reset(s, inp.source or "reset", ev)
    if k is In.SET_MODE:
        mode, source = inp.mode or DoorMode.NORMAL, inp.source or "command"
        if mode is DoorMode.EMERGENCY:
            return _emergency_on(s, source, ev)
        if mode is DoorMode.NORMAL:
            s = _reset(s, source, ev)
        if mode is not s.mode:
            ev.append(("mode_changed", {"mode": str(mode), "from": str(s.mode), "source": source}))
            s = replace(s, mode=mode, pending_person=None)
        return s
    if k is In.LOCK:
        # A person waiting for staff is not forgotten; only the running release ends.
        return _end_release(s)
    if k is In.FREE_ON or k is In.FREE_OFF:
        # The posture's own event (posture_changed) is journaled by its runtime; a door that
        # stood open through the window is timed for held-open from the window's end.
        free = k is In.FREE_ON
        if s.free and not free and s.contact_open:
            s = replace(s, opened_at=now, prealarm_sent=False, held_sent=False)
        return replace(s, free=free)
    return s  # TICK: _advance did the work


def step(s: DoorState, inp: Input, cfg: MachineConfig) -> Result:
    """Apply one input at ``inp.now``. Actions say what the lock output must do now."""
    events: Events = []
    s = _advance(s, inp.now, cfg, events)
    s = _handle(s, inp, cfg, events)
    actions: list[Action] = []
    want = _wants_release(s)
    if want != s.lock_released:
        actions.append(Action.RELEASE if want else Action.LOCK)
        s = replace(s, lock_released=want)
    return Result(s, actions, events)


def next_deadline(s: DoorState, cfg: MachineConfig) -> float | None:
    """When the machine next needs a TICK (a release running out, a held-open alarm due)."""
    times = []
    if s.release_until is not None:
        times.append(s.release_until)
    if s.contact_open and s.opened_at is not None and not s.emergency and not s.free_access:
        if not s.prealarm_sent and cfg.prealarm_seconds > 0:
            times.append(s.opened_at + max(0.0, cfg.held_open_seconds - cfg.prealarm_seconds))
        if not s.held_sent:
            times.append(s.opened_at + cfg.held_open_seconds)
    return min(times) if times else None
