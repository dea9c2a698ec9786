"""The door store's identity at start-up (edgegate/store/identity.py, store/db.py
``open_db(identity=True)``): the store's id and its marker are read once and handed to both
steps that need them (whether the store came from elsewhere, which takes a new journal epoch,
and marking it as here); and what those steps decide is pinned for every combination of
store id and marker."""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.store import epoch
from edgegate.store.db import open_db, transaction
from edgegate.store.identity import ID_KEY, marker_path
from tests.conftest import all_logs
from tests.reads import reads_of, watching


def test_start_up_reads_the_store_id_and_the_marker_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "door.db"
    open_db(store, identity=True).close()  # the door has run here before
    with watching(monkeypatch) as seen:
        open_db(store, identity=True).close()
    id_reads = [s for s in seen["sql"] if ID_KEY in s and s.lstrip().upper().startswith("SELECT")]
    assert len(id_reads) == 1, seen["sql"]
    assert reads_of(seen, marker_path(store)) == 1, seen["opens"]


MARKERS = ("none", "same", "other", "empty")


@settings(max_examples=30, deadline=None)
@given(has_id=st.booleans(), marker=st.sampled_from(MARKERS), journaled=st.booleans())
def test_identity_decisions_for_every_store_and_marker(
    has_id: bool, marker: str, journaled: bool
) -> None:
    """A store with an id whose marker is missing or names another id came from elsewhere:
    a new epoch. A store without an id (from before markers) gets one and keeps its epoch.
    Either way the marker then names the store's id, and a marker that named another id is
    logged as replaced."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "door.db"
        conn = open_db(store, identity=True)
        if journaled:
            with transaction(conn):
                conn.execute("INSERT INTO events(id, ts, type, payload) VALUES ('a','t','t','{}')")
        if not has_id:
            conn.execute("DELETE FROM meta WHERE key = ?", (ID_KEY,))
        store_id = _store_id(conn)
        before = epoch.current(conn)
        conn.close()
        was = {
            "none": None,
            "same": store_id,
            "other": uuid.uuid4().hex,
            "empty": "",
        }[marker]
        if was is None:
            marker_path(store).unlink()
        else:
            marker_path(store).write_text(was + "\n")

        with all_logs() as logs:
            conn = open_db(store, identity=True)
        after_id = _store_id(conn)
        after_epoch = epoch.current(conn)
        conn.close()

        moved = has_id and marker != "same"
        assert (after_epoch != before) == moved
        assert after_id is not None and (after_id == store_id or not has_id)
        assert marker_path(store).read_text().strip() == after_id
        replaced = [e for e in logs if e["event"] == "store_marker_replaced"]
        assert bool(replaced) == (was is not None and was != after_id)
        assert [e["reason"] for e in logs if e["event"] == "journal_epoch_new"] == (
            ["store_without_its_marker" if marker == "none" else "marker_names_another_store"]
            if moved
            else []
        )


def _store_id(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ID_KEY,)).fetchone()
    return None if row is None else str(row[0])
