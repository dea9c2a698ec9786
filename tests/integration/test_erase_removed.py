"""A person removed earlier (`central people remove`) and erased later is forgotten in the
journal of a real door: `central serve` (on SQLite and on PostgreSQL) and a real door daemon
(RDM6300 simulator on a pty, mock pins) on one real broker.

The door learns alice and bob, journals alice's entry, applies her ordinary removal (her
card and row go, the journal keeps her id: a removal is not an erasure), then her erasure.
Before, the erasure found nobody in the master and sent nothing: the door's journal kept her
id until pruned. Now a signed version removes and erases her; the door has nobody to remove
and rewrites its journal (tests/sync/test_journal_erasure.py for the applier alone)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edgegate.central import store
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.central.conftest import ServerThread, make_central
from tests.conftest import running_door, until
from tests.integration.test_central_to_doors import decision
from tests.integration.test_erase_snapshot import _journal, card_door

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CARD, BOB_CARD = "0F00BC614E", "00AA11BB22"


def test_a_person_removed_then_erased_leaves_the_doors_journal(
    tmp_path: Path, broker: Broker, office_db: str
) -> None:
    (tmp_path / "office").mkdir()
    central = make_central(tmp_path / "office", broker.port, office_db)
    key = signing.public_text(central.signer._key.public_key())
    assert central.run("people", "add", "alice", "--name", "Alice Removed", "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob", "--card", BOB_CARD) == 0
    server = ServerThread(central)
    cards = Rdm6300Simulator()
    cfg = card_door(tmp_path, cards, broker, key)
    db = Path(cfg.storage.path)

    async def at_master(door) -> int:
        latest = central.q(store.current_version)
        await until(lambda: door.daemon.sync.version >= latest, what=f"version {latest}")
        return latest

    async def scenario() -> int:
        async with running_door(tmp_path, sim=cards, config=cfg) as door:
            await at_master(door)
            cards.tap(CARD)
            ev = await decision(door)
            assert ev.type == "access_granted" and ev.payload["person"] == "alice"

            # In a thread: the CLI waits for the broker's PUBACK; the door's loop must not.
            assert await asyncio.to_thread(central.run, "people", "remove", "alice") == 0
            await at_master(door)
            assert '"alice"' in str(_journal(db))  # an ordinary removal keeps the journal

            rc = await asyncio.to_thread(
                central.run, "people", "erase", "alice", "--yes", "--reason", "asked"
            )
            assert rc == 0
            erased_at = await at_master(door)
            cards.tap(BOB_CARD)  # the door goes on deciding
            ev = await decision(door)
            assert ev.type == "access_granted" and ev.payload["person"] == "bob"
            return erased_at

    try:
        erased_at = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        server.stop()
        central.close()
        cards.close()

    journal = _journal(db)
    assert not [r for r in journal if '"alice"' in r[2]]
    granted = [json.loads(p) for _s, t, p in journal if t == "access_granted"]
    assert [g["person"] for g in granted] == ["erased", "bob"]
    # The erasure came as a delta (a snapshot would have named it in ``erased``).
    updated = [json.loads(p) for _s, t, p in journal if t == "credentials_updated"]
    assert erased_at in [u["version"] for u in updated]
