"""The door's re-sends while receipts stand still are paced (docs/mqtt.md, receipts).

What the no-loss test showed: after a broker kill the office fell behind (its queue at the
broker), receipts stood still, and the door re-sent every acknowledged, uncovered event again
each ``receipt_timeout_seconds``: 49,226 copies for 10,000 events. The copies queued at the
broker for the office, the broker (saving on every change) slowed to about one message a
second, the door's window stayed full of publishes waiting for PUBACKs and receipts never
came. A re-send round is now followed by a doubling pause while receipts stand still; a
receipt that moves on resets it.

A real store and the real keeper; the clock is a plain counter and the drain's publish and
the broker's PUBACK are one step here (marking the re-sent events sent), because the point is
what the keeper decides over minutes of a stalled office, not the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.config.models import MqttConfig
from edgegate.contract.messages import Receipt
from edgegate.sim.broker import Broker
from edgegate.store import epoch, journal
from edgegate.store.db import open_db, transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.drain import Drainer
from edgegate.sync.link import MqttLink
from edgegate.sync.receipts import ReceiptKeeper
from tests.central.conftest import Subscriber

TIMEOUT = 3.0
STEP = TIMEOUT / 4  # the keeper's own check period (ReceiptKeeper.run)


def _fill_sent(conn: sqlite3.Connection, n: int) -> int:
    """``n`` events the broker acknowledged; returns the highest seq."""
    with transaction(conn):
        seqs = [
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=time.time()).seq
            for i in range(n)
        ]
        journal.mark_sent(conn, seqs)
    return seqs[-1]


def _fill_unsent(conn: sqlite3.Connection, n: int) -> None:
    with transaction(conn):
        for i in range(n):
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=time.time())


def _ack_unsent(conn: sqlite3.Connection) -> int:
    """The drain re-published what was marked unsent and the broker acknowledged it."""
    seqs = [seq for seq, _ in journal.unsent_wire(conn, 0, 100_000)]
    with transaction(conn):
        journal.mark_sent(conn, seqs)
    return max(seqs, default=0)


async def _receipt(store: AsyncStore, upto: int) -> Receipt:
    """The office's receipt for the store's own journal epoch."""
    return Receipt(
        type="receipt",
        site="test",
        door="d1",
        epoch=await store.call(epoch.current),
        first=1,
        upto=upto,
        issued=datetime.now(UTC),
    )


class Door:
    """A door's receipt keeper over a real store, stepped every ``STEP`` of a plain clock."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.now = 0.0
        connected = asyncio.Event()
        connected.set()
        # The link is never started: no drain loop runs, re-sends are acknowledged in
        # run_until() (one step for the drain's publish and the broker's PUBACK).
        link = MqttLink(MqttConfig(), "edgegate-test-d1")
        self.drainer = Drainer(store, link, "edgegate/test/d1/events")
        self.keeper = ReceiptKeeper(
            store,
            self.drainer,
            connected,
            site="test",
            door="d1",
            timeout=TIMEOUT,
            clock=lambda: self.now,
        )
        self.rounds: list[tuple[float, int]] = []
        # (when first acknowledged, highest seq then): what a lagging office stores.
        self.first_acks: list[tuple[float, int]] = []
        self._next_receipt = 0.0

    async def journal(self, n: int) -> None:
        """``n`` new events, published and acknowledged by the broker now."""
        top = await self.store.call(_fill_sent, n)
        self.keeper.on_sent(top)
        self.first_acks.append((self.now, top))

    async def run_until(
        self,
        until: float,
        *,
        stream: int = 0,
        office_lag: float | None = None,
        receipt_every: float = 5.0,
    ) -> None:
        """Step the keeper; ``stream`` new events a step; an office that stores every event
        ``office_lag`` seconds after its PUBACK and sends a receipt every ``receipt_every``."""
        while self.now < until:
            if stream:
                await self.journal(stream)
            if office_lag is not None and self.now >= self._next_receipt:
                stored = [s for t, s in self.first_acks if t <= self.now - office_lag]
                if stored:
                    await self.keeper.handle(await _receipt(self.store, stored[-1]))
                self._next_receipt = self.now + receipt_every
            n = await self.keeper.check()
            if n:
                self.rounds.append((self.now, n))
            acked = await self.store.call(_ack_unsent)
            if acked:
                self.keeper.on_sent(acked)
            self.now += STEP


async def _with_door(tmp_path: Path, body: Callable[[Door], Awaitable[None]]) -> None:
    store = AsyncStore(tmp_path / "door.db", synchronous="NORMAL")
    await store.open()
    try:
        await body(Door(store))
    finally:
        await store.close()


