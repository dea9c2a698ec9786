"""Journal epochs (docs/mqtt.md, receipts): a door whose store is replaced starts at seq 1
again; the office's receipts for the door's earlier store must never cover its new events."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from edgegate.central.schema.archive import events
from edgegate.cli.main import main
from edgegate.config.models import MqttConfig
from edgegate.contract import signing
from edgegate.contract.messages import Receipt
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import epoch, journal
from edgegate.store.db import open_db, transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.drain import Drainer
from edgegate.sync.link import MqttLink
from edgegate.sync.receipts import ReceiptKeeper
from tests.central.conftest import ServerThread, make_central
from tests.conftest import write_config_file
from tests.sync.office import door_config, start_door, wait_for


def _fill(db: Path, n: int, *, lost: int = 0) -> set[str]:
    """``n`` events in the door's journal, the first ``lost`` of them marked sent: what a
    broker that acknowledged and then lost them leaves behind. Returns their ids."""
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        evs = [
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=time.time())
            for i in range(n)
        ]
        journal.mark_sent(conn, [e.seq for e in evs[:lost]])
    conn.close()
    return {e.id for e in evs}


def _epoch(db: Path) -> str:
    conn = open_db(db, readonly=True, check=False)
    try:
        return epoch.current(conn)
    finally:
        conn.close()


def _door_rows(db: Path) -> dict[str, float | None]:
    conn = open_db(db, readonly=True, check=False)
    try:
        return dict(conn.execute("SELECT id, archived FROM events").fetchall())
    finally:
        conn.close()


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_replaced_store_rejoins_and_nothing_is_archived_before_the_office_has_it(
    tmp_path: Path, broker: Broker, office_db: str, subprocess_env: dict[str, str]
):
    """The real door daemon, a real mosquitto, the office on each engine. The door's first
    store is archived (seqs 1..30 at the office); then its store is replaced by a new one
    whose first 10 events a broker acknowledged and lost. Every new event must reach the
    office, and none may count as archived at the door (the only ones it prunes) while the
    office does not hold it: the old store's receipts covered seqs 1..30."""
    central = make_central(tmp_path, broker.port, office_db, site="test")
    office = ServerThread(central)
    key = signing.load_private(central.config.central.key_file)
    sim = Rdm6300Simulator()
    cfg = door_config(
        tmp_path, sim.port, broker, signing.public_text(key.public_key()), receipt_timeout_seconds=1
    )
    db = tmp_path / "door.db"

    def office_ids() -> set[str]:
        return central.q(lambda c: set(c.execute(select(events.c.id)).scalars()))

    def settled(ids: set[str]) -> bool:
        rows = _door_rows(db)  # the door first: what it archived, the office had committed
        archived = {i for i, a in rows.items() if a is not None}
        assert archived <= office_ids(), "archived at the door, not held by the office"
        return ids <= archived  # the daemon journals events of its own too

    try:
        first = _fill(db, 30)
        door = start_door(cfg, subprocess_env)
        try:
            wait_for(lambda: settled(first), 90, "the first store archived")
        finally:
            door.terminate()
            door.wait(15)
        old_epoch = _epoch(db)
        # A new SD card: no store, no identity marker; the journal starts at seq 1 again.
        for old in tmp_path.glob("door.db*"):
            old.unlink()
        second = _fill(db, 20, lost=10)
        door = start_door(cfg, subprocess_env)
        try:
            # The office's run of the first store, sent to the second: it changes nothing.
            stale = Receipt(
                type="receipt",
                site="test",
                door="d1",
                epoch=old_epoch,
                first=1,
                upto=30,
                issued=datetime.now(UTC),
            )
            body = central.signer.sign(stale.model_dump(mode="json"))
            log = tmp_path / "door.log"

            def refused() -> bool:
                settled(second)  # the invariant holds meanwhile too
                publish.single(
                    "edgegate/test/d1/receipts", body, qos=1, hostname=broker.host, port=broker.port
                )
                return b"receipt_other_epoch" in log.read_bytes()

            wait_for(refused, 60, "the door refusing the first store's receipt")
            wait_for(lambda: settled(second), 90, "the new store archived")
        finally:
            door.terminate()
            door.wait(15)
        assert first | second <= office_ids()
    finally:
        office.stop()
        central.close()
        sim.close()


# --- which epoch a store has ------------------------------------------------------------


