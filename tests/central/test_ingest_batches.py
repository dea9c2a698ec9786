"""Group commit in ``central serve`` (mqtt/handoff.py, archive.archive_rows: the hand-off
itself is tested in tests/sync/test_handoff.py): a batch stores exactly its new events, and
an instance killed with -9 in the middle of batches loses nothing (its unacknowledged
messages come again; the copies are dropped by id)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from edgegate.central import archive, migrate
from edgegate.central.engine import make_engine
from edgegate.central.schema.archive import events
from edgegate.sim.broker import Broker
from edgegate.sim.light_doors import DoorGroup, LightDoor
from edgegate.sim.postgres import Postgres
from tests.central.conftest import SITE, Subscriber, make_central
from tests.conftest import EDGEGATE, REPO

# An event's time picks its monthly partition (PostgreSQL; "not a time" and months without
# one go to the default partition): a batch and its copies span several.
_TIMES = ["2026-11-15T10:00:00Z", "2026-12-02T10:00:00Z", "2027-01-20T10:00:00Z", "not a time"]


def _row(door: str, seq: int) -> dict:
    ev = {"id": f"{door}-{seq}", "seq": seq, "ts": _TIMES[seq % len(_TIMES)], "type": "access"}
    return archive.event_row(SITE, door, ev, time.time())


@pytest.fixture
def archive_engine(office_db: str):
    engine = make_engine(office_db)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


_examples = itertools.count()
_rounds = st.lists(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 12)), max_size=25),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=_rounds)
def test_a_batch_stores_exactly_its_new_events_in_order(archive_engine, rounds) -> None:
    """Batches with copies inside themselves and of archived events, their times in several
    monthly partitions: ``archive_rows`` says which ids were new, each is stored once, the
    counters add up, and ``n`` follows the batches' order (PostgreSQL: one look-up under the
    writer lock, only in the partitions of the batch's times, then executemany)."""
    tag = f"x{next(_examples)}"  # every example its own doors: one archive for them all
    seen: set[str] = set()
    order: list[str] = []
    before = archive.counters(archive_engine)
    for batch in rounds:
        rows = [_row(f"{tag}-{door}", seq) for door, seq in batch]
        expected = [r["id"] for r in rows if r["id"] not in seen]
        expected = list(dict.fromkeys(expected))  # a copy within the batch counts once
        with archive_engine.begin() as conn:
            new = archive.archive_rows(conn, rows)
        assert new == set(expected)
        seen |= new
        order += expected
    with archive_engine.connect() as conn:
        stored = conn.execute(
            select(events.c.id).where(events.c.id.like(f"{tag}-%")).order_by(events.c.n)
        ).scalars()
        assert list(stored) == order
    after = archive.counters(archive_engine)
    sent = sum(len(b) for b in rounds)
    assert after.get("events_archived", 0) - before.get("events_archived", 0) == len(order)
    dups = after.get("duplicate_events", 0) - before.get("duplicate_events", 0)
    assert dups == sent - len(order)


