"""Credential deltas and staged snapshots in the store, without a broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgegate.contract.messages import CredentialUpdate, SnapshotChunk
from edgegate.contract.signing import RejectedMessage
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.sync import credentials_apply as ca
from tests.conftest import journal_writer


def chunk(sid: str, version: int, i: int, n: int, people: list, cards: list) -> SnapshotChunk:
    return SnapshotChunk(
        type="snapshot", site="s", door="d", snapshot=sid, version=version, chunk=i, chunks=n,
        issued=datetime.now(UTC), people=people, credentials=cards,
    )  # fmt: skip


def stage_all(conn, chunks: list[SnapshotChunk]) -> None:
    for c in chunks:
        people, cards = ca.chunk_rows(c, None, time.time())
        ca.stage_chunk_rows(conn, c, people, cards, last=True)


def orphans(conn) -> int:
    after, total = None, 0
    while True:
        after, n = ca.remove_orphans_step(conn, after, limit=2)
        total += n
        if after is None:
            return total


@pytest.fixture
def conn(tmp_path: Path):
    c = open_db(tmp_path / "door.db", synchronous="NORMAL")
    with transaction(c):
        creds.upsert_person(c, creds.Person("old"))
        creds.add_credential(c, "card", "AABBCCDDEE", "old")
    yield c
    c.close()


def test_repeated_snapshots_swap_clean_and_keep_foreign_keys(conn):
    for gen in range(3):
        card = f"00000000{gen:02d}"
        sid = f"s{gen}"
        c0 = chunk(
            sid,
            gen + 1,
            0,
            2,
            [{"id": f"p{gen}"}],
            [{"kind": "card", "value": card, "person": f"p{gen}"}],
        )
        c1 = chunk(
            sid,
            gen + 1,
            1,
            2,
            [{"id": "q"}],
            [{"kind": "card", "value": "0102030405", "person": "ghost"}],
        )
        stage_all(conn, [c1])
        assert ca.snapshot_complete(conn, sid) is None
        # The old set still decides while the snapshot is half staged.
        assert creds.lookup(conn, "card", card) is None
        stage_all(conn, [c0, c0])  # a re-delivered chunk changes nothing
        assert ca.snapshot_complete(conn, sid) == (2, gen + 1)
        assert orphans(conn) == 1  # the card of a person not in the snapshot
        event = ca.swap(conn, sid, gen + 1, journal_tx=journal_writer(), now=time.time())
        assert event is not None and event.payload["credentials"] == 1
        while ca.clean_step(conn):
            pass
        assert creds.lookup(conn, "card", card).person_id == f"p{gen}"
        assert creds.lookup(conn, "card", "AABBCCDDEE") is None
        assert ca.get_version(conn) == gen + 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert not tables & {"people_old", "credentials_old", "people_stage", "credentials_stage"}
        # Foreign keys name the new table: removing a person still removes their cards.
        with transaction(conn):
            creds.remove_person(conn, f"p{gen}")
        assert creds.count_credentials(conn) == 0
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_new_snapshot_id_discards_a_half_staged_one_and_older_is_refused(conn):
    stage_all(conn, [chunk("a", 5, 0, 2, [{"id": "x"}], [])])
    stage_all(conn, [chunk("b", 6, 0, 1, [{"id": "y"}], [])])
    assert ca.snapshot_complete(conn, "a") is None and ca.snapshot_complete(conn, "b") == (1, 6)
    with transaction(conn):
        conn.execute("INSERT INTO meta(key, value) VALUES ('credentials_version', '7')")
    # overtaken by a delta
    assert ca.swap(conn, "b", 6, journal_tx=journal_writer(), now=0) is None
    assert creds.lookup(conn, "card", "AABBCCDDEE") is not None


def update(version: int, base: int, ops: list) -> CredentialUpdate:
    return CredentialUpdate(
        type="credentials", site="s", version=version, base=base, issued=datetime.now(UTC), ops=ops
    )


def test_deltas_apply_replay_gap_and_roll_back(conn):
    put = {
        "op": "put_credential",
        "credential": {"kind": "card", "value": "0a0b0c0d0e", "person": "old"},
    }
    assert ca.apply_update(conn, update(1, 0, [put]), journal_tx=journal_writer())[0] == "apply"
    assert creds.lookup(conn, "card", "0A0B0C0D0E") is not None  # normalised
    assert ca.apply_update(conn, update(1, 0, [put]), journal_tx=journal_writer())[0] == "replayed"
    assert ca.apply_update(conn, update(5, 3, [put]), journal_tx=journal_writer())[0] == "gap"
    # base below the door's version but version above it: ops are absolute, applied.
    off = {"op": "set_credential_enabled", "kind": "card", "value": "0A0B0C0D0E", "enabled": False}
    assert ca.apply_update(conn, update(3, 0, [off]), journal_tx=journal_writer())[0] == "apply"
    assert creds.lookup(conn, "card", "0A0B0C0D0E").enabled is False
    bad = {
        "op": "put_credential",
        "credential": {"kind": "card", "value": "0102030405", "person": "nobody"},
    }
    remove = {"op": "remove_person", "id": "old"}
    with pytest.raises(RejectedMessage) as info:
        ca.apply_update(conn, update(4, 3, [remove, bad]), journal_tx=journal_writer())
    assert info.value.reason == "malformed"
    # Nothing of the refused update was applied.
    assert creds.lookup(conn, "card", "AABBCCDDEE") is not None and ca.get_version(conn) == 3
