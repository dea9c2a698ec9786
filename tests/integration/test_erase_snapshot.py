"""A door that was offline while a person was erased, and catches up by a full snapshot,
forgets them in its journal too: `central serve` (on SQLite and on PostgreSQL) and a real
door daemon (RDM6300 simulator on a pty, mock pins) on one real broker.

The door learns alice and bob by snapshot, journals alice's entry, and stops (its session
ends with it: the broker queues nothing for it). The office erases alice and makes more
versions than it sends as deltas (`catchup_max_versions`). The door comes back; the next
version shows it a gap, it asks for a snapshot and gets one naming alice erased: in the
swap's transaction its journal rows naming her or her card are rewritten to `erased`, as
the missed delta would have done (tests/integration/test_erase_door.py). Before, the
snapshot only left her out of the set and the journal kept her id and card until pruned.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from edgegate.central import store
from edgegate.config.load import parse
from edgegate.config.models import Config
from edgegate.contract import signing
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.db import open_db
from tests.central.conftest import ServerThread, Subscriber, make_central
from tests.conftest import make_config, office_mqtt, running_door, until
from tests.integration.test_central_to_doors import decision

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CARD, BOB_CARD = "0F00BC614E", "00AA11BB22"


def _journal(db: Path) -> list[tuple[int, str, str]]:
    conn = open_db(db, readonly=True)
    try:
        return conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_a_door_catching_up_by_snapshot_erases_the_person_from_its_journal(
    tmp_path: Path, broker: Broker, office_db: str
) -> None:
    (tmp_path / "office").mkdir()
    central = make_central(tmp_path / "office", broker.port, office_db, catchup_max_versions=2)
    key = signing.public_text(central.signer._key.public_key())
    assert central.run("people", "add", "alice", "--name", "Alice Gone", "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob", "--card", BOB_CARD) == 0
    server = ServerThread(central)
    cards = Rdm6300Simulator()
    # No session kept while the door is away: it misses the erasure's delta for good.
    cfg = card_door(tmp_path, cards, broker, key, session_expiry_seconds=0)
    db = Path(cfg.storage.path)
    availability = DoorTopics("hq", "front").availability

    async def first_run() -> int:
        async with running_door(tmp_path, sim=cards, config=cfg) as door:
            master = central.q(store.current_version)
            await until(lambda: door.daemon.sync.version >= master, what="snapshot")
            cards.tap(CARD)
            ev = await decision(door)
            assert ev.type == "access_granted" and ev.payload["person"] == "alice"
            return door.daemon.sync.version

    async def second_run(watch: Subscriber) -> None:
        async with running_door(tmp_path, sim=cards, config=cfg) as door:
            # Its subscriptions are in before its "online" (one connection, in order).
            await until(lambda: _said(watch, b"online"), what="the door back online")
            assert central.run("people", "add", "erin") == 0  # shows the door its gap
            latest = central.q(store.current_version)
            await until(lambda: door.daemon.sync.version >= latest, what="the snapshot")
            assert door.daemon.sync.counters["snapshots"] >= 1  # caught up by snapshot
            cards.tap(CARD)
            ev = await decision(door)
            assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"

    try:
        left_at = asyncio.run(asyncio.wait_for(first_run(), 60))
        assert '"alice"' in str(_journal(db))
        assert central.run("people", "erase", "alice", "--yes", "--reason", "asked") == 0
        for who in ("carol", "dave", "eve"):  # more versions than a delta catch-up covers
            assert central.run("people", "add", who) == 0
        assert central.q(store.current_version) - left_at > 2
        watch = Subscriber(broker, availability)
        try:
            asyncio.run(asyncio.wait_for(second_run(watch), 60))
        finally:
            watch.close()
    finally:
        server.stop()
        central.close()
        cards.close()

    journal = _journal(db)
    swapped = max(seq for seq, t, _p in journal if t == "credentials_snapshot")
    # Up to the swap (her card tapped after it is an unknown card's denial, as after a delta).
    assert not [r for r in journal if r[0] <= swapped and ('"alice"' in r[2] or CARD in r[2])]
    granted = [json.loads(p) for _s, t, p in journal if t == "access_granted"]
    assert granted[0]["person"] == "erased" and granted[0]["credential"] == "erased"
    snap = [json.loads(p) for _s, t, p in journal if t == "credentials_snapshot"][-1]
    assert snap["erased"] == 1 and snap["journal_rewritten"] >= 1
    assert server.server.counters["snapshots_sent"] >= 2
    assert server.server.counters["catchup_deltas"] == 0


def card_door(
    tmp_path: Path, cards: Rdm6300Simulator, broker: Broker, key: str, **mqtt: Any
) -> Config:
    """Door "front" of site "hq": one RDM6300 reader, the office's broker and key."""
    raw = make_config(tmp_path, cards.port, site="hq", id="front").model_dump(
        mode="json", exclude_none=True
    )
    raw["readers"][0]["hold_off_seconds"] = 0
    raw["mqtt"] = office_mqtt(broker, key, keepalive=5, **mqtt)
    raw["daemon"] = {"watchdog": False}
    return parse(raw, tmp_path / "front.toml")


def _said(watch: Subscriber, what: bytes) -> bool:
    """Whether the availability topic said ``what`` since the last call (retained first)."""
    while not watch.messages.empty():
        if watch.messages.get_nowait()[1] == what:
            return True
    return False
