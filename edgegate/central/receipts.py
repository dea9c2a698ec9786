"""End-to-end receipts, the office's side (docs/mqtt.md, receipts).

After each archived batch the office works out, per door and journal epoch that sent
events, the run of ``seq`` it holds without a hole (``first`` = the lowest seq it has of the
door, ``upto`` = the highest seq below which nothing is missing) and publishes it, signed, on
the door's ``receipts`` topic.
The door keeps every event until a receipt covers it and re-sends the rest after a timeout, so
an event a broker acknowledged and then lost to a crash comes again.

Runs are per (door, epoch): a door's ``seq`` starts at 1 again when its store is replaced,
and a restored backup re-uses seqs; the epoch (edgegate/store/epoch.py, ``''`` for doors
from before epochs) tells those lives of its journal apart, so a run of one never covers
the events of another. Receipts name it (left out when ``''``: the receipts of old doors
are as they were, and those doors refuse fields they do not know).

The run is computed from the archive, so it is right after an office restart and whoever
stored the event. Each door's last run is cached and advanced with what this instance itself
committed since (``advance`` is handed the seqs of its batches): a run that those seqs carry
on without a hole needs no query at all, which is the steady state of a lone instance (at 500
doors draining a backlog that was four or five queries per door four times a second, the
largest share of the office's database work). Where this instance's seqs leave a hole (the
seq is lost, or another instance stored it: a shared subscription hands a door's events to
the instances in turn) the archive is asked, and only then are the holes above the run looked
up. The cache is only an optimisation: an event below the cached ``first`` (a door re-sending
old events) recomputes the run from the archive.

A receipt goes out when a door's run grew, and again (at most every ``repeat_seconds``) when a
door sent events the run already covered: it re-sends because it missed the receipt or lost
its marks in a crash, and only a new receipt settles that. A run that grew goes out at once
when the door's last receipt is ``min_gap`` old or the run grew by ``min_growth`` since;
otherwise it waits for the first of the two (held back, not dropped). A door sending now
and then gets each receipt at once; 500 doors draining a backlog a few events a second each
get one a second instead of one per event (each receipt is signed, sent at QoS 1,
acknowledged and verified at the door: half of the office's MQTT work before this); a door
draining fast still gets one per ``min_growth``, far inside its ``receipt_window``. Receipts
are not retained: a door with a replaced store starts at seq 1 again and must not be covered
by its predecessor's run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from sqlalchemy import Connection, func, select

from edgegate.central.schema.archive import events
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer
from edgegate.contract.topics import DoorTopics

log = structlog.get_logger(__name__)

Run = tuple[int, int]  # (first, upto)
Journal = tuple[str, str]  # (door, epoch): one life of a door's journal


def held_run(
    conn: Connection, site: str, door: str, known: Run | None, epoch: str = ""
) -> Run | None:
    """The run of seqs held for one door's journal epoch, advanced from ``known`` when it
    still holds. Every probe walks the archive's ``events_door_seq`` index (site, door,
    epoch, seq)."""
    mine = (events.c.site == site) & (events.c.door == door) & (events.c.epoch == epoch)
    low = conn.execute(
        select(func.min(events.c.seq)).where(mine, events.c.seq.is_not(None))
    ).scalar_one()
    if low is None:
        return None
    if known is None or low < known[0]:
        first, start = low, low
    else:
        first, upto = known
        nxt = conn.execute(select(events.c.seq).where(mine, events.c.seq == upto + 1).limit(1))
        if nxt.first() is None:
            return known
        start = upto + 1
    # The first seq from ``start`` on whose successor is missing ends the run.
    f = events.alias("f")
    successor = select(f.c.seq).where(*_same_journal(f), f.c.seq == events.c.seq + 1).exists()
    end = conn.execute(
        select(events.c.seq)
        .where(mine, events.c.seq >= start, ~successor)
        .order_by(events.c.seq)
        .limit(1)
    ).scalar_one()
    return first, end


def _same_journal(f: Any) -> tuple[Any, ...]:
    """Correlates the alias ``f`` with ``events``: the same door's same journal epoch."""
    return (f.c.site == events.c.site, f.c.door == events.c.door, f.c.epoch == events.c.epoch)


def holes(
    conn: Connection, site: str, door: str, upto: int, epoch: str = ""
) -> tuple[int | None, list[tuple[int, int]]]:
    """(the highest seq held, the first ``RECEIPT_GAPS`` holes above ``upto``). Only asked
    when the run stopped at a hole, i.e. when a broker lost something."""
    mine = (events.c.site == site) & (events.c.door == door) & (events.c.epoch == epoch)
    last = conn.execute(select(func.max(events.c.seq)).where(mine)).scalar_one()
    if last is None or last <= upto:
        return None, []
    # Every held seq whose successor is missing (below last) ends an island; the hole after
    # it runs to the next held seq.
    f = events.alias("f")
    successor = select(f.c.seq).where(*_same_journal(f), f.c.seq == events.c.seq + 1).exists()
    islands = conn.execute(
        select(events.c.seq)
        .where(mine, events.c.seq > upto, events.c.seq < last, ~successor)
        .order_by(events.c.seq)
        .limit(m.RECEIPT_GAPS - 1)
    ).scalars()
    ends = [upto, *islands]
    gaps = []
    for end in ends:
        nxt = conn.execute(
            select(func.min(events.c.seq)).where(mine, events.c.seq > end)
        ).scalar_one()
        # Each statement sees what is committed by then: another instance may have stored
        # the seqs just above ``upto`` since the run was computed. Such a hole is no hole.
        if nxt is not None and nxt - 1 >= end + 1:
            gaps.append((end + 1, nxt - 1))
    return last, gaps


