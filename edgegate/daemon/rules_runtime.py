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
from collections.abc import Callable, Coroutine
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
from edgegate.daemon.door_journal import DoorJournal
from edgegate.hardware.gpio import DoorOutputs
from edgegate.store import journal, rules_state
from edgegate.store.journal import parse_rfc3339
from edgegate.store.store import AsyncStore

if TYPE_CHECKING:
    from edgegate.daemon.site_rules import SiteRules

log = structlog.get_logger(__name__)

# Runs a coroutine in the background, kept referenced until done (``Door.spawn``).
Spawn = Callable[[Coroutine[Any, Any, object]], None]

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
    """The door's rules at run time, and the one place that drives the door's outputs (the
    relay from the machine's actions, LEDs and buzzer from decisions and retries).

    Implements the sync layer's ``DoorControl`` port (set mode, lock, staff release, state,
    listeners): commands step the machine here, never edit its state.
    """

    def __init__(
        self,
        config: Config,
        store: AsyncStore,
        outputs: DoorOutputs,
        journal: DoorJournal,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        spawn: Spawn,
    ) -> None:
        """``clock`` is wall time (dates, schedules, validity); ``monotonic`` times every
        duration (releases, held-open, lockouts), which a wall-clock step must not change."""
        cfg = config
        self.config = config
        self.store = store
        self.outputs = outputs
        self.door_journal = journal
        self.clock = clock
        self.monotonic = monotonic
        self.spawn = spawn
        self._state_listeners: list[Callable[[], None]] = []
        self.policy = build_policy(cfg)
        self.machine = MachineConfig(
            turnstile=cfg.door.mode == "turnstile",
            unlock_seconds=cfg.door.unlock_seconds,
            held_open_seconds=cfg.door.held_open_seconds,
            prealarm_seconds=cfg.door.prealarm_seconds,
            relock_on_close=cfg.door.relock_on_close,
        )
        self.door_state = DoorState()
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
        result = step(self.door_state, inp, self.machine)
        self.door_state = result.state
        outputs = self.outputs
        # Act first: the relay follows the machine before anything is journaled.
        for action in result.actions:
            if action is Action.RELEASE:
                outputs.unlock()
            else:
                outputs.relock()
        if result.events:
            self.spawn(self.journal(result.events))
        self._persist_modes()
        self._reschedule()
        for fn in self._state_listeners:
            fn()
        return result

    # --- latched modes in the store -----------------------------------------------------------
    def _modes(self) -> dict[str, Any]:
        s = self.door_state
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
            self.spawn(self.store.call(rules_state.save_modes, modes))

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
        self.door_state = replace(
            self.door_state,
            mode=mode,
            emergency=emergency,
            emergency_source=source if emergency else None,
            lock_released=emergency,
        )
        self._saved_modes = self._modes()
        if emergency or mode is not DoorMode.NORMAL:
            fields = {"mode": str(mode), "emergency": emergency, "source": source}
            log.warning("door_modes_restored", **fields)
            self.spawn(self.journal([("modes_restored", fields)]))
        return emergency

    def tick(self) -> Result:
        """Let the machine see the time (relock when a release runs out, held-open alarms)."""
        return self.apply(Input(In.TICK, self.monotonic()))

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = next_deadline(self.door_state, self.machine)
        if deadline is None:
            return
        delay = max(0.0, deadline - self.monotonic())
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
        self.apply(Input(kind, self.monotonic(), source=name))

    # --- journal ---------------------------------------------------------------------------
    async def journal(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Journal the machine's events (after the outputs already acted on them)."""
        try:
            written = await self.door_journal.write(events)
        except Exception:
            log.exception("rules_journal_failed", types=[t for t, _ in events])
            return
        for event in written:
            log.info(event.type, seq=event.seq, **event.payload)

    # --- decisions -------------------------------------------------------------------------
    def context(self, read: CredentialRead, now: float) -> RuleContext:
        """The rule context of a read decided at wall time ``now``."""
        mode = DoorMode.EMERGENCY if self.door_state.emergency else self.door_state.mode
        until = self.lockout.locked_until(read.reader, self.monotonic())
        ctx = RuleContext(
            policy=self.policy,
            mode=mode,
            reader_locked_until=None if until is None else self._wall(until, now),
        )
        return ctx if self.site is None else self.site.context(ctx)

    def posture_input(self, kind: In, source: str) -> None:
        """A free-access window began or ended (edgegate/daemon/site_rules.py)."""
        self.apply(Input(kind, self.monotonic(), source=source))

    def _wall(self, mono: float, wall_now: float | None = None) -> float:
        """A monotonic instant as a date (for the journal and status), at today's offset."""
        wall_now = self.clock() if wall_now is None else wall_now
        return wall_now + (mono - self.monotonic())

    def decided(self, decision: Decision, read: CredentialRead) -> None:
        """After a decision is journaled: open (or ask staff), or count the denial."""
        now = self.monotonic()
        if self.site is not None:
            self.site.decided(decision)
        if decision.reason is Reason.TWO_PERSON:
            # The first of two people: not a refusal to count toward a lockout; the door
            # asks for the second person.
            self.outputs.signal(outcome_for(decision.reason))
            return
        if decision.granted:
            result = self.apply(Input(In.GRANT, now, person=decision.person_id))
            attended = any(t == "assist_requested" for t, _ in result.events)
            if not attended:
                self.outputs.signal_grant(self.config.door.unlock_seconds)
            return
        self.refused(read.reader, decision.reason, lockout=True)

    def refused(self, reader: str, reason: Reason, *, lockout: bool) -> None:
        """After a denial is journaled: its outcome on the LEDs and buzzer, and (``lockout``)
        count it toward the reader's lockout (biometric no-matches and card+face time-outs do
        not count)."""
        self.outputs.signal(outcome_for(reason))
        if not lockout:
            return
        until = self.lockout.denied(reader, self.monotonic())
        if until is not None:
            fields = {"reader": reader, "until": journal.rfc3339(self._wall(until))}
            self.spawn(self.journal([("lockout", fields)]))

    def retry(self) -> None:
        """Ask for another try (a poor capture; a card waiting for its face): two beeps."""
        self.outputs.signal_retry()

    # --- modes, commands and reader faults (the DoorControl port) ---------------------------
    def set_mode(self, mode: DoorMode | str, source: str) -> None:
        """Switch to "normal", "lockdown", "emergency" or "attended"; journaled as
        mode_changed / emergency_on / emergency_off. "normal" is also the emergency reset (it
        is refused while the fire input is still active). Raises ValueError on other modes."""
        mode = DoorMode(mode)
        if mode is not DoorMode.ATTENDED:
            self._attended_by_fault = False
        self.apply(Input(In.SET_MODE, self.monotonic(), mode=mode, source=source))

    def lock(self, source: str) -> None:
        """End a running release now (the lock command). Raises ValueError in an emergency:
        only "normal" ends one, and only when the fire input is clear."""
        if self.door_state.emergency:
            raise ValueError("emergency: the locks stay released until 'normal'")
        self.apply(Input(In.LOCK, self.monotonic(), source=source))

    @property
    def mode(self) -> DoorMode:
        """The mode set (normal, lockdown, attended); an emergency is separate."""
        return self.door_state.mode

    @property
    def emergency(self) -> bool:
        return self.door_state.emergency

    @property
    def area(self) -> str:
        """The anti-passback area this door counts people in."""
        return self.policy.area

    def add_state_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` after every step of the machine, on the loop: ``state()`` may have changed."""
        self._state_listeners.append(fn)

    def staff_release(self, staff: str | None, source: str, person: str | None = None) -> None:
        self.apply(
            Input(In.STAFF_RELEASE, self.monotonic(), staff=staff, person=person, source=source)
        )

    def reader_fault(self, reader: str) -> None:
        self.faulty_readers.add(reader)
        if self.config.rules.attended_on_fault and self.door_state.mode is DoorMode.NORMAL:
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
        now, wall = self.monotonic(), self.clock()
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

    def state(self) -> dict[str, Any]:
        """For MQTT ``state``/``telemetry``: lock, contact, mode, alarms, lockouts."""
        return self.status()

    def status(self) -> dict[str, Any]:
        now = self.monotonic()
        return {
            **self.door_state.as_dict(),
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
