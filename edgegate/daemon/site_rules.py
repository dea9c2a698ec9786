"""The rules across doors and by the clock, at run time (docs/rules.md, issue 20).

Holds what the pure rules need between reads and feeds it into every decision's context:
- the door's **posture** by the clock (``edgegate/core/posture.py``): re-evaluated at every
  minute boundary and after each grant (first to arrive); a free-access window holds the lock
  released through the state machine (``In.FREE_ON``/``FREE_OFF``), a lockdown window makes
  the decision's mode lockdown, a card+PIN window asks the PIN gate for a PIN;
- the first person of a **two-person** entry, on the monotonic clock;
- how long the **office** has been silent (its retained availability over the broker), for the
  offline policy;
- the **interlock** peer's last state and whether it is reachable.

Everything here runs on the event loop; nothing here waits for the network: a decision reads
only what is already in memory (the peer state is local, never awaited).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from edgegate.config.models import Config
from edgegate.core.decision import Decision, DoorMode, Reason, RuleContext
from edgegate.core.door_state import In
from edgegate.core.interlock import PeerState, interlock_allows
from edgegate.core.posture import (
    Posture,
    PostureNow,
    PostureWindow,
    first_arrival,
    posture_at,
)
from edgegate.core.schedule import DAYS, local_time, parse_hhmm
from edgegate.core.two_person import Pending

log = structlog.get_logger(__name__)

# (machine input, source) -> None: steps the door's state machine (RulesRuntime.apply).
MachineInput = Callable[[In, str], None]
# (event type, fields) -> None: journals through the door's one journal path.
Record = Callable[[str, dict[str, Any]], None]


def build_windows(config: Config) -> tuple[PostureWindow, ...]:
    return tuple(
        PostureWindow(
            posture=Posture(p.posture),
            days=frozenset(DAYS.index(d) for d in p.days),
            start=parse_hhmm(p.start),
            end=parse_hhmm(p.end),
            on_holidays=p.holidays == "also",
            only_holidays=p.holidays == "only",
            first_to_arrive=frozenset(p.first_to_arrive),
        )
        for p in config.postures
    )


class SiteRules:
    def __init__(
        self,
        config: Config,
        *,
        machine: MachineInput,
        record: Record,
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.machine = machine
        self.record = record
        self.clock = clock
        self.mono = mono
        self.windows = build_windows(config)
        self.holidays = frozenset(date.fromisoformat(str(h)) for h in config.holidays)
        self.tz = ZoneInfo(config.rules.timezone) if config.rules.timezone else None
        self.posture = PostureNow(Posture.CARD)
        # The occurrence of a first-to-arrive window that a first arrival opened. Kept in
        # memory: after a restart the lobby stays card-only until the next person of the group
        # badges in, the safe side of a restart.
        self.opened_at: Any = None
        self._timer: asyncio.TimerHandle | None = None
        # Two-person rule: the first person waiting (monotonic seconds).
        self.pending: Pending | None = None
        # The office: reachable now, or since when (monotonic) it has been silent.
        self.office_online = False
        self._office_silent_since = mono()
        self.offline_after = config.offline.after_minutes * 60
        self._offline_reported = False
        # Interlock: the peer's last state (None: never heard) and our own link.
        self.interlock_peer = config.interlock.peer if config.interlock else None
        self._peer_state: PeerState | None = None
        self._peer_online = False
        self._link_up = False

    # --- posture ---------------------------------------------------------------------------
    def start(self) -> None:
        """At the daemon's start: the office's silence counts from now; evaluate the posture
        now and at every minute boundary from now on."""
        self._office_silent_since = self.mono()
        self.evaluate("startup")

    def evaluate(self, source: str = "schedule") -> PostureNow:
        if not self.windows:
            return self.posture
        now = posture_at(
            self.windows, self.holidays, local_time(self.clock(), self.tz), self.opened_at
        )
        before = self.posture
        self.posture = now
        if now.posture is not before.posture or now.waiting != before.waiting:
            fields: dict[str, Any] = {"source": source, "from": str(before.posture)}
            fields.update(now.as_state())
            log.info("posture_changed", **fields)
            self.record("posture_changed", fields)
        if (now.posture is Posture.FREE) != (before.posture is Posture.FREE):
            self.machine(In.FREE_ON if now.posture is Posture.FREE else In.FREE_OFF, source)
        self._arm()
        return now

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        # Windows are whole minutes: the next minute boundary, plus a little so the local
        # time read then is inside the new minute.
        delay = 60.0 - self.clock() % 60.0 + 0.05
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.evaluate()

    def pin_required(self) -> bool:
        """A card+PIN window is running: every card read needs its holder's PIN."""
        return self.posture.posture is Posture.CARD_PIN

    def granted_groups(self, groups: frozenset[str]) -> None:
        """After a grant of a person of ``groups``: a first arrival opens a waiting window."""
        opened = first_arrival(self.posture, groups)
        if opened is not None:
            self.opened_at = opened
            self.evaluate("first_to_arrive")

    @property
    def first_arrival_waiting(self) -> bool:
        return self.posture.waiting

    # --- decisions -------------------------------------------------------------------------
    def context(self, ctx: RuleContext) -> RuleContext:
        """The decision's context with what the site rules know now."""
        mode = ctx.mode
        if self.posture.posture is Posture.LOCKDOWN and mode is DoorMode.NORMAL:
            mode = DoorMode.LOCKDOWN
        interlock = None
        if self.interlock_peer is not None:
            peer = self._peer_state
            if peer is not None:
                peer = replace(peer, reachable=self._peer_online and self._link_up)
            interlock = interlock_allows(peer)
        return replace(
            ctx,
            mode=mode,
            office_silent_for=self.office_silent_for(),
            interlock_ok=interlock,
            pending=self.pending,
            mono_now=self.mono(),
        )

    def decided(self, decision: Decision) -> None:
        """Keep the two-person wait: the first person now waits; a pair clears it.

        Two reads decided at the same instant see the same wait (their contexts are taken
        before either decision returns from the store thread): both then wait alone, the later
        one remaining, which only ever refuses (the safe side)."""
        if decision.reason is Reason.TWO_PERSON and decision.person_id is not None:
            self.pending = Pending(decision.person_id, self.mono())
        elif decision.granted and decision.partner is not None:
            self.pending = None

    # --- the office, for the offline policy --------------------------------------------------
    def office_silent_for(self) -> float:
        return 0.0 if self.office_online else self.mono() - self._office_silent_since

    def office_changed(self, online: bool) -> None:
        """The office's availability as heard over the broker (or our link dropped)."""
        if online == self.office_online:
            return
        self.office_online = online
        if not online:
            self._office_silent_since = self.mono()
        log.info("office_availability", online=online)

    def offline_too_long(self) -> bool:
        return self.offline_after > 0 and self.office_silent_for() >= self.offline_after

    # --- interlock peer ----------------------------------------------------------------------
    def peer_state(self, state: dict[str, Any]) -> None:
        self._peer_state = PeerState(
            lock=str(state.get("lock", "unknown")),
            contact=str(state.get("contact", "unknown")),
            mode=str(state.get("mode", "normal")),
        )

    def peer_availability(self, online: bool) -> None:
        self._peer_online = online

    def link_changed(self, up: bool) -> None:
        """Our own broker link: without it neither the office nor the peer is heard."""
        self._link_up = up
        if not up:
            self.office_changed(False)

    # --- state -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.windows:
            out.update(self.posture.as_state())
        if self.offline_after > 0:
            out["offline_too_long"] = self.offline_too_long()
        if self.interlock_peer is not None:
            out["interlock"] = {
                "peer": self.interlock_peer,
                "allows": self.context(RuleContext()).interlock_ok,
            }
        if self.pending is not None:
            out["two_person_waiting"] = True
        return out

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
