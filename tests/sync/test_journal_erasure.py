"""A door applying a signed erasure rewrites the person out of its own journal
(edgegate/store/journal.py ``forget_person``, called by the applier in the removal's
transaction): sent and unsent rows alike, so what the drain publishes next is already
rewritten; other people's rows, the order, ids and flags do not change. An ordinary removal
leaves the journal alone. The same door with a real broker: tests/integration/test_erase_door.py."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegate.contract.erasure import ERASED
from edgegate.contract.messages import CredentialUpdate, SnapshotChunk
from edgegate.store import credential_sync as cs
from edgegate.store import credentials as creds
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from edgegate.sync import credentials_apply as ca
from tests.conftest import journal_writer

ANN_CARD, BOB_CARD = "0A0B0C0D0E", "0102030405"


def _door(path: Path) -> sqlite3.Connection:
    """A door store holding ann and bob, and a journal naming them (two rows sent)."""
    c = open_db(path, synchronous="NORMAL")
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
    return c


@pytest.fixture
def conn(tmp_path: Path):
    c = _door(tmp_path / "door.db")
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


def _credential_rows(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    return (
        conn.execute("SELECT * FROM people ORDER BY id").fetchall(),
        conn.execute("SELECT * FROM credentials ORDER BY kind, value").fetchall(),
    )


def test_erasing_someone_the_door_no_longer_holds_rewrites_only_the_journal(conn) -> None:
    """Removed earlier (an ordinary removal), erased later: the door has nobody to remove,
    so its people and credentials do not change, but its journal is rewritten as for any
    erasure and the update applies (the door moves to its version)."""
    removal = {"op": "remove_person", "id": "ann"}
    assert ca.apply_update(conn, _update(1, removal), journal_tx=journal_writer())[0] == "apply"
    held = _credential_rows(conn)
    assert "ann" not in str(held) and '"ann"' in str(_rows(conn))
    before = _rows(conn)
    erasure = {"op": "remove_person", "id": "ann", "erase": True}
    assert ca.apply_update(conn, _update(2, erasure), journal_tx=journal_writer())[0] == "apply"
    assert _credential_rows(conn) == held and cs.get_version(conn) == 2
    after = _rows(conn)[: len(before)]
    assert [r[:4] + r[5:] for r in after] == [r[:4] + r[5:] for r in before]
    payloads = [json.loads(r[4]) for r in after]
    assert payloads[0]["person"] == "erased"
    assert payloads[3]["staff"] == "erased" and payloads[3]["person"] == "bob"
    assert payloads[2] == json.loads(before[2][4])  # bob's own row is untouched
    assert not [r for r in _rows(conn) if '"ann"' in r[4]]


def _snapshot(version: int, people: list[str], erased: list[list[str]]) -> list[SnapshotChunk]:
    """One snapshot of ``people`` (bob's card with bob), ``erased[i]`` in chunk i."""
    cards = {"bob": BOB_CARD, "ann": ANN_CARD}
    sid = f"snap{version}"
    return [
        SnapshotChunk.model_validate(
            {"type": "snapshot", "site": "s", "door": "d", "snapshot": sid, "version": version,
             "chunk": i, "chunks": len(erased), "issued": datetime.now(UTC),
             "people": [{"id": p, "name": p.title()} for p in people] if i == 0 else [],
             "credentials": [{"kind": "card", "value": cards[p], "person": p} for p in people]
             if i == 0 else [],
             **({"erased": part} if part else {})}
        )
        for i, part in enumerate(erased)
    ]  # fmt: skip


def _swap_in(conn: sqlite3.Connection, chunks: list[SnapshotChunk]) -> journal.Event | None:
    """Stage every chunk and swap the set in, as snapshot_steps does on the store thread."""
    for chunk in chunks:
        ca.stage_chunk_rows(conn, chunk, *ca.chunk_rows(chunk, None, 1.0), last=True)
    assert cs.snapshot_complete(conn, chunks[0].snapshot) == (len(chunks), chunks[0].version)
    return cs.swap(
        conn, chunks[0].snapshot, chunks[0].version, journal_tx=journal_writer(), now=2.0
    )


def _what(conn: sqlite3.Connection, upto: int) -> list[tuple]:
    """The journal's first ``upto`` rows as they would reach the office (not their random
    ids: two doors' journals are compared)."""
    rows = conn.execute("SELECT seq, type, payload, sent FROM events ORDER BY seq LIMIT ?", (upto,))
    return [(seq, t, json.loads(p), sent) for seq, t, p, sent in rows]


def test_a_snapshot_naming_an_erasure_rewrites_the_journal_as_the_missed_delta(
    conn, tmp_path: Path
) -> None:
    n = len(_rows(conn))
    # The same door that took the erasure's delta (version 1) ...
    by_delta = _door(tmp_path / "delta.db")
    op = {"op": "remove_person", "id": "ann", "erase": True}
    assert ca.apply_update(by_delta, _update(1, op), journal_tx=journal_writer())[0] == "apply"
    # ... and this one, which missed it and catches up by a snapshot at version 3 without
    # her, naming her erased (in its second chunk; the first names someone it never held).
    event = _swap_in(conn, _snapshot(3, ["bob"], [["zed"], ["ann"]]))
    assert event is not None and event.type == "credentials_snapshot"
    assert event.payload["erased"] == 2 and event.payload["journal_rewritten"] == 3
    assert "ann" not in json.dumps(event.payload)
    assert _what(conn, n) == _what(by_delta, n)
    assert not [r for r in _rows(conn) if '"ann"' in r[4] or ANN_CARD in r[4]]
    assert conn.execute("SELECT id FROM people").fetchall() == [("bob",)]
    assert conn.execute("SELECT person_id FROM credentials").fetchall() == [("bob",)]
    # Nothing of her is left behind in the replaced set or the staging either.
    leftovers = "SELECT COUNT(*) FROM {} WHERE {} = 'ann'"
    for table, col in (("people_old", "id"), ("credentials_old", "person_id")):
        assert conn.execute(leftovers.format(table, col)).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM snapshot_chunks").fetchone()[0] == 0
    by_delta.close()


def test_a_snapshot_without_erasures_drops_the_person_but_keeps_the_journal(conn) -> None:
    before = _rows(conn)
    event = _swap_in(conn, _snapshot(3, ["bob"], [[]]))
    assert event is not None and "erased" not in event.payload
    assert _rows(conn)[: len(before)] == before
    assert conn.execute("SELECT id FROM people").fetchall() == [("bob",)]


def test_an_erased_person_the_snapshot_adds_again_keeps_the_new_set(conn) -> None:
    """Erased at version 2 and added again (a new person under the old id) at version 3: the
    journal forgets the erased one, the new set holds the new one, as the deltas would."""
    event = _swap_in(conn, _snapshot(3, ["ann", "bob"], [["ann"]]))
    assert event is not None and event.payload["erased"] == 1
    assert not [r for r in _rows(conn) if '"ann"' in r[4] or ANN_CARD in r[4]]
    assert creds.lookup(conn, "card", ANN_CARD) is not None


def test_a_snapshot_overtaken_by_a_delta_erases_nothing(conn) -> None:
    before = _rows(conn)
    cs.set_version(conn, 5)
    assert _swap_in(conn, _snapshot(3, ["bob"], [["ann"]])) is None
    assert _rows(conn) == before


IDS = st.sampled_from(["ann", "bob", "cy", "dee", "erased", "0A0B0C0D0E"])
VALUES = st.sampled_from(["0A0B0C0D0E", "0102030405", "1111111111", "ann", "t-9"])
EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["access_granted", "access_denied", "staff_release"])},
    optional={"person": IDS | st.none(), "credential": VALUES, "staff": IDS,
              "partner": IDS, "note": st.lists(IDS | VALUES, max_size=2)},
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(EVENT, min_size=1, max_size=12),
    # The erased are never a person whose id is the placeholder itself: forgetting them
    # "in turn" would then also forget every row already rewritten to the placeholder (and
    # scrub that person's cards from others' rows), which is the one-after-the-other model
    # going wrong, not the one pass. The placeholder stays among the events' values.
    people=st.dictionaries(
        IDS.filter(lambda p: p != ERASED), st.sets(VALUES, max_size=3), min_size=1, max_size=4
    ),
)
def test_forgetting_several_people_at_once_equals_one_after_the_other(events, people) -> None:
    """``journal.forget_people`` (a snapshot naming several erased people: one pass, by
    SQLite for a few needles, by one pattern beyond) leaves the journal exactly as
    ``forget_person`` for each of them in turn (a delta per erasure) would."""
    with tempfile.TemporaryDirectory() as tmp:
        once, in_turn = (open_db(Path(tmp) / f"{n}.db", synchronous="NORMAL") for n in "ab")
        for conn in (once, in_turn):
            with transaction(conn):
                journal_writer()(conn, [(e["type"], e) for e in events], 1_780_000_000.0)
        before = _what(in_turn, len(events))
        with transaction(once):
            n_once = journal.forget_people(once, people)
        with transaction(in_turn):
            for person, values in people.items():
                journal.forget_person(in_turn, person, values)
        after = [_what(c, len(events)) for c in (once, in_turn)]
        changed = sum(a != b for a, b in zip(after[1], before, strict=True))
        once.close()
        in_turn.close()
    assert after[0] == after[1]
    assert n_once == changed
