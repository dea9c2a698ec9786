"""Journal epochs (docs/mqtt.md, receipts): a door whose store is replaced starts at seq 1
again; the office's receipts for the door's earlier store must never cover its new events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from edgegate.central.schema.archive import events
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from tests.central.conftest import ServerThread, make_central
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
        # A new SD card: no store, no identity marker; the journal starts at seq 1 again.
        for old in tmp_path.glob("door.db*"):
            old.unlink()
        second = _fill(db, 20, lost=10)
        door = start_door(cfg, subprocess_env)
        try:
            wait_for(lambda: settled(second), 90, "the new store archived")
        finally:
            door.terminate()
            door.wait(15)
        assert first | second <= office_ids()
    finally:
        office.stop()
        central.close()
        sim.close()
