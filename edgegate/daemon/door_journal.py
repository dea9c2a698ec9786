"""The one path every event of the door takes to the journal.

A decision, a machine event (contact, exit, fire, modes), a reader fault, a command's
acknowledgement, a gate's time-out: each goes through ``DoorJournal``, which in ONE store
transaction writes the journal row and adds it to the traffic counters
(``edgegate.core.traffic``), then, on the loop after the commit, counts the decision and tells
the listeners (MQTT drain, reader feedback, tests). So what is counted can no longer depend on
which part of the door wrote the event.

Callers that change other state with the event (a decision saves the person's presence) use
``write_tx`` inside their own transaction on the store thread, then ``publish`` on the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from edgegate.core.traffic import traffic_column
from edgegate.store import journal
from edgegate.store.db import transaction
from edgegate.store.journal import Event
from edgegate.store.rules_state import bump
from edgegate.store.store import AsyncStore

log = structlog.get_logger(__name__)

EventListener = Callable[[Event], None]
# (event type, fields); fields that are None are left out of the row.
Entry = tuple[str, dict[str, Any]]

DECISIONS = {"access_granted": "granted", "access_denied": "denied"}


class DoorJournal:
    def __init__(
        self,
        store: AsyncStore,
        *,
        site: str,
        door: str,
        turnstile: bool,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.site = site
        self.door = door
        self.turnstile = turnstile
        self.clock = clock
        # True while the wall clock is known to be behind (daemon/wall_clock.py): the events
        # written meanwhile are flagged, their timestamps are only a lower bound.
        self.unsynchronised: Callable[[], bool] = lambda: False
        self._listeners: list[EventListener] = []
        # In-memory figures for telemetry ``decisions``; errors are counted by whoever failed.
        self.counters = {"granted": 0, "denied": 0, "errors": 0, "assist_requested": 0}

    def add_listener(self, fn: EventListener) -> None:
        """Called with every journaled event, on the loop, after it is committed."""
        self._listeners.append(fn)

    # --- on the store thread ---------------------------------------------------------------
    def write_tx(
        self, conn: sqlite3.Connection, entries: Iterable[Entry], now: float
    ) -> list[Event]:
        """Journal rows and their traffic counts; call inside an open transaction."""
        out = []
        flag = self.unsynchronised()
        for type_, fields in entries:
            clean = {k: v for k, v in fields.items() if v is not None}
            if flag:
                clean["clock"] = "unsynchronised"
            out.append(journal.append(conn, type_, clean, site=self.site, door=self.door, now=now))
            column = traffic_column(type_, clean, turnstile=self.turnstile)
            if column is not None:
                bump(conn, self.door, now, column)
        return out

    def commit_tx(
        self, conn: sqlite3.Connection, entries: Sequence[Entry], now: float
    ) -> list[Event]:
        with transaction(conn):
            return self.write_tx(conn, entries, now)

    # --- on the loop -----------------------------------------------------------------------
    async def write(self, entries: Sequence[Entry]) -> list[Event]:
        """Journal ``entries`` in one transaction, then publish them."""
        events = await self.store.call(self.commit_tx, entries, self.clock())
        self.publish(events)
        return events

    async def record(self, type_: str, **fields: Any) -> Event:
        """Journal one event that changes no other state (faults, acknowledgements, alarms)."""
        return (await self.write([(type_, fields)]))[0]

    def publish(self, events: Iterable[Event]) -> None:
        """After the commit: count decisions and tell the listeners, in journal order."""
        for event in events:
            counter = DECISIONS.get(event.type)
            if counter is not None:
                self.counters[counter] += 1
            elif event.type == "assist_requested":
                self.counters["assist_requested"] += 1
            for fn in self._listeners:
                try:
                    fn(event)
                except Exception:
                    log.exception("event_listener_failed", event_type=event.type)
