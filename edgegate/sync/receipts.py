"""The door's side of end-to-end receipts (docs/mqtt.md, receipts).

The broker's PUBACK only says the broker has an event; a broker killed with -9 can still lose
it. The office therefore confirms what it has *stored*: a signed ``Receipt`` per door naming
the run of ``seq`` it holds. Covered events are marked ``archived`` (only those may be
pruned). An event the broker acknowledged that no receipt covers in time is marked unsent
again and the drain offers it once more; the office drops the copy by ``id``.

"In time" is TCP's retransmission timer (RFC 6298) applied to receipts: the door measures how
long after a PUBACK the receipt covering that event comes (the office's lag: a slow office, a
backlog at the broker) and waits ``max(timeout, srtt + 4 * rttvar)``. The lag is taken from an
event's first PUBACK even when it went again (not Karn's rule: re-sends cover every recent
event, so no sample would be left; too long a wait costs a late re-send, too short a storm).
Only while receipts stand still, too: receipts that keep moving on mean an office that is
storing. A round re-sends what the office's latest receipt named as missing in full, but of
what it said nothing about only the lowest ``probe`` (TCP, too, re-sends the first segment
on a timeout, not the window). And a round is followed by a pause that doubles while
receipts stand still (back to one timer when one moves on). Without these, an office that
fell behind after a broker crash got every uncovered event again each ``timeout``: the
copies queued at the broker for it, the broker slowed, its PUBACKs and the receipts with it,
and the door's window stayed full (the no-loss test: 49,226 copies for 10,000 events, and
no end). The receipt window (``drain.py``) bounds what is ever ahead of the receipts.

Receipts name the journal epoch of the events they cover (edgegate/store/epoch.py): a
receipt marks only events of its epoch. One naming an epoch this store never journaled in
(the office's run of the door's earlier store, a receipt meant for another copy of it)
changes nothing: it is counted (``other_epoch``) and logged. One naming an earlier epoch of
this store (a restored backup's events from before the restore) settles those events.

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
from edgegate.store import epoch as store_epoch
from edgegate.store import journal
from edgegate.store.db import transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.drain import Drainer

log = structlog.get_logger(__name__)

# The longest wait for a receipt, learned lag and doubling included (or the configured
# timeout when that is longer).
RESEND_PAUSE_MAX = 3600.0
# The learned wait stays within this many timeouts: a lag learned while the office worked
# through a backlog must not leave a lost event waiting for long.
WAIT_MAX_TIMEOUTS = 3


def archive(conn: sqlite3.Connection, epoch: str, first: int, upto: int, now: float) -> int:
    with transaction(conn):
        return journal.mark_archived(conn, first, upto, now, epoch)


def resend(
    conn: sqlite3.Connection,
    upto: int,
    lacking: dict[str, journal.Lacking] | None,
    probe: int | None,
) -> int:
    with transaction(conn):
        return journal.resend(conn, upto, lacking, probe)


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
        probe: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.drainer = drainer
        self.connected = connected
        self.site = site
        self.door = door
        self.timeout = timeout
        # Of what the office said nothing about, a round re-sends only the lowest ``probe``.
        self.probe = probe
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
        # What the office's latest receipt of each epoch says it lacks (none yet: all).
        self._lacking: dict[str, journal.Lacking] = {}
        # The store's journal epoch (read at the first receipt or at ``run``).
        self.epoch: str | None = None
        # The receipts' lag (RFC 6298): smoothed and its variation, from (first PUBACK, seq)
        # samples; ``_sampled_upto`` keeps a re-send's PUBACK from making a second one.
        self.srtt: float | None = None
        self.rttvar = 0.0
        self._samples: deque[tuple[float, int]] = deque()
        self._sampled_upto = 0
        # Pacing of re-send rounds while receipts stand still: none before ``_resend_after``;
        # each round doubles ``_backoff``; a receipt that moves on resets both.
        self._backoff = 1
        self._resend_after = 0.0
        drainer.sent_listeners.append(self.on_sent)

    @property
    def wait(self) -> float:
        """How long after a PUBACK a receipt may take before the event goes again."""
        learned = 0.0 if self.srtt is None else self.srtt + 4 * self.rttvar
        return max(self.timeout, min(learned, WAIT_MAX_TIMEOUTS * self.timeout, RESEND_PAUSE_MAX))

    def on_sent(self, seq: int) -> None:
        now = self.clock()
        self._acked.append((now, seq))
        if seq > self._sampled_upto:
            self._sampled_upto = seq
            self._samples.append((now, seq))

    def _observe(self, lag: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = lag, lag / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - lag)
            self.srtt = 0.875 * self.srtt + 0.125 * lag

    async def handle(self, msg: Receipt) -> int:
        """Mark the receipt's run archived; returns how many events it newly covered."""
        if msg.site != self.site or msg.door != self.door:
            raise RejectedMessage("wrong_door", f"receipt for {msg.site}/{msg.door}")
        if self.epoch is None:
            self.epoch = await self.store.call(store_epoch.current)
        mine = msg.epoch == self.epoch
        if not mine and not await self.store.call(journal.has_unarchived, msg.epoch):
            # Not this store's: a run of seqs another life of this door's journal used.
            self.counters["other_epoch"] += 1
            log.warning(
                "receipt_other_epoch",
                epoch=msg.epoch,
                ours=self.epoch,
                first=msg.first,
                upto=msg.upto,
            )
            return 0
        n = await self.store.call(archive, msg.epoch, msg.first, msg.upto, time.time())
        self.counters["receipts"] += 1
        self.counters["archived"] += n
        if not mine:
            # An earlier epoch's events (a restored journal): they are settled, and the
            # office is storing; the pacing and the lag follow the current epoch only.
            self._lacking[msg.epoch] = self._lacks(msg)
            if n:
                self._progress_at = self.clock()
                self.drainer.notify()
            return n
        if msg.upto > self.upto:
            now = self.clock()
            self.upto = msg.upto
            self._progress_at = now
            self._backoff = 1
            self._resend_after = 0.0
            # The lag of the newest event this receipt covers, from its first PUBACK.
            acked_at = None
            while self._samples and self._samples[0][1] <= msg.upto:
                acked_at = self._samples.popleft()[0]
            if acked_at is not None:
                self._observe(now - acked_at)
        if n:
            self.drainer.notify()  # the receipt window (drain.py) may have moved on
        if msg.upto >= self.upto:
            self._lacking[msg.epoch] = self._lacks(msg)
        if n:
            log.debug("receipt_applied", first=msg.first, upto=msg.upto, archived=n)
        return n

    @staticmethod
    def _lacks(msg: Receipt) -> journal.Lacking:
        # Holes beyond the ones named (a full list) are unknown: above the last named.
        full = len(msg.missing) >= RECEIPT_GAPS
        above = msg.missing[-1][1] if full else (msg.last or msg.upto)
        return (msg.first, list(msg.missing), above)

    async def run(self) -> None:
        if self.epoch is None:
            self.epoch = await self.store.call(store_epoch.current)
        # Events acknowledged before a restart get the same time from now on.
        pending = await self.store.call(journal.max_sent_unarchived)
        if pending:
            self._acked.append((self.clock(), pending))
        while True:
            await asyncio.sleep(min(self.timeout / 4, 5.0))
            await self.check()

    async def check(self) -> int:
        """Re-send what the broker acknowledged ``wait`` ago and no receipt covers."""
        now = self.clock()
        if not self.connected.is_set():
            self._connected_at = None
            return 0
        if self._connected_at is None:
            self._connected_at = now
        # Just back on the broker: receipts queued in the door's session come first.
        if now - self._connected_at < min(self.timeout, 10.0):
            return 0
        wait = self.wait
        if now - self._progress_at < wait or now < self._resend_after:
            return 0
        horizon = 0
        while self._acked and self._acked[0][0] <= now - wait:
            horizon = max(horizon, self._acked.popleft()[1])
        if not horizon:
            return 0
        n = await self.store.call(resend, horizon, self._lacking, self.probe)
        if n:
            self.counters["resent"] += n
            self.counters["resend_rounds"] += 1
            pause = min(wait * self._backoff, max(self.timeout, RESEND_PAUSE_MAX))
            self._resend_after = now + pause
            self._backoff *= 2
            log.warning(
                "events_resent_without_receipt",
                count=n,
                upto=horizon,
                receipt=self.upto,
                wait=round(wait, 1),
                next_in=round(pause, 1),
            )
            self.drainer.rewind()
        return n
