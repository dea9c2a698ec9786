"""The office store's migrations: an SQLite ``central.db`` of the raw-sqlite3 era
(``user_version`` 1) upgrades in place, keeps every row, gets its biometrics sealed and its
mode tightened; a fresh store on either engine reaches the same revisions; a newer store is
refused."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from edgegate.central import archive, migrate, store
from edgegate.central.engine import make_engine
from edgegate.central.schema.master import credentials
from edgegate.store.db import people_credentials_ddl
from edgegate.store.sealed import MAGIC
from tests.conftest import OFFICE_ENGINES

# The schema as the raw-sqlite3 master store created it (user_version 1), frozen here.
LEGACY_V1 = (
    people_credentials_ddl("TEXT")
    + """
CREATE TABLE versions (
    version INTEGER PRIMARY KEY, base INTEGER NOT NULL, issued TEXT NOT NULL,
    n_ops INTEGER NOT NULL, ops TEXT NOT NULL, published REAL
);
CREATE TABLE commands (
    id TEXT PRIMARY KEY, door TEXT NOT NULL, cmd TEXT NOT NULL, message TEXT NOT NULL,
    published REAL
);
CREATE TABLE events (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, site TEXT NOT NULL,
    door TEXT NOT NULL, seq INTEGER, ts TEXT NOT NULL, type TEXT NOT NULL,
    payload TEXT NOT NULL, received REAL NOT NULL
);
CREATE INDEX events_door ON events(door, n);
CREATE INDEX events_type ON events(type, n);
CREATE INDEX events_ts ON events(ts);
CREATE TABLE doors (
    site TEXT NOT NULL, door TEXT NOT NULL, availability TEXT NOT NULL DEFAULT 'unknown',
    changed REAL, last_seen REAL, state TEXT, telemetry TEXT, credential_version INTEGER,
    PRIMARY KEY (site, door)
) WITHOUT ROWID;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
)
FACE = "QUJD" * 50


