"""The door's side of end-to-end receipts (docs/mqtt.md, receipts).

The broker's PUBACK only says the broker has an event; a broker killed with -9 can still lose
it. The office therefore confirms what it has *stored*: a signed ``Receipt`` per door naming
the run of ``seq`` it holds. Covered events are marked ``archived`` (only those may be
pruned). An event the broker acknowledged ``timeout`` seconds ago that no receipt covers yet is
marked unsent again and the drain offers it once more; the office drops the copy by ``id``.
Only while receipts stand still, though: receipts that keep moving on mean an office that is
storing, perhaps behind a backlog, and re-sends would only push it further behind.

All of this runs on the loop; the journal is written on the store thread through
``edgegate.store.journal`` like every other journal write.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable

import structlog

from edgegate.contract.messages import RECEIPT_GAPS, Receipt
from edgegate.contract.signing import RejectedMessage
from edgegate.store import journal
from edgegate.store.db import transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.drain import Drainer

log = structlog.get_logger(__name__)


def archive(conn: sqlite3.Connection, first: int, upto: int, now: float) -> int:
    with transaction(conn):
        return journal.mark_archived(conn, first, upto, now)


def resend(
    conn: sqlite3.Connection, upto: int, lacking: tuple[int, list[tuple[int, int]], int] | None
) -> int:
    with transaction(conn):
        return journal.resend(conn, upto, lacking)


class ReceiptKeeper:
    """Applies receipts and re-sends what none covered in time."""

    def __init__(
        self,
        store: AsyncStore,
        drainer: Drainer,
        connected: asyncio.Event,
        *,
        site: str,
        door: str,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.drainer = drainer
        self.connected = connected
        self.site = site
        self.door = door
        self.timeout = timeout
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.upto = 0
        # (when the broker acknowledged, highest seq then): the horizon of re-sends. Only
        # seqs acknowledged at least ``timeout`` ago are re-sent, so a receipt that is merely
        # on its way (an office draining a backlog) is given its time.
        self._acked: deque[tuple[float, int]] = deque()
        self._connected_at: float | None = None
        # When receipts last moved on. While they do, the office is storing (maybe behind a
        # backlog): re-sending then would only add load and push it further behind.
        self._progress_at = clock()
        # What the office's latest receipt says it lacks (None: no receipt yet, so all).
        self._lacking: tuple[int, list[tuple[int, int]], int] | None = None
        drainer.sent_listeners.append(self.on_sent)

    def on_sent(self, seq: int) -> None:
        self._acked.append((self.clock(), seq))

    async def handle(self, msg: Receipt) -> int:
        """Mark the receipt's run archived; returns how many events it newly covered."""
        if msg.site != self.site or msg.door != self.door:
            raise RejectedMessage("wrong_door", f"receipt for {msg.site}/{msg.door}")
        n = await self.store.call(archive, msg.first, msg.upto, time.time())
        self.counters["receipts"] += 1
        self.counters["archived"] += n
        if msg.upto > self.upto:
            self.upto = msg.upto
            self._progress_at = self.clock()
        if msg.upto >= self.upto:
            # Holes beyond the ones named (a full list) are unknown: above the last named.
            full = len(msg.missing) >= RECEIPT_GAPS
            above = msg.missing[-1][1] if full else (msg.last or msg.upto)
            self._lacking = (msg.first, list(msg.missing), above)
        if n:
            log.debug("receipt_applied", first=msg.first, upto=msg.upto, archived=n)
        return n

    async def run(self) -> None:
        # Events acknowledged before a restart get the same time from now on.
        pending = await self.store.call(journal.max_sent_unarchived)
        if pending:
            self._acked.append((self.clock(), pending))
        while True:
            await asyncio.sleep(min(self.timeout / 4, 5.0))
            await self.check()

    async def check(self) -> int:
        """Re-send what the broker acknowledged ``timeout`` ago and no receipt covers."""
        now = self.clock()
        if not self.connected.is_set():
            self._connected_at = None
            return 0
        if self._connected_at is None:
            self._connected_at = now
        # Just back on the broker: receipts queued in the door's session come first.
        if now - self._connected_at < min(self.timeout, 10.0):
            return 0
        if now - self._progress_at < self.timeout:
            return 0
        horizon = 0
        while self._acked and self._acked[0][0] <= now - self.timeout:
            horizon = max(horizon, self._acked.popleft()[1])
        if not horizon:
            return 0
        n = await self.store.call(resend, horizon, self._lacking)
        if n:
            self.counters["resent"] += n
            log.warning("events_resent_without_receipt", count=n, upto=horizon, receipt=self.upto)
            self.drainer.rewind()
        return n