def receiver_pids(log: Path) -> list[int]:
    """The event receivers serve started, from its log (``event_receiver_started``)."""
    return [
        int(json.loads(line)["pid"])
        for line in log.read_bytes().splitlines()
        if b'"event_receiver_started"' in line
    ]


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("receivers", [0, 1], ids=["in_process", "event_receiver"])
def test_serve_killed_mid_batch_loses_nothing_and_bad_events_do_not_stop_a_batch(
    tmp_path: Path,
    broker: Broker,
    postgres_cluster: Postgres,
    office_template: str,
    subprocess_env: dict[str, str],
    receivers: int,
) -> None:
    """One instance on PostgreSQL, two doors draining 1,500 events each with malformed events
    among them; ``kill -9`` while batches are being stored, then a restart: every good event
    is archived exactly once, the bad ones are counted as rejected, nothing else is lost.
    With an event receiver (central/receiver.py) the killed serve's receiver exits by itself
    (left running it would hold the session the next receiver needs)."""
    db = postgres_cluster.database(template=office_template)
    central = make_central(
        tmp_path, broker.port, db, session_expiry_seconds=60, event_receivers=receivers
    )
    engine = make_engine(db)
    log = tmp_path / "serve.log"

    def serve() -> subprocess.Popen[bytes]:
        with log.open("ab") as f:
            return subprocess.Popen(
                [*EDGEGATE, "central", "serve", "--config", str(central.path)],
                cwd=REPO,
                env=subprocess_env,
                stdout=f,
                stderr=subprocess.STDOUT,
            )

    def archived() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()

    def wait(cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    per_door = 1500
    doors = [LightDoor(broker.host, broker.port, SITE, f"d{i}", central.verifier) for i in (0, 1)]
    proc = serve()
    try:
        wait(lambda: b"central_subscribed" in log.read_bytes(), 120, "serve subscribed")
        for d in doors:
            d.start()
        wait(lambda: all(d.connected.is_set() for d in doors), 30, "doors connected")
        for d in doors:
            d.publish(per_door // 2)
            # Malformed events in the middle of the stream: in the same batches as good ones.
            d.client.publish(d.topics.events, b'{"id": "no-seq", "ts": "t", "type": "x"}', qos=1)
            d.client.publish(d.topics.events, b"\xff not json", qos=1)
            d.publish(per_door - per_door // 2)
        wait(lambda: archived() >= 300, 120, "a first part archived")
        orphans = receiver_pids(log)
        assert len(orphans) == receivers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = archived()
        wait(lambda: not any(alive(p) for p in orphans), 15, "the receiver gone with serve")
        proc = serve()
        wait(lambda: archived() >= 2 * per_door, 180, "every event archived")
        wait(lambda: all(d.done for d in doors), 60, "receipts cover every event")
        with engine.connect() as conn:
            ids = list(conn.execute(select(events.c.id)).scalars())
        assert len(ids) == len(set(ids)) == 2 * per_door
        assert set(ids) == {f"d{i}-{s:08d}" for i in (0, 1) for s in range(1, per_door + 1)}
        counts = archive.counters(engine)
        # Each bad event rejected at least once (again if it was redelivered after the kill).
        assert counts.get("rejected_malformed", 0) >= 4
        assert killed_at < 2 * per_door, "the kill came after the end: nothing was tested"
    finally:
        for d in doors:
            d.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        engine.dispose()
        central.close()


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_a_door_group_publishes_every_event_and_reads_receipts_on_one_thread(
    broker: Broker,
) -> None:
    """The benchmark's doors (``DoorGroup``, paho's external loop, one thread for all): each
    door's events reach a subscriber once and in order, more than paho's in-flight window at
    once, and receipts sent to the doors are read."""
    doors = [LightDoor(broker.host, broker.port, SITE, f"g{i}") for i in range(12)]
    sub = Subscriber(broker, f"edgegate/{SITE}/+/events")
    group = DoorGroup(doors)
    threads = threading.active_count()
    group.connect()
    deadline = time.monotonic() + 30
    group.run_until(lambda: all(d.connected.is_set() for d in doors) or time.monotonic() > deadline)
    assert all(d.connected.is_set() for d in doors)
    for d in doors:
        d.publish(45)  # over max_inflight (20): the rest goes as PUBACKs come back
    got: list[tuple[str, bytes]] = []

    def drained() -> bool:
        while not sub.messages.empty():
            got.append(sub.messages.get())
        return len(got) >= 12 * 45 or time.monotonic() > deadline

    deadline = time.monotonic() + 60
    group.run_until(drained)
    assert threading.active_count() == threads  # no network thread per door
    seqs: dict[str, list[int]] = {}
    for _topic, payload in got:
        ev = json.loads(payload)
        seqs.setdefault(ev["door"], []).append(ev["seq"])
    assert seqs == {f"g{i}": list(range(1, 46)) for i in range(12)}
    for d in doors:
        sub.client.publish(d.topics.receipts, json.dumps({"upto": 45}), qos=1)
    deadline = time.monotonic() + 30
    group.run_until(lambda: all(d.done for d in doors) or time.monotonic() > deadline)
    assert all(d.upto == 45 for d in doors)
    group.close()
    sub.client.loop_stop()


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_event_receiver_killed_is_started_again_and_nothing_is_lost(
    tmp_path: Path, broker: Broker, office_db: str, subprocess_env: dict[str, str]
) -> None:
    """``[central] event_receivers = 2`` on each engine: the doors' events come through two
    receiver processes; one is killed with -9 mid-stream, serve says so and starts it again,
    and every event is archived exactly once, the receipts covering all of them."""
    central = make_central(
        tmp_path, broker.port, office_db, session_expiry_seconds=60, event_receivers=2
    )
    engine = make_engine(office_db)
    log = tmp_path / "serve.log"
    per_door = 1000
    doors = [LightDoor(broker.host, broker.port, SITE, f"r{i}", central.verifier) for i in (0, 1)]

    def archived() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()

    def wait(cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    with log.open("ab") as f:
        proc = subprocess.Popen(
            [*EDGEGATE, "central", "serve", "--config", str(central.path)],
            cwd=REPO,
            env=subprocess_env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        wait(lambda: b"central_subscribed" in log.read_bytes(), 120, "serve subscribed")
        assert len(receiver_pids(log)) == 2
        for d in doors:
            d.start()
        wait(lambda: all(d.connected.is_set() for d in doors), 30, "doors connected")
        for d in doors:
            d.publish(per_door)
        wait(lambda: archived() >= 200, 120, "a first part archived")
        victim = receiver_pids(log)[0]
        subprocess.run(["kill", "-9", str(victim)], check=True)
        assert archived() < 2 * per_door, "the kill came after the end: nothing was tested"
        wait(lambda: b"event_receiver_died" in log.read_bytes(), 30, "serve saw the death")
        wait(lambda: log.read_bytes().count(b"event_receiver_started") >= 3, 30, "a restart")
        wait(lambda: archived() >= 2 * per_door, 120, "every event archived")
        wait(lambda: all(d.done for d in doors), 60, "receipts cover every event")
        with engine.connect() as conn:
            ids = list(conn.execute(select(events.c.id)).scalars())
        assert len(ids) == len(set(ids)) == 2 * per_door
    finally:
        for d in doors:
            d.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        engine.dispose()
        central.close()