def legacy_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_V1)
    conn.execute(
        "INSERT INTO people(id, name, enabled, attrs, updated_at) VALUES "
        "('alice', 'Alice', 1, '{\"groups\":[\"staff\"]}', 1.0), ('bob', '', 0, '{}', 1.0)"
    )
    conn.execute(
        "INSERT INTO credentials(kind, value, person_id, enabled, label, data, updated_at) "
        "VALUES ('card', '0A0B0C0D0E', 'alice', 1, '', NULL, 1.0), "
        f"('face', 'face-1', 'alice', 1, 'dlib', '{FACE}', 1.0)"
    )
    conn.execute("INSERT INTO versions VALUES (1, 0, '2026-01-01T00:00:00Z', 2, '[]', 5.0)")
    for i, (ts, person) in enumerate(
        [("2026-11-23T12:00:00.000Z", "alice"), ("2026-11-24T08:00:00+01:00", None), ("bad", "bob")]
    ):
        ev = {"id": f"e{i}", "seq": i + 1, "ts": ts, "type": "access_granted", "person": person}
        conn.execute(
            "INSERT INTO events(id, site, door, seq, ts, type, payload, received) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (ev["id"], "hq", "front", i + 1, ts, ev["type"], json.dumps(ev), 9.0),
        )
    conn.execute("INSERT INTO doors(site, door, availability) VALUES ('hq', 'front', 'online')")
    conn.execute("INSERT INTO counters VALUES ('events_archived', 3)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    path.chmod(0o644)  # what the raw-sqlite3 store was created with


def test_a_user_version_1_store_upgrades_in_place(tmp_path: Path):
    path = tmp_path / "central.db"
    legacy_store(path)
    engine = store.open_master(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.heads()
        people = store.list_people(conn)
        assert [(p["id"], p["enabled"], p["credentials"]) for p in people] == [
            ("alice", True, 2),
            ("bob", False, 0),
        ]
        face = store.list_credentials(conn, "alice")[1]
        assert face["data"] == FACE  # unsealed for a door, byte for byte
        raw = conn.execute(select(credentials.c.data).where(credentials.c.kind == "face"))
        assert raw.scalar_one().startswith(MAGIC)  # sealed at rest
        assert store.current_version(conn) == 1 and store.unpublished(conn) == []
        assert [e["id"] for e in archive.query_events(conn)] == ["e0", "e1", "e2"]
        # The new columns were filled from the archived events: person and event time.
        assert [e["id"] for e in archive.query_events(conn, person="alice")] == ["e0"]
        since = archive.query_events(conn, since="2026-11-24T00:00:00Z")
        assert [e["id"] for e in since] == ["e1"]  # 07:00Z; "bad" has no time
        assert archive.counters(conn) == {"events_archived": 3}
        assert archive.list_doors(conn)[0]["availability"] == "online"
    # The new archive takes new events and still drops copies by id.
    with engine.begin() as conn:
        ev = {"id": "e3", "seq": 4, "ts": "2026-11-25T00:00:00Z", "type": "door_opened"}
        assert archive.archive_events(conn, "hq", "front", [ev, {**ev}], 10.0) == 1
        assert archive.archive_events(conn, "hq", "front", [{"id": "e0", **ev}], 10.0) == 0
    engine.dispose()
    # Opening again finds nothing to do and changes nothing.
    again = store.open_master(path)
    with again.connect() as conn:
        assert len(archive.query_events(conn)) == 4
    again.dispose()


def test_a_fresh_store_reaches_the_same_revisions_on_both_engines(office_db: str, tmp_path):
    engine = store.open_master(office_db, key=os.urandom(32))
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.heads()
        assert store.current_version(conn) == 0 and archive.last_n(conn) == 0
    engine.dispose()
    path = tmp_path / "central.db"
    if "://" not in office_db:
        assert path.stat().st_mode & 0o777 == 0o600


def test_a_store_of_a_newer_version_or_of_something_else_is_refused(tmp_path: Path):
    newer = tmp_path / "newer.db"
    store.open_master(newer).dispose()
    engine = make_engine(newer)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(migrate.StoreSchemaError, match="newer version"):
        store.open_master(newer)
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE x(a); PRAGMA user_version = 7;")
    with pytest.raises(migrate.StoreSchemaError, match="not an edgegate office store"):
        store.open_master(other)


def test_retention_deletes_old_events_on_both_engines(office_db: str):
    from datetime import UTC, datetime

    from edgegate.central import partitions, retention

    engine = store.open_master(office_db, key=os.urandom(32))
    now = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    evs = [
        {"id": "old", "seq": 1, "ts": "2026-09-01T10:00:00Z", "type": "t"},
        {"id": "edge", "seq": 2, "ts": "2026-11-01T10:00:00Z", "type": "t"},
        {"id": "new", "seq": 3, "ts": "2026-12-01T10:00:00Z", "type": "t"},
        {"id": "no-time", "seq": 4, "ts": "not a time", "type": "t"},
    ]
    with engine.begin() as conn:
        partitions.ensure(conn, datetime(2026, 9, 1, tzinfo=UTC).timestamp(), months_ahead=4)
        archive.archive_events(conn, "hq", "front", evs, now)
    with engine.begin() as conn:
        assert retention.housekeeping(conn, now, 0) == 0  # 0: keep everything
    assert len(archive.query_events(engine)) == 4
    with engine.begin() as conn:
        retention.housekeeping(conn, now, 40)
    # Older than 40 days go (on PostgreSQL September's partition is dropped whole); an
    # event without a time is kept (it cannot be aged), the rest stays.
    assert [e["id"] for e in archive.query_events(engine)] == ["edge", "new", "no-time"]
    engine.dispose()


@pytest.mark.parametrize("engine_name", OFFICE_ENGINES)
def test_revision_3_fills_and_indexes_the_reason_of_archived_denials(
    engine_name: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """An archive written at revision 0002 (reason only in the JSON) upgrades: the reason
    column is filled from the payloads (text reasons only), the partial index exists, and
    the console's search by reason finds old and new denials alike."""
    from alembic import command
    from sqlalchemy import inspect

    if engine_name == "sqlite":
        db = str(tmp_path / "central.db")
    else:
        db = request.getfixturevalue("postgres_cluster").database()
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    old = [
        {"id": "d1", "seq": 1, "ts": ts, "type": "access_denied", "reason": "revoked"},
        {"id": "d2", "seq": 2, "ts": ts, "type": "access_denied", "reason": "schedule"},
        {"id": "g3", "seq": 3, "ts": ts, "type": "access_granted", "person": "alice"},
        {"id": "x4", "seq": 4, "ts": ts, "type": "access_denied", "reason": 7},  # not text
        {"id": "x5", "seq": 5, "ts": ts, "type": "access_denied", "reason": "r" * 200},
    ]
    engine = make_engine(db, immediate=True)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0002")
        ev = sa.table(
            "events",
            *(
                sa.column(c)
                for c in (
                    "id",
                    "site",
                    "door",
                    "seq",
                    "ts",
                    "at",
                    "type",
                    "person",
                    "payload",
                    "received",
                )
            ),
        )
        conn.execute(
            sa.insert(ev),
            [
                {
                    "id": e["id"],
                    "site": "hq",
                    "door": "front",
                    "seq": e["seq"],
                    "ts": e["ts"],
                    "at": archive.event_at(e["ts"]),
                    "type": e["type"],
                    "person": e.get("person"),
                    "payload": json.dumps(e),
                    "received": now,
                }
                for e in old
            ],
        )
    engine.dispose()
    engine = store.open_master(db, key=os.urandom(32))
    with engine.begin() as conn:
        assert migrate.current(conn) == migrate.heads()
        names = {i["name"] for i in inspect(conn).get_indexes("events")}
        assert {"events_reason", "events_door_reason"} <= names
        new = {"id": "d6", "seq": 6, "ts": ts, "type": "access_denied", "reason": "revoked"}
        archive.archive_events(conn, "hq", "front", [new], now)
    with engine.connect() as conn:
        found = archive.search_events(conn, {"reason": "revoked"})
        assert [e["id"] for e in found] == ["d6", "d1"]  # newest first
        assert [e["id"] for e in archive.search_events(conn, {"reason": "schedule"})] == ["d2"]
        both = archive.search_events(conn, {"door": "front", "reason": "revoked"})
        assert [e["id"] for e in both] == ["d6", "d1"]
        assert archive.search_events(conn, {"door": "side", "reason": "revoked"}) == []
        filled = conn.execute(
            text("SELECT id, reason FROM events WHERE reason IS NOT NULL ORDER BY id")
        ).all()
        assert [tuple(r) for r in filled] == [
            ("d1", "revoked"),
            ("d2", "schedule"),
            ("d6", "revoked"),
        ]
    engine.dispose()