def test_new_upgraded_backed_up_and_moved_stores(tmp_path: Path):
    """A new store gets a random epoch; a store that journaled before epochs keeps '' (and
    publishes as before); a copy made by ``edgegate backup`` and a store opened beside
    another store's identity marker each take a new one; reopening changes nothing."""
    from edgegate.store.db import _V9_EPOCH, MIGRATIONS

    old = open_db(tmp_path / "old.db", migrations=MIGRATIONS[: MIGRATIONS.index(_V9_EPOCH)])
    old.execute("INSERT INTO events(id, ts, type, payload) VALUES ('a', 't', 't', '{}')")
    old.close()
    upgraded = open_db(tmp_path / "old.db")
    assert epoch.current(upgraded) == ""
    assert b'"epoch"' not in journal.unsent_wire(upgraded)[0][1]
    upgraded.close()

    cfg = write_config_file(tmp_path, "/dev/null")
    db = tmp_path / "door.db"
    conn = open_db(db, identity=True)
    mine = epoch.current(conn)
    assert len(mine) == 16 and int(mine, 16) >= 0
    with transaction(conn):
        ev = journal.append(conn, "t", {}, site="test", door="d1", now=time.time())
    assert ev.epoch == mine and json.loads(journal.unsent_wire(conn)[0][1])["epoch"] == mine
    conn.close()
    assert _epoch(db) == mine and epoch.current(open_db(db, identity=True)) == mine

    copy = tmp_path / "restored" / "door.db"
    copy.parent.mkdir()
    assert main(["backup", "--config", str(cfg), "--to", str(copy)]) == 0
    restored = open_db(copy)  # restored in place of a store, with no marker needed
    assert epoch.current(restored) not in ("", mine)
    # The restored journal's events keep the epoch they were written in.
    assert [e.epoch for e in journal.recent(restored)] == [mine]
    restored.close()

    # A store copied beside another store's marker (another door's card, a copy by hand).
    other = tmp_path / "other"
    other.mkdir()
    open_db(other / "door.db", identity=True).close()
    shutil.copy(db, other / "door.db")
    assert _epoch(other / "door.db") == mine  # not opened as a store yet
    moved = open_db(other / "door.db", identity=True)
    assert epoch.current(moved) not in ("", mine)
    moved.close()


# --- the door's receipt rule ------------------------------------------------------------

Rows = dict[tuple[str, int], bool]  # (epoch, seq) -> archived


def _restored_journal(db: Path, before: int, after: int) -> tuple[str, str]:
    """``before`` events of one epoch, then ``after`` of a new one (a restored backup)."""
    conn = open_db(db, synchronous="NORMAL")
    first = epoch.current(conn)
    with transaction(conn):
        for i in range(before):
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=0.0)
    second = epoch.ensure(conn, moved="test")
    with transaction(conn):
        for i in range(after):
            journal.append(conn, "t", {"i": i}, site="test", door="d1", now=0.0)
    conn.close()
    return first, second


receipts_st = st.lists(
    st.tuples(st.sampled_from([0, 1, 2]), st.integers(1, 30), st.integers(0, 30)), max_size=8
)


@settings(max_examples=25, deadline=None)
@given(before=st.integers(0, 12), after=st.integers(0, 12), receipts=receipts_st)
def test_a_receipt_archives_exactly_its_epochs_run_and_another_epochs_nothing(
    tmp_path_factory: pytest.TempPathFactory, before: int, after: int, receipts: list
):
    """A journal of two epochs (a restored backup), receipts of either and of an epoch the
    store never had, in any order: an event is archived iff a receipt of its own epoch
    covered its seq; a foreign receipt changes nothing and is counted."""
    db = tmp_path_factory.mktemp("door") / "door.db"
    epochs = [*_restored_journal(db, before, after), "f0reign"]

    async def body() -> tuple[Rows, int]:
        store = AsyncStore(db, synchronous="NORMAL")
        await store.open()
        try:
            connected = asyncio.Event()
            link = MqttLink(MqttConfig(), "edgegate-test-d1")
            drainer = Drainer(store, link, "edgegate/test/d1/events")
            keeper = ReceiptKeeper(store, drainer, connected, site="test", door="d1", timeout=1.0)
            for which, first, length in receipts:
                await keeper.handle(
                    Receipt(
                        type="receipt",
                        site="test",
                        door="d1",
                        epoch=epochs[which],
                        first=first,
                        upto=first + length,
                        issued=datetime.now(UTC),
                    )
                )
            rows = await store.call(
                lambda c: {
                    (e, s): a is not None
                    for e, s, a in c.execute("SELECT epoch, seq, archived FROM events")
                }
            )
            return rows, keeper.counters["other_epoch"]
        finally:
            await store.close()

    rows, refused = asyncio.run(body())
    # The rule, step by step: a receipt archives its epoch's events in its range; one of an
    # epoch other than the store's own with nothing of it waiting is refused and counted.
    model = {key: False for key in rows}
    expected_refused = 0
    for which, first, length in receipts:
        mine = [k for k in model if k[0] == epochs[which]]
        if which != 1 and all(model[k] for k in mine):
            expected_refused += 1
            continue
        for k in mine:
            model[k] = model[k] or first <= k[1] <= first + length
    assert rows == model
    assert refused == expected_refused
