"""Finger credentials in the store: model tags, slot lookup, migration of old slot values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edgegate.store import credentials as creds
from edgegate.store.db import MIGRATIONS, open_db, transaction
from edgegate.store.finger_slots import (
    load_library_state,
    map_slot,
    model_label,
    model_of,
    new_finger_value,
    put_finger,
    slot_map,
)
from edgegate.store.sealed import is_sealed

MODELS = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
KEY = bytes(range(32))


@given(MODELS, st.sampled_from(["", "badge ", "x=1, ", "note;"]), st.sampled_from(["", " left"]))
def test_model_tag_found_among_other_label_text(model: str, before: str, after: str):
    assert model_of(before + model_label(model) + after) == model


@given(st.text(max_size=200))
def test_model_of_any_label_is_a_model_or_none(label: str):
    found = model_of(label)
    assert found is None or (model_label(found) in label)


def test_untagged_and_ambiguous_labels_have_no_model():
    assert model_of("") is None and model_of("r307") is None and model_of("xmodel=r307") is None
    assert model_of("model=r307 model=r503") is None
    assert model_of("model=r307 model=r307") == "r307"


_MEMORY: list[sqlite3.Connection] = []


@given(st.text(max_size=12) | st.from_regex(r"\A0*9\Z"))
def test_lookup_of_any_finger_read_value_never_raises(value: str):
    if not _MEMORY:
        _MEMORY.append(_store_with_alice(":memory:"))
    record = creds.lookup(_MEMORY[0], "finger", value)
    assert record is None or (value.isascii() and int(value) == 9)
    if value == "9":
        assert record is not None and record.person_id == "alice"


def _store_with_alice(path) -> sqlite3.Connection:
    conn = open_db(path, synchronous="NORMAL", check=False) if path != ":memory:" else None
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        for script in MIGRATIONS:
            conn.executescript(script)
    with transaction(conn):
        creds.upsert_person(conn, creds.Person("alice"))
        put_finger(conn, KEY, "alice", "alice.1", "r307", b"tpl", slot=9)
    return conn


def test_put_finger_seals_and_maps_and_lookup_goes_through_the_slot(tmp_path: Path):
    conn = _store_with_alice(tmp_path / "s.db")
    (data,) = conn.execute("SELECT data FROM credentials WHERE value = 'alice.1'").fetchone()
    assert is_sealed(data) and b"tpl" not in data
    assert creds.lookup(conn, "finger", "9").value == "alice.1"
    assert creds.lookup(conn, "finger", "alice.1") is None  # reads are slots, not values
    # Re-mapping a slot replaces whatever was there (one template per slot).
    with transaction(conn):
        creds.upsert_person(conn, creds.Person("bob"))
        put_finger(conn, KEY, "bob", "bob.1", "r307", b"tpl2", slot=9)
    assert set(slot_map(conn)) == {"bob.1"}
    assert creds.lookup(conn, "finger", "9").person_id == "bob"
    state = load_library_state(conn, KEY)
    assert {t.value: t.template for t in state.templates} == {"alice.1": b"tpl", "bob.1": b"tpl2"}
    assert state.unseal_failed == 0
    # A wrong key: the template is unreadable (counted), not a crash.
    state = load_library_state(conn, b"k" * 32)
    assert state.unseal_failed == 2 and all(t.template is None for t in state.templates)
    # Text where bytes belong (a writer that stored the base64): reported, not a crash.
    conn.execute("UPDATE credentials SET data = 'dHBs' WHERE value = 'bob.1'")
    state = load_library_state(conn, KEY)
    assert state.unseal_failed == 1
    assert {t.value: t.template for t in state.templates} == {"alice.1": b"tpl", "bob.1": None}


def test_migration_maps_old_slot_values_only(tmp_path: Path):
    db = tmp_path / "old.db"
    old = sqlite3.connect(db, isolation_level=None)
    old.executescript("".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    old.execute("INSERT INTO people(id, updated_at) VALUES ('a', 0)")
    for value in ("3", "a.x", "12x", "999999"):
        old.execute(
            "INSERT INTO credentials(kind, value, person_id, updated_at) VALUES ('finger',?,'a',0)",
            (value,),
        )
    old.close()
    conn = open_db(db)
    assert {v: e.slot for v, e in slot_map(conn).items()} == {"3": 3}
    assert creds.lookup(conn, "finger", "3").person_id == "a"
    with transaction(conn):
        map_slot(conn, "a.x", 4, "")
    assert creds.lookup(conn, "finger", "4").value == "a.x"


def test_new_values_are_site_wide_unique():
    values = {new_finger_value("alice") for _ in range(1000)}
    assert len(values) == 1000 and all(v.startswith("alice.") for v in values)
    assert len(new_finger_value("p" * 128)) <= 128
