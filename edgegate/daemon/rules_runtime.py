"""The door rules at run time: the pure state machine driven by inputs, commands and
decisions, its actions applied to the outputs, its events journaled.

Time: every duration (a release's unlock time, held-open and pre-alarm, reader lockouts) runs
on the door's monotonic clock (``Door.monotonic``), which no wall-clock step (NTP at boot on
an RTC-less Pi, a hand-set date) moves; the machine never sees wall time. Wall time is used
only where a date is meant: the lockout's end as journaled and restored after a restart.

Everything here runs on the event loop thread. Order of work for every input: step the pure
machine (microseconds), act on the lock at once, then journal. Journaling is a hop to the
store thread (a commit, milliseconds on an SD card and more during a WAL checkpoint), so it
never stands between an input and the relay; a fire release in particular must not wait for
a disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from edgegate.config.models import Config
from edgegate.core.decision import Decision, DoorMode, DoorPolicy, Reason, RuleContext
from edgegate.core.door_state import (
    Action,
    DoorState,
    In,
    Input,
    MachineConfig,
    Result,
    next_deadline,
    step,
)
from edgegate.core.feedback import outcome_for
from edgegate.core.lockout import LockoutTracker
from edgegate.core.offline import OfflinePolicy
from edgegate.core.passback import PassbackMode
from edgegate.core.reads import CredentialRead
from edgegate.core.schedule import DAYS, Window, parse_hhmm
from edgegate.store import journal, rules_state
from edgegate.store.journal import parse_rfc3339

if TYPE_CHECKING:
    from edgegate.daemon.door import Door
    from edgegate.daemon.site_rules import SiteRules

log = structlog.get_logger(__name__)

# Input name -> machine input when it becomes active / inactive (None: ignored).
_INPUTS: dict[str, tuple[In | None, In | None]] = {
    "fire_alarm": (In.FIRE_ON, In.FIRE_OFF),
    # The contact pulls low while the door is CLOSED.
    "door_contact": (In.CONTACT_CLOSE, In.CONTACT_OPEN),
    "exit_button": (In.EXIT, None),
    "passage": (In.PASSAGE, None),
    "obstruction": (In.OBSTRUCTION_ON, In.OBSTRUCTION_OFF),
    "staff_release": (In.STAFF_RELEASE, None),
    "fire_reset": (In.RESET, None),
}


def build_policy(config: Config) -> DoorPolicy:
    door, rules = config.door, config.rules
    windows = tuple(
        Window(
            group=s.group,
            days=frozenset(DAYS.index(d) for d in s.days),
            start=parse_hhmm(s.start),
            end=parse_hhmm(s.end),
            on_holidays=s.holidays,
        )
        for s in config.schedules
    )
    return DoorPolicy(
        zone=door.zone,
        area=door.area or door.zone or door.id,
        door_groups=frozenset(door.groups),
        passback=PassbackMode(rules.passback),
        passback_seconds=rules.passback_minutes * 60,
        windows=windows,
        holidays=frozenset(date.fromisoformat(str(h)) for h in config.holidays),
        tz=ZoneInfo(rules.timezone) if rules.timezone else None,
        lockdown_groups=frozenset(rules.lockdown_allowed_groups),
        offline=OfflinePolicy(
            config.offline.after_minutes * 60, frozenset(config.offline.allowed_groups)
        ),
        two_person_seconds=rules.two_person_seconds,
    )


class RulesRuntime:
    def __init__(self, door: Door) -> None:
        cfg = door.config
        self.door = door
        self.policy = build_policy(cfg)
        self.machine = MachineConfig(
            turnstile=cfg.door.mode == "turnstile",
            unlock_seconds=cfg.door.unlock_seconds,
            held_open_seconds=cfg.door.held_open_seconds,
            prealarm_seconds=cfg.door.prealarm_seconds,
            relock_on_close=cfg.door.relock_on_close,
        )
        self.state = DoorState()
        self.lockout = LockoutTracker(
            cfg.rules.lockout_attempts,
            cfg.rules.lockout_window_seconds,
            cfg.rules.lockout_seconds,
        )
        self.faulty_readers: set[str] = set()
        self._attended_by_fault = False
        self._timer: asyncio.TimerHandle | None = None
        # The rules across doors and by the clock; set by the Door once both exist.
        self.site: SiteRules | None = None
        self._saved_modes: dict[str, Any] = self._modes()

    # --- the machine -----------------------------------------------------------------------
    def apply(self, inp: Input) -> Result:
        result = step(self.state, inp, self.machine)
        self.state = result.state
        outputs = self.door.outputs
        # Act first: the relay follows the machine before anything is journaled.
        for action in result.actions:
            if action is Action.RELEASE:
                outputs.unlock()
            else:
                outputs.relock()
        if result.events:
            self.door.spawn(self.journal(result.events))
        self._persist_modes()
        self._reschedule()
        return result

    # --- latched modes in the store -----------------------------------------------------------
    def _modes(self) -> dict[str, Any]:
        s = self.state
        # Attended mode forced by a reader fault is not saved: the fault is seen again at start.
        mode = DoorMode.NORMAL if self._attended_by_fault else s.mode
        return {
            "mode": str(mode),
            "emergency": s.emergency,
            "emergency_source": s.emergency_source,
        }

    def _persist_modes(self) -> None:
        modes = self._modes()
        if modes != self._saved_modes:
            self._saved_modes = modes
            # The store thread runs calls in order, so the last change is the one kept.
            self.door.spawn(self.door.store.call(rules_state.save_modes, modes))

    def restore_modes(self, saved: dict[str, Any]) -> bool:
        """At start, before the lock is driven: take back the emergency latch and lockdown (or
        attended mode) saved before the restart. True when the lock must start released."""
        try:
            mode = DoorMode(saved.get("mode", "normal"))
        except ValueError:
            mode = DoorMode.NORMAL
        if mode is DoorMode.EMERGENCY:
            mode = DoorMode.NORMAL
        emergency = bool(saved.get("emergency", False))
        source = saved.get("emergency_source")
        source = source if isinstance(source, str) else None
        self.state = replace(
            self.state,
            mode=mode,
            emergency=emergency,
            emergency_source=source if emergency else None,
            lock_released=emergency,
        )
        self._saved_modes = self._modes()
        if emergency or mode is not DoorMode.NORMAL:
            fields = {"mode": str(mode), "emergency": emergency, "source": source}
            log.warning("door_modes_restored", **fields)
            self.door.spawn(self.journal([("modes_restored", fields)]))
        return emergency

    def tick(self) -> Result:
        """Let the machine see the time (relock when a release runs out, held-open alarms)."""
        return self.apply(Input(In.TICK, self.door.monotonic()))

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = next_deadline(self.state, self.machine)
        if deadline is None:
            return
        delay = max(0.0, deadline - self.door.monotonic())
        # Timers count loop time while deadlines are in door-monotonic time: with a test clock
        # the tick simply finds nothing due yet and re-arms.
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.tick()

    def on_input(self, name: str, active: bool) -> None:
        """A GPIO input changed (called on the loop, see edgegate/hardware/inputs.py)."""
        kinds = _INPUTS.get(name)
        kind = None if kinds is None else kinds[0 if active else 1]
        if kind is None:
            return
        self.apply(Input(kind, self.door.monotonic(), source=name))

    # --- journal ---------------------------------------------------------------------------
    async def journal(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Journal the machine's events (after the outputs already acted on them)."""
        try:
            written = await self.door.journal.write(events)
        except Exception:
            log.exception("rules_journal_failed", types=[t for t, _ in events])
            return
        for event in written:
            log.info(event.type, seq=event.seq, **event.payload)

    # --- decisions -------------------------------------------------------------------------
    def context(self, read: CredentialRead, now: float) -> RuleContext:
        """The rule context of a read decided at wall time ``now``."""
        mode = DoorMode.EMERGENCY if self.state.emergency else self.state.mode
        until = self.lockout.locked_until(read.reader, self.door.monotonic())
        ctx = RuleContext(
            policy=self.policy,
            mode=mode,
            reader_locked_until=None if until is None else self._wall(until, now),
        )
        return ctx if self.site is None else self.site.context(ctx)

    def posture_input(self, kind: In, source: str) -> None:
        """A free-access window began or ended (edgegate/daemon/site_rules.py)."""
        self.apply(Input(kind, self.door.monotonic(), source=source))

    def _wall(self, mono: float, wall_now: float | None = None) -> float:
        """A monotonic instant as a date (for the journal and status), at today's offset."""
        wall_now = self.door.clock() if wall_now is None else wall_now
        return wall_now + (mono - self.door.monotonic())

    def decided(self, decision: Decision, read: CredentialRead) -> None:
        """After a decision is journaled: open (or ask staff), or count the denial."""
        now = self.door.monotonic()
        if self.site is not None:
            self.site.decided(decision)
        if decision.reason is Reason.TWO_PERSON:
            # The first of two people: not a refusal to count toward a lockout; the door
            # asks for the second person.
            self.door.outputs.signal(outcome_for(decision.reason))
            return
        if decision.granted:
            result = self.apply(Input(In.GRANT, now, person=decision.person_id))
            attended = any(t == "assist_requested" for t, _ in result.events)
            if not attended:
                self.door.outputs.signal_grant(self.door.config.door.unlock_seconds)
            return
        self.door.outputs.signal(outcome_for(decision.reason))
        until = self.lockout.denied(read.reader, now)
        if until is not None:
            fields = {"reader": read.reader, "until": journal.rfc3339(self._wall(until))}
            self.door.spawn(self.journal([("lockout", fields)]))

    # --- modes, commands and reader faults --------------------------------------------------
    def set_mode(self, mode: DoorMode, source: str) -> None:
        if mode is not DoorMode.ATTENDED:
            self._attended_by_fault = False
        self.apply(Input(In.SET_MODE, self.door.monotonic(), mode=mode, source=source))

    def staff_release(self, staff: str | None, source: str, person: str | None = None) -> None:
        self.apply(
            Input(
                In.STAFF_RELEASE, self.door.monotonic(), staff=staff, person=person, source=source
            )
        )

    def reader_fault(self, reader: str) -> None:
        self.faulty_readers.add(reader)
        if self.door.config.rules.attended_on_fault and self.state.mode is DoorMode.NORMAL:
            self.set_mode(DoorMode.ATTENDED, f"reader_fault:{reader}")
            self._attended_by_fault = True

    def reader_recovered(self, reader: str) -> None:
        self.faulty_readers.discard(reader)
        if self._attended_by_fault and not self.faulty_readers:
            self.set_mode(DoorMode.NORMAL, f"reader_recovered:{reader}")

    # --- start-up ---------------------------------------------------------------------------
    def restore_lockouts(self, conn: sqlite3.Connection) -> list[tuple[str, float]]:
        """On the store thread at start: lockouts from the journal that are still running.

        The journal already holds every ``lockout`` event with its reader and end, in the same
        store as the decisions, so no separate state is kept (and none can disagree with it).
        """
        out = []
        for event in journal.recent(conn, limit=200, type_="lockout"):
            try:
                until = parse_rfc3339(str(event.payload["until"]))
                out.append((str(event.payload["reader"]), until))
            except (KeyError, ValueError):
                log.warning("lockout_restore_skipped", seq=event.seq)
        return out

    def started(self, lockouts: list[tuple[str, float]], contact_closed: bool | None) -> None:
        """Called once by the daemon after the inputs are open. Journaled lockouts (wall
        dates) are re-armed for what is left of them, at most lockout_seconds: a wall clock
        stepped back since cannot stretch a lockout."""
        now, wall = self.door.monotonic(), self.door.clock()
        for reader, until in lockouts:
            left = min(until - wall, self.lockout.lockout_seconds)
            self.lockout.restore(reader, now + left, now)
        restored = self.lockout.state(now)
        if restored:
            log.warning(
                "lockouts_restored",
                readers={r: journal.rfc3339(self._wall(u)) for r, u in restored.items()},
            )
        if contact_closed is False:
            # The door stands open as we start: journal it and time it for held-open.
            self.apply(Input(In.CONTACT_OPEN, now, source="startup"))

    def status(self) -> dict[str, Any]:
        now = self.door.monotonic()
        return {
            **self.state.as_dict(),
            "lockouts": {
                r: journal.rfc3339(self._wall(u)) for r, u in self.lockout.state(now).items()
            },
            "faulty_readers": sorted(self.faulty_readers),
            **(self.site.status() if self.site is not None else {}),
        }

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