async def _stalled_office(door: Door) -> None:
    """The office's receipts do not come at all (behind its queue at the broker, or down)."""
    await door.journal(200)
    await door.run_until(120.0)
    times = [t for t, _ in door.rounds]
    # The office lacks them all: the first round re-sends every one, within a check period
    # after the timeout (and the connection's first timeout).
    assert door.rounds[0][1] == 200 and times[0] <= 2 * TIMEOUT + STEP
    # Then the pause doubles: 3, 6, 12, 24, 48 s (was: a round every 3 s, 39 rounds).
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(door.rounds) <= 6, door.rounds
    assert all(b >= 1.9 * a for a, b in itertools.pairwise(gaps)), gaps

    # A receipt that moves on means an office storing again: the pace starts over, so what
    # it still lacks comes again one timeout after receipts stood still once more.
    await door.keeper.handle(await _receipt(door.store, 100))
    receipt_at = door.now
    before = len(door.rounds)
    await door.run_until(receipt_at + TIMEOUT + STEP)
    assert len(door.rounds) == before + 1, door.rounds
    assert door.rounds[-1][1] == 100


async def _lagging_office(door: Door) -> None:
    """An office that stores everything, 20 s behind the PUBACKs (CPU-starved, or a backlog
    at the broker), with a receipt every 5 s: longer than the 3 s timeout. The door learns
    the lag from the first receipts and stops re-sending (was: a round at nearly every
    receipt gap, every event sent about four times)."""
    await door.run_until(180.0, stream=10, office_lag=20.0)
    late = [(t, n) for t, n in door.rounds if t > 45.0]
    assert late == [], door.rounds
    assert door.keeper.srtt is not None and 18.0 <= door.keeper.srtt <= 26.0
    sent = door.first_acks[-1][1]
    assert door.keeper.counters["resent"] < sent // 2, (door.keeper.counters, sent)
    # The office stopping altogether is still noticed: a round once the learned wait passed.
    stop = door.now
    await door.run_until(stop + 3 * door.keeper.wait, stream=10)
    assert door.rounds and door.rounds[-1][0] > stop, door.rounds


def test_resends_while_receipts_stand_still_are_paced(tmp_path: Path) -> None:
    asyncio.run(_with_door(tmp_path, _stalled_office))


def test_resends_wait_for_an_office_that_lags_behind(tmp_path: Path) -> None:
    asyncio.run(_with_door(tmp_path, _lagging_office))


@settings(max_examples=30, deadline=None)
@given(
    states=st.lists(st.sampled_from(["unsent", "sent", "archived"]), min_size=1, max_size=40),
    ahead=st.integers(1, 50),
    after=st.integers(0, 45),
)
def test_the_receipt_window_holds_back_only_what_is_too_far_ahead(
    tmp_path_factory: pytest.TempPathFactory, states: list[str], ahead: int, after: int
) -> None:
    """The drain's query with a receipt window (``receipt_window``): unsent events less than
    ``ahead`` above the lowest one no receipt covers, that one always included if unsent."""
    conn = open_db(tmp_path_factory.mktemp("w") / "door.db", synchronous="NORMAL")
    with transaction(conn):
        seqs = [journal.append(conn, "t", {}, site="test", door="d1", now=1.0).seq for _ in states]
        journal.mark_sent(conn, [s for s, st_ in zip(seqs, states, strict=True) if st_ != "unsent"])
        for s, st_ in zip(seqs, states, strict=True):
            if st_ == "archived":
                journal.mark_archived(conn, s, s, 2.0)
    got = [s for s, _ in journal.unsent_wire(conn, after, 1000, ahead)]
    conn.close()
    unarchived = [s for s, st_ in zip(seqs, states, strict=True) if st_ != "archived"]
    unsent = [s for s, st_ in zip(seqs, states, strict=True) if st_ == "unsent"]
    assert got == [s for s in unsent if s > after and s < min(unarchived) + ahead]
    if unsent and after == 0 and unsent[0] == min(unarchived):
        # The window never closes for good: the lowest event no receipt covers goes out, or
        # (sent already) is covered by a receipt or marked unsent again by the keeper.
        assert got[0] == unsent[0]


