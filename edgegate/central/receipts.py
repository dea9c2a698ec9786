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
up; every journal asked in a round is asked in one statement (``held_runs``, then ``holes``),
which is what two instances, whose own seqs always have holes, do for every door. The cache
is only an optimisation: an event below the cached ``first`` (a door re-sending old events)
recomputes the run from the archive.

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
from sqlalchemy import CTE, BigInteger, ColumnClause, Connection, Text, column, func, select, values

from edgegate.central.schema.archive import events
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer
from edgegate.contract.topics import DoorTopics

log = structlog.get_logger(__name__)

Run = tuple[int, int]  # (first, upto)
Journal = tuple[str, str]  # (door, epoch): one life of a door's journal


# A start below every seq: a journal with no cached run is walked from its lowest seq.
_BOTTOM = -(2**62)
_CHUNK = 1000  # journals per statement (SQLite allows 32,766 parameters)


def _journals(rows: list[tuple[Any, ...]], *names: str) -> CTE:
    """The journals asked about, as a ``VALUES`` CTE ``k(door, epoch, *names)``: one
    statement for every journal of a round (rendered as ``WITH k(...) AS (VALUES ...)`` on
    SQLite and PostgreSQL alike)."""
    cols: list[ColumnClause[Any]] = [column("door", Text()), column("epoch", Text())]
    cols += [column(name, BigInteger()) for name in names]
    return values(*cols, name="k").data(rows).cte("k")


def held_runs(
    conn: Connection, site: str, known: Mapping[Journal, Run | None]
) -> dict[Journal, tuple[Run, int]]:
    """Per journal: (the run of seqs held, advanced from ``known`` when that still holds;
    the highest seq held). Journals with no event are left out.

    One statement per round for every journal asked, not five per journal: with two
    instances sharing the doors' events every journal is asked every round (each
    instance's own seqs have holes), and per-journal statements were the largest share of
    both the office's and PostgreSQL's CPU. Every probe is a correlated lookup on the
    archive's ``events_door_seq`` index (site, door, epoch, seq)."""
    out: dict[Journal, tuple[Run, int]] = {}
    todo = dict(known)
    while todo:
        keys = sorted(todo)
        chunk, rest = keys[:_CHUNK], keys[_CHUNK:]
        rows = []
        for door, epoch in chunk:
            run = todo[(door, epoch)]
            rows.append((door, epoch, _BOTTOM if run is None else run[1] + 1))
        k = _journals(rows, "start")
        e, f = events.alias("e"), events.alias("f")
        mine = (e.c.site == site) & (e.c.door == k.c.door) & (e.c.epoch == k.c.epoch)
        successor = (
            select(f.c.seq)
            .where(
                f.c.site == e.c.site,
                f.c.door == e.c.door,
                f.c.epoch == e.c.epoch,
                f.c.seq == e.c.seq + 1,
            )
            .exists()
        )
        stmt = select(
            k.c.door,
            k.c.epoch,
            select(func.min(e.c.seq)).where(mine).scalar_subquery(),
            select(func.max(e.c.seq)).where(mine).scalar_subquery(),
            select(e.c.seq).where(mine, e.c.seq == k.c.start).exists(),
            # The first seq from ``start`` on whose successor is missing ends the run.
            select(e.c.seq)
            .where(mine, e.c.seq >= k.c.start, ~successor)
            .order_by(e.c.seq)
            .limit(1)
            .scalar_subquery(),
        )
        again: dict[Journal, Run | None] = {key: todo[key] for key in rest}
        for door, epoch, low, last, has_start, end in conn.execute(stmt):
            key = (door, epoch)
            if low is None:
                continue
            run = todo[key]
            if run is None:
                out[key] = ((low, end), last)
            elif low < run[0]:
                again[key] = None  # older seqs than the run starts at: from the lowest
            elif not has_start:
                out[key] = (run, last)  # the seq after the run is still missing
            else:
                out[key] = ((run[0], end), last)
        todo = again
    return out


def holes(
    conn: Connection, site: str, tops: Mapping[Journal, tuple[int, int]]
) -> dict[Journal, list[tuple[int, int]]]:
    """Per journal of ``tops`` ((upto, last): its run's end and the highest seq held), the
    first ``RECEIPT_GAPS`` holes between them, in one statement for all. Only asked when a
    run stopped at a hole: a broker lost something, or another instance has not committed
    its share yet. The statement sees what is committed by then: a hole another instance
    filled since the run was computed is no hole."""
    out: dict[Journal, list[tuple[int, int]]] = {key: [] for key in tops}
    keys = sorted(tops)
    for at in range(0, len(keys), _CHUNK):
        rows = [(door, epoch, *tops[(door, epoch)]) for door, epoch in keys[at : at + _CHUNK]]
        k = _journals(rows, "upto", "last")
        e = events.alias("e")
        held = (
            select(
                e.c.door,
                e.c.epoch,
                e.c.seq,
                k.c.upto,
                func.lag(e.c.seq)
                .over(partition_by=(e.c.door, e.c.epoch), order_by=e.c.seq)
                .label("prev"),
            )
            .select_from(
                e.join(k, (e.c.site == site) & (e.c.door == k.c.door) & (e.c.epoch == k.c.epoch))
            )
            .where(e.c.seq > k.c.upto, e.c.seq <= k.c.last)
            .subquery()
        )
        # Each held seq above the run whose predecessor (the run's end for the first) is
        # not the seq before it ends a hole.
        below = func.coalesce(held.c.prev, held.c.upto)
        stmt = (
            select(held.c.door, held.c.epoch, below, held.c.seq)
            .where(held.c.seq > below + 1)
            .order_by(held.c.door, held.c.epoch, held.c.seq)
        )
        for door, epoch, before, seq in conn.execute(stmt):
            gaps = out[(door, epoch)]
            if len(gaps) < m.RECEIPT_GAPS:
                gaps.append((before + 1, seq - 1))
    return out


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
        included: a copy's seq is held too). Journals without a seq are left out. The
        journals that need the archive are asked all at once (``held_runs``, ``holes``)."""
        out: dict[Journal, Run] = {}
        ask: dict[Journal, Run | None] = {}
        for key in sorted(committed):
            seqs = set(committed[key])
            known = self.runs.get(key)
            if known is None or not seqs or min(seqs) < known[0]:
                # No run yet (a first event, an office restart) or older events than it
                # starts at: from the archive alone.
                self._above.pop(key, None)
                ask[key] = known
                continue
            above = self._above.setdefault(key, set())
            above.update(s for s in seqs if s > known[1])
            upto = known[1]
            while upto + 1 in above:  # the run carried on by this instance's own seqs
                upto += 1
            above.difference_update(range(known[1] + 1, upto + 1))
            if not above and key not in self.gaps:
                self.runs[key] = out[key] = (known[0], upto)
            else:
                # A hole below seqs this instance holds (or one named last time): the
                # archive knows whether another instance filled it.
                ask[key] = (known[0], upto)
        if not ask:
            return out
        self.queries += len(ask)
        found = held_runs(conn, self.site, ask)
        tops = {}
        for key, (run, last) in found.items():
            self.runs[key] = out[key] = run
            mine = self._above.get(key)
            if mine:
                mine.difference_update([s for s in mine if s <= run[1]])
            if last > run[1]:
                tops[key] = (run[1], last)
            else:
                self.gaps.pop(key, None)
        for key, gaps in holes(conn, self.site, tops).items():
            self.gaps[key] = (tops[key][1], gaps)
        return out

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
