"""A door applying a signed erasure rewrites the person out of its own journal
(edgegate/store/journal.py ``forget_person``, called by the applier in the removal's
transaction): sent and unsent rows alike, so what the drain publishes next is already
rewritten; other people's rows, the order, ids and flags do not change. An ordinary removal
leaves the journal alone. The same door with a real broker: tests/integration/test_erase_door.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgegate.contract.messages import CredentialUpdate
from edgegate.store import credentials as creds
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from edgegate.sync import credentials_apply as ca
from tests.conftest import journal_writer

ANN_CARD, BOB_CARD = "0A0B0C0D0E", "0102030405"


@pytest.fixture
def conn(tmp_path: Path):
    c = open_db(tmp_path / "door.db", synchronous="NORMAL")
    write = journal_writer()
    with transaction(c):
        for who, card in (("ann", ANN_CARD), ("bob", BOB_CARD)):
            creds.upsert_person(c, creds.Person(who, who.title()))
            creds.add_credential(c, "card", card, who)
        write(
            c,
            [
                ("access_granted", {"person": "ann", "credential": ANN_CARD, "kind": "card"}),
                ("access_denied", {"person": None, "credential": ANN_CARD, "reason": "expired"}),
                ("access_granted", {"person": "bob", "credential": BOB_CARD, "kind": "card"}),
                ("staff_release", {"staff": "ann", "person": "bob", "source": "console"}),
                ("door_forced", {}),
            ],
            1_780_000_000.0,
        )
        journal.mark_sent(c, [1, 2])  # the first two reached the broker, the rest did not
    yield c
    c.close()


def _update(version: int, op: dict) -> CredentialUpdate:
    return CredentialUpdate(
        type="credentials", site="s", version=version, base=version - 1,
        issued=datetime.now(UTC), ops=[op],
    )  # fmt: skip


def _rows(conn) -> list[tuple]:
    return conn.execute(
        "SELECT seq, id, ts, type, payload, sent FROM events ORDER BY seq"
    ).fetchall()


def test_an_erasure_rewrites_the_person_out_of_the_journal(conn) -> None:
    before = _rows(conn)
    op = {"op": "remove_person", "id": "ann", "erase": True}
    assert ca.apply_update(conn, _update(1, op), journal_tx=journal_writer())[0] == "apply"
    after = _rows(conn)[: len(before)]
    # Same rows, order, ids, times, flags: only payloads that named her changed.
    assert [r[:4] + r[5:] for r in after] == [r[:4] + r[5:] for r in before]
    payloads = [json.loads(r[4]) for r in after]
    assert payloads[0]["person"] == "erased" and payloads[0]["credential"] == "erased"
    assert "person" not in payloads[1] and payloads[1]["credential"] == "erased"
    assert payloads[2] == json.loads(before[2][4])  # bob's own row is untouched
    assert payloads[3]["staff"] == "erased" and payloads[3]["person"] == "bob"
    assert payloads[4] == json.loads(before[4][4])
    assert not [r for r in _rows(conn) if '"ann"' in r[4] or ANN_CARD in r[4]]
    # What the drain publishes next (the unsent rows) is already rewritten.
    wire = [json.loads(b) for _seq, b in journal.unsent_wire(conn)]
    assert {w["seq"] for w in wire} >= {3, 4, 5}
    assert [w["staff"] for w in wire if w["type"] == "staff_release"] == ["erased"]
    assert creds.lookup(conn, "card", ANN_CARD) is None


def test_an_ordinary_removal_keeps_the_journal(conn) -> None:
    before = _rows(conn)
    op = {"op": "remove_person", "id": "ann"}
    assert ca.apply_update(conn, _update(1, op), journal_tx=journal_writer())[0] == "apply"
    assert _rows(conn)[: len(before)] == before
    assert creds.lookup(conn, "card", ANN_CARD) is None