def test_a_round_resends_the_holes_named_and_probes_the_rest(tmp_path: Path) -> None:
    """What the office named as missing (below its first, its holes) goes again in full; of
    what it said nothing about (above the highest seq it holds) only the lowest ``probe``: it
    may be on its way, and what the office stores of it moves the receipts on."""
    conn = open_db(tmp_path / "door.db", synchronous="NORMAL")
    top = _fill_sent(conn, 100)
    seqs = list(range(top - 99, top + 1))
    lacking = {
        epoch.current(conn): (seqs[4], [(seqs[10], seqs[14]), (seqs[20], seqs[20])], seqs[30])
    }
    with transaction(conn):
        n = journal.resend(conn, seqs[-1], lacking, probe=8)
    got = [s for s, _ in journal.unsent_wire(conn, 0, 1000)]
    assert n == len(got) == 4 + 5 + 1 + 8
    assert got == seqs[:4] + seqs[10:15] + [seqs[20]] + seqs[31:39]
    # No receipt at all: the office said nothing, so only the lowest probe go.
    _ack_unsent(conn)
    with transaction(conn):
        assert journal.resend(conn, seqs[-1], None, probe=8) == 8
    assert [s for s, _ in journal.unsent_wire(conn, 0, 1000)] == seqs[:8]
    conn.close()


async def _full_window_through_kills(store: AsyncStore, broker: Broker) -> Drainer:
    cfg = MqttConfig(
        host=broker.host,
        port=broker.port,
        max_inflight=16,
        backoff_min_seconds=0.05,
        backoff_max_seconds=0.3,
    )
    link = MqttLink(cfg, "edgegate-test-d1")
    drainer = Drainer(store, link, "edgegate/test/d1/events", window=16, batch=200)
    link.start()
    task = asyncio.create_task(drainer.run())
    try:
        for _ in range(3):
            # Killed while publishes are in flight: the window is full at this pace.
            while drainer.inflight < drainer.window:
                assert drainer.acked < 1900, "the stream ended before the broker was killed"
                await asyncio.sleep(0.001)
            broker.stop(kill=True)
            await asyncio.sleep(0.2)
            broker.start()
        deadline = time.monotonic() + 60
        while await store.call(journal.unsent_count) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await drainer.flush()
        return drainer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.stop()


@pytest.mark.broker
@pytest.mark.timeout(90)
@pytest.mark.parametrize("persistent", [True, False], ids=["session_kept", "session_lost"])
def test_publishes_in_flight_when_the_broker_dies_are_sent_again(
    tmp_path: Path, persistent: bool
) -> None:
    """The suspect first named for the no-loss stall, a window of publishes whose PUBACK
    never comes after a broker kill: paho re-sends every unacknowledged QoS 1 publish after
    the next CONNACK, whether the broker kept the session or lost it, so the window drains
    and every event ends acknowledged (each at least once)."""

    async def body() -> None:
        store = AsyncStore(tmp_path / "door.db", synchronous="NORMAL")
        await store.open()
        try:
            await store.call(_fill_unsent, 2000)
            with Broker(persistent=persistent) as broker:
                drainer = await _full_window_through_kills(store, broker)
            assert await store.call(journal.unsent_count) == 0
            assert drainer.inflight == 0 and drainer.acked >= 2000
        finally:
            await store.close()

    asyncio.run(body())


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_a_rewind_does_not_send_publishes_in_flight_again(tmp_path: Path) -> None:
    """A re-send round rewinds the drain to the lowest unsent event; the events it has in
    flight (or acknowledged and not yet marked) are still unsent in the journal and used to
    go out again at each rewind: in the no-loss test the office dropped as many copies as it
    stored. A plain subscriber on a real broker gets each event once."""

    async def body() -> None:
        store = AsyncStore(tmp_path / "door.db", synchronous="NORMAL")
        await store.open()
        with Broker(persistent=False) as broker:
            sub = Subscriber(broker, "edgegate/test/d1/events")
            cfg = MqttConfig(host=broker.host, port=broker.port, max_inflight=16)
            link = MqttLink(cfg, "edgegate-test-d1")
            drainer = Drainer(store, link, "edgegate/test/d1/events", window=16, batch=100)
            link.start()
            task = asyncio.create_task(drainer.run())
            try:
                await store.call(_fill_unsent, 600)
                drainer.notify()
                rewinds = 0
                while await store.call(journal.unsent_count):
                    if drainer.inflight:
                        drainer.rewind()
                        rewinds += 1
                    await asyncio.sleep(0.005)
                assert rewinds >= 10
                seqs = [json.loads(p)["seq"] for _, p in sub.take(600)]
                assert sorted(seqs) == list(range(1, 601)) and sub.none_within(0.5)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await link.stop()
                sub.close()
                await store.close()

    asyncio.run(body())
