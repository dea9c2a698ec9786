"""The office's outbox, run by ``central serve`` whether or not the console is on.

Notices to hosts (visitors), escalated alarms for registered webhooks and the archived events
webhooks asked for are all rows of the outbox (services/outbox.py); this runner delivers them.
It used to live inside the console, so an office without ``[http]`` queued its hosts' notices
and never sent them. It runs on its own thread and event loop, so a slow receiver, a slow mail
server or a slow query here never delays the archive (serve's loop) or the console.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
import structlog

from edgegate.central import archive, store
from edgegate.central.config import CentralConfig
from edgegate.central.services import Office, open_office, outbox
from edgegate.central.writer_handoff import Writes

log = structlog.get_logger(__name__)

FANOUT_CURSOR = "webhook_events"
OUTBOX_TICK = 1.0


class OutboxRunner:
    """``is_leader``: whether this instance holds the singleton duties (central/leader.py);
    webhooks are one of them, so only that instance fans events out and delivers."""

    def __init__(self, config: CentralConfig, is_leader: Callable[[], bool]) -> None:
        # Its own Office (engines): used only on the outbox thread; its writes are
        # background ones (an operator's change goes first, central/writer_handoff.py).
        self.office: Office = open_office(config, writes=Writes.BULK)
        self.is_leader = is_leader
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Whether the last fan-out found a webhook wanting events (outbox thread writes, the
        # loop reads a bool): only then is every commit worth a wake.
        self._fanning = False
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        if config.smtp is not None:
            # E-mail from the outbox (visitors' notices, anything enqueued as "email").
            from edgegate.central.notify import email_channel

            outbox.register_channel("email", email_channel(config.smtp))

    def wake(self) -> None:
        """Look for work now rather than at the next tick (new events were archived)."""
        self._wake.set()

    def committed(self, _changes: object) -> None:
        """``CentralServer.on_committed``: archived events may be wanted by webhooks. With
        none (the last fan-out saw to it) or without the duties, the tick is soon enough:
        a wake per commit cost three queries and a cursor write per batch, a tenth of a
        busy office's time spent on nothing. A webhook made meanwhile is seen at the next
        tick (``OUTBOX_TICK``) and gets the events archived since the one before it."""
        if self._fanning and self.is_leader():
            self._wake.set()

    def start(self) -> None:
        self._thread.start()
        log.info("outbox_started", smtp="email" in outbox.CHANNELS)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 15)
        self.office.close()

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        async with httpx.AsyncClient(timeout=outbox.TIMEOUT_SECONDS) as client:
            dispatcher = outbox.Dispatcher(self.office.engine, client)
            while not self._stop.is_set():
                try:
                    if self.is_leader():  # read across threads: a bool, set on serve's loop
                        self.fan_out()
                        await dispatcher.run_once()
                except Exception:
                    log.exception("outbox_failed")
                await asyncio.to_thread(self._wake.wait, OUTBOX_TICK)
                self._wake.clear()

    def fan_out(self) -> None:
        """Archived events after the cursor become outbox rows for the webhooks wanting them."""
        master = self.office.master()
        engine = self.office.engine
        cursor = outbox.get_cursor(engine, FANOUT_CURSOR)
        self._fanning = cursor is not None and outbox.wanted(engine)
        if not self._fanning:
            # First start: webhooks get events from now on, not the history. No webhook: the
            # cursor moves to the archive's end without reading (and parsing) every archived
            # event, which at thousands of events per second cost the office as much CPU as
            # archiving them. A webhook gets events from its creation on.
            with store.reading(master) as conn:
                end = archive.last_event(conn)
            if end != cursor:
                outbox.set_cursor(engine, FANOUT_CURSOR, end)
            return
        while True:
            with store.reading(master) as conn:
                events = archive.search_events(conn, {}, after=cursor, limit=500, oldest_first=True)
            if not events:
                return
            cursor = events[-1]["n"]
            plain = [{k: v for k, v in e.items() if k not in ("n", "received")} for e in events]
            outbox.fan_out(engine, plain, (FANOUT_CURSOR, cursor))
