"""The journal drained to ``events`` at QoS 1, in ``seq`` order, marked sent only on PUBACK.

A window of ``max_inflight`` publishes is in flight at once (a strict one-at-a-time drain is
bound by the round trip, not the broker). Acknowledged seqs are collected and marked sent in
batches on the store thread; a seq is never marked before its own PUBACK, so a power cut, a
``kill -9`` or a lost broker costs at most re-sends of what was in flight (same ``id``:
receivers drop duplicates), never an event.

With receipts on, the drain publishes only events less than ``ahead`` (``receipt_window``)
above the lowest one no receipt covers: end-to-end flow control, so a slow or absent office
never has more than that queued for it at the broker (where a crash can lose it and a
persisting broker rewrites it all on every change), and a re-send after a crash is bounded.
The window never closes for good: that lowest event is unsent (it goes out), or a receipt
covers it, or the receipt keeper marks it unsent again; a receipt that covers events wakes
the drain (``notify``).

Resuming: across a reconnect, paho's persistent session re-sends the unacknowledged
publishes itself and the drain goes on from its cursor; after a restart the cursor starts at
0, i.e. at the lowest unsent seq. A publish the broker refuses rewinds the cursor to 0 after
a pause (doubling while refusals go on), so the refused events are offered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from edgegate.store import journal
from edgegate.store.db import transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.link import MqttLink

log = structlog.get_logger(__name__)

PRUNE_BATCH = 5000
REFUSAL_PAUSE_MIN = 1.0
REFUSAL_PAUSE_MAX = 60.0


def mark_sent(conn: sqlite3.Connection, seqs: list[int]) -> None:
    with transaction(conn):
        journal.mark_sent(conn, seqs)


def prune_step(
    conn: sqlite3.Connection,
    keep_sent: int,
    older_than: str | None,
    archived_only: bool = False,
) -> int:
    """One batch of ``journal.prune`` in its own transaction."""
    with transaction(conn):
        return journal.prune(
            conn,
            keep_sent=keep_sent,
            older_than_ts=older_than,
            limit=PRUNE_BATCH,
            archived_only=archived_only,
        )


class Drainer:
    def __init__(
        self,
        store: AsyncStore,
        link: MqttLink,
        topic: str,
        *,
        window: int = 256,
        batch: int = 1000,
        flush_seconds: float = 0.1,
        ahead: int | None = None,
    ) -> None:
        self.store = store
        self.link = link
        self.topic = topic
        self.window = window
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.ahead = ahead
        self.published = 0
        self.acked = 0
        self.failed = 0
        self.inflight = 0
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._slot = asyncio.Event()
        self._rewind = False
        # Pause before offering refused events again; doubles while the broker keeps
        # refusing (an ACL, a quota), back to the minimum after an accepted event.
        self.refusal_pause = REFUSAL_PAUSE_MIN
        self.cursor = 0
        self._restart = False
        # Seqs published and not yet marked sent (in flight, or acknowledged and waiting for
        # the next flush): a rewind skips them, it would only send copies. Seen: the rewinds
        # of re-send rounds doubled what the office received in the no-loss test.
        self._busy: set[int] = set()
        # Called with the highest seq of each batch marked sent (receipts: sync/receipts.py).
        self.sent_listeners: list[Callable[[int], None]] = []

    def rewind(self) -> None:
        """Events were marked unsent again (no receipt came): offer them from the lowest
        unsent seq on. Publishes in flight go on and are not offered twice."""
        self._restart = True
        self._wake.set()

    def notify(self, _event: object = None) -> None:
        """A new event was journaled (Door listener): look for it now."""
        self._wake.set()

    def _on_ack(self, seq: int, fut: asyncio.Future[None]) -> None:
        self.inflight -= 1
        self._slot.set()
        if fut.cancelled():
            self._busy.discard(seq)
            return
        if fut.exception() is not None:
            self._busy.discard(seq)
            self.failed += 1
            if not self._rewind:
                log.warning("event_publish_refused", seq=seq, error=str(fut.exception()))
            self._rewind = True
            return
        self.acked += 1
        self.refusal_pause = REFUSAL_PAUSE_MIN
        self._acked.append(seq)
        if len(self._acked) >= self.batch:
            self._wake.set()

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop(), name="drain-flush")
        try:
            await self._drain_loop()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self.flush()

    async def _drain_loop(self) -> None:
        while True:
            await self.link.connected.wait()
            if self._rewind:
                # Let in-flight publishes settle, then offer every unsent event again.
                await asyncio.sleep(self.refusal_pause)
                self.refusal_pause = min(REFUSAL_PAUSE_MAX, self.refusal_pause * 2)
                await self.flush()
                self._rewind = False
                self.cursor = 0
            if self._restart:
                self._restart = False
                self.cursor = 0
            self._wake.clear()
            rows = await self.store.call(journal.unsent_wire, self.cursor, self.batch, self.ahead)
            if not rows:
                # Also wake now and then: a rewind or a reconnect may have work.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            for seq, payload in rows:
                if seq in self._busy:
                    self.cursor = seq  # handled already; its failure rewinds (_on_ack)
                    continue
                while self.inflight >= self.window:
                    self._slot.clear()
                    await self._slot.wait()
                if self._rewind:
                    break
                fut = self.link.publish(self.topic, payload, qos=1)
                self._busy.add(seq)
                self.inflight += 1
                self.published += 1
                fut.add_done_callback(functools.partial(self._on_ack, seq))
                self.cursor = seq

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        if not self._acked:
            return
        seqs, self._acked = self._acked, []
        try:
            await self.store.call(mark_sent, seqs)
        except Exception:
            # Not marked: they go out again after a rewind or a restart (duplicates, never
            # losses).
            log.exception("mark_sent_failed", count=len(seqs))
            return
        finally:
            self._busy.difference_update(seqs)
        for listener in self.sent_listeners:
            listener(max(seqs))

    async def prune(
        self, keep_sent: int, keep_days: float | None, *, archived_only: bool = False
    ) -> int:
        """Prune in small batches so decisions never wait long behind it."""
        older = None
        if keep_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=keep_days)
            older = journal.rfc3339(cutoff.timestamp())
        total = 0
        while True:
            n = await self.store.call(prune_step, keep_sent, older, archived_only)
            total += n
            if n < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
        if total:
            log.info("journal_pruned", deleted=total)
        return total