@dataclass
class Receipts:
    """Per-(door, epoch) runs (store thread) and their publication (loop thread)."""

    site: str
    signer: Signer
    repeat_seconds: float = 2.0
    min_gap: float = 1.0
    min_growth: int = 256
    clock: Callable[[], float] = time.monotonic
    runs: dict[Journal, Run] = field(default_factory=dict)
    # Per journal: (highest seq held, holes above the run), when the run stopped at a hole.
    gaps: dict[Journal, tuple[int | None, list[tuple[int, int]]]] = field(default_factory=dict)
    _sent: dict[Journal, tuple[Run, float]] = field(default_factory=dict)
    _held: dict[Journal, Run] = field(default_factory=dict)  # grown, not announced yet
    sent: int = 0
    # Per journal: seqs above its cached run that this instance committed (the run's next
    # seqs, once the hole below them is filled). Bounded by what a door has unarchived.
    _above: dict[Journal, set[int]] = field(default_factory=dict)
    queries: int = 0  # journals that needed the archive (the rest advanced from _above)

    def advance(
        self, conn: Connection, committed: Mapping[Journal, Iterable[int]]
    ) -> dict[Journal, Run]:
        """Receipts' thread: the current run of each (door, epoch) that this instance
        committed events of since the last call (``committed``: their seqs, copies
        included: a copy's seq is held too). Journals without a seq are left out."""
        out = {}
        for key in sorted(committed):
            run = self._advance(conn, key, set(committed[key]))
            if run is not None:
                self.runs[key] = run
                out[key] = run
        return out

    def _advance(self, conn: Connection, key: Journal, seqs: set[int]) -> Run | None:
        door, epoch = key
        known = self.runs.get(key)
        if known is None or not seqs or min(seqs) < known[0]:
            # No run yet (a first event, an office restart) or older events than it starts
            # at: from the archive alone.
            self._above.pop(key, None)
            run = held_run(conn, self.site, door, known, epoch)
            self.queries += 1
        else:
            above = self._above.setdefault(key, set())
            above.update(s for s in seqs if s > known[1])
            upto = known[1]
            while upto + 1 in above:  # the run carried on by this instance's own seqs
                upto += 1
            above.difference_update(range(known[1] + 1, upto + 1))
            if not above and key not in self.gaps:
                return known[0], upto
            # A hole below seqs this instance holds (or one named last time): the archive
            # knows whether another instance filled it.
            run = held_run(conn, self.site, door, (known[0], upto), epoch)
            self.queries += 1
        if run is None:
            return None
        mine = self._above.get(key)
        if mine:
            mine.difference_update([s for s in mine if s <= run[1]])
        found = holes(conn, self.site, door, run[1], epoch)
        if found == (None, []):
            self.gaps.pop(key, None)
        else:
            self.gaps[key] = found
        return run

    def ready(
        self, committed: dict[Journal, list[int]]
    ) -> tuple[dict[Journal, list[int]], dict[Journal, list[int]]]:
        """(journals whose runs are worth computing now, the rest for a later round). A
        door whose last receipt is younger than ``min_gap`` and that sent fewer than
        ``min_growth`` events since would only have its receipt held back (``due``): its
        run is not even computed until then. With two instances sharing a door's events
        every run goes to the archive (each instance's seqs have holes), so this is what
        bounds their receipt queries to one round per door and second."""
        now = self.clock()
        ready: dict[Journal, list[int]] = {}
        later: dict[Journal, list[int]] = {}
        for key, seqs in committed.items():
            last = self._sent.get(key)
            young = last is not None and now - last[1] < self.min_gap
            (later if young and len(seqs) < self.min_growth else ready)[key] = seqs
        return ready, later

    @property
    def held_back(self) -> int:
        """Runs that grew and wait for their door's ``min_gap`` (``due`` must be asked
        again, with no new runs if need be)."""
        return len(self._held)

    def due(self, runs: dict[Journal, Run]) -> list[m.Receipt]:
        """The receipts to publish now (see the module docstring): of ``runs`` and of the
        runs held back before."""
        now = self.clock()
        issued = datetime.now(UTC)
        out = []
        self._held.update(runs)
        for key, run in list(self._held.items()):
            last = self._sent.get(key)
            if last is not None:
                (_, upto), at = last
                if last[0] == run:
                    del self._held[key]
                    if now - at < self.repeat_seconds:
                        continue
                elif now - at < self.min_gap and run[1] - upto < self.min_growth:
                    continue  # held back: announced with more, or when min_gap is up
            self._held.pop(key, None)
            self._sent[key] = (run, now)
            held, missing = self.gaps.get(key, (None, []))  # none named: none known
            out.append(
                m.Receipt(
                    type="receipt",
                    site=self.site,
                    door=key[0],
                    epoch=key[1],
                    first=run[0],
                    upto=run[1],
                    last=held,
                    missing=missing,
                    issued=issued,
                )
            )
        return out

    def publish(self, client: mqtt.Client, receipts: list[m.Receipt]) -> None:
        """QoS 1, not retained. A receipt lost on the way costs a re-send, nothing more."""
        for receipt in receipts:
            # No epoch: left out, as doors from before epochs refuse fields they do not know.
            body = receipt.model_dump(mode="json", exclude=None if receipt.epoch else {"epoch"})
            client.publish(
                DoorTopics(self.site, receipt.door).receipts, self.signer.sign(body), qos=1
            )
            self.sent += 1
