"""The door's credential set as the central office's sync replaces it: the SQL of deltas'
version bookkeeping and of staged snapshots (the sync layer, edgegate/sync/credentials_apply.py,
turns messages into rows and calls these; it holds no SQL of its own).

Every function here runs on the store thread (``AsyncStore.call``) and keeps each transaction
short, because card decisions queue behind it on that same thread.

Snapshots are staged: each chunk goes into ``people_stage``/``credentials_stage`` (made from
the live tables' own DDL, so columns added by later migrations follow) in short transactions
of at most ``STAGE_BATCH`` rows; the old set keeps deciding meanwhile. When every chunk of one
snapshot id is in, ``swap`` renames the four tables in one transaction (milliseconds whatever
the size; docs/benchmarks.md), and ``clean_step`` then deletes the old set in small batches.

Renames run with ``legacy_alter_table=ON`` and ``foreign_keys=OFF`` (both needed) so SQLite
does not rewrite ``REFERENCES people`` in other tables to ``people_old``: after the swap every
foreign key names the new ``people``. Staging inserts run with ``foreign_keys=OFF`` (the
stage's credentials reference the live ``people`` by name); orphans are checked explicitly
before the swap.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from edgegate.store import credentials, journal
from edgegate.store.db import transaction

VERSION_KEY = "credentials_version"
STAGING_KEY = "snapshot_staging"
# A snapshot refused to keep the people enrolled at the door (JSON: version, people, ts).
LOCAL_HELD_KEY = "local_people_held"
# Set when a delta reached a door holding its own people: they stay unreviewed until a snapshot
# marked replace_local comes (docs/central.md, a door that joins with people of its own).
LOCAL_UNREVIEWED_KEY = "local_people_unreviewed"
STAGE_BATCH = 500
CLEAN_BATCH = 2000


class ChunkId(NamedTuple):
    """Which chunk of which snapshot rows belong to (a ``SnapshotChunk`` has these fields)."""

    snapshot: str
    chunk: int
    chunks: int
    version: int


def get_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    return int(row[0]) if row else 0


def set_version(conn: sqlite3.Connection, version: int) -> None:
    set_meta(conn, VERSION_KEY, str(version))


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


@contextmanager
def _pragma(conn: sqlite3.Connection, name: str, value: str, restore: str) -> Iterator[None]:
    # PRAGMAs like these only take effect outside a transaction; the store thread is the only
    # user of this connection, so nothing else sees the temporary setting.
    conn.execute(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA {name} = {restore}")


def _ddl(conn: sqlite3.Connection, table: str) -> tuple[str, list[str]]:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        )
    ]
    return row[0], indexes


_CREATE_TABLE = re.compile(r'^CREATE TABLE\s+("?)(\w+)\1', re.IGNORECASE)
_CREATE_INDEX = re.compile(
    r'^CREATE (UNIQUE )?INDEX\s+("?)(\w+?)(_g\d+)?\2\s+ON\s+("?)(\w+)\5', re.I
)


def _create_stage(conn: sqlite3.Connection, generation: int) -> None:
    for table in ("people", "credentials"):
        conn.execute(f"DROP TABLE IF EXISTS {table}_stage")
        sql, indexes = _ddl(conn, table)
        conn.execute(_CREATE_TABLE.sub(f"CREATE TABLE {table}_stage", sql, count=1))

        def staged(m: re.Match[str], t: str = table) -> str:
            # Index names are global: the staged index gets a new generation suffix.
            return f"CREATE {m.group(1) or ''}INDEX {m.group(3)}_g{generation} ON {t}_stage"

        for isql in indexes:
            conn.execute(_CREATE_INDEX.sub(staged, isql, count=1))


def stage_rows(
    conn: sqlite3.Connection,
    chunk: ChunkId,
    people: list[tuple[Any, ...]],
    credentials: list[tuple[Any, ...]],
    *,
    last: bool,
    erased: list[str] | None = None,
) -> None:
    """Stage one slice of a chunk (at most ``STAGE_BATCH`` rows) in one short transaction.
    ``last`` records the chunk as received, with the people it says were erased (``swap``
    rewrites them out of the journal). Idempotent: a re-delivered chunk replaces rows."""
    with _pragma(conn, "foreign_keys", "OFF", "ON"), transaction(conn):
        staging = conn.execute("SELECT value FROM meta WHERE key = ?", (STAGING_KEY,)).fetchone()
        if staging is None or staging[0] != chunk.snapshot:
            # A new snapshot id replaces any half-staged older one.
            generation = time.time_ns() // 1000 % 10**12
            _create_stage(conn, generation)
            conn.execute("DELETE FROM snapshot_chunks")
            set_meta(conn, STAGING_KEY, chunk.snapshot)
        conn.executemany(
            "INSERT OR REPLACE INTO people_stage(id, name, enabled, valid_from, valid_until, "
            "attrs, updated_at) VALUES (?,?,?,?,?,?,?)",
            people,
        )
        conn.executemany(
            "INSERT OR REPLACE INTO credentials_stage(kind, value, person_id, enabled, "
            "valid_from, valid_until, label, data, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            credentials,
        )
        if last:
            conn.execute(
                "INSERT OR REPLACE INTO snapshot_chunks(snapshot, chunk, chunks, version, "
                "erased) VALUES (?,?,?,?,?)",
                (
                    chunk.snapshot,
                    chunk.chunk,
                    chunk.chunks,
                    chunk.version,
                    json.dumps(erased or []),
                ),
            )


def snapshot_complete(conn: sqlite3.Connection, snapshot: str) -> tuple[int, int] | None:
    """(chunks, version) once every chunk of ``snapshot`` is staged, else None."""
    row = conn.execute(
        "SELECT COUNT(*), MAX(chunks), MIN(chunks), MAX(version), MIN(version) "
        "FROM snapshot_chunks WHERE snapshot = ?",
        (snapshot,),
    ).fetchone()
    count, chunks, chunks_min, version, version_min = row
    if not count or chunks != chunks_min or version != version_min:
        return None
    return (chunks, version) if count == chunks else None


def remove_orphans_step(
    conn: sqlite3.Connection, after: tuple[str, str] | None, limit: int = 10_000
) -> tuple[tuple[str, str] | None, int]:
    """Drop staged credentials whose person is not staged, ``limit`` credentials per call (a
    scan of 100,000 at once would hold the store thread for ~100 ms). Returns (where to go
    on from, or None when done; how many were dropped)."""
    kind, value = after or ("", "")
    with transaction(conn):
        rows = conn.execute(
            "SELECT c.kind, c.value, p.id IS NULL FROM credentials_stage c "
            "LEFT JOIN people_stage p ON p.id = c.person_id "
            "WHERE (c.kind, c.value) > (?, ?) ORDER BY c.kind, c.value LIMIT ?",
            (kind, value, limit),
        ).fetchall()
        orphans = [(k, v) for k, v, missing in rows if missing]
        conn.executemany("DELETE FROM credentials_stage WHERE kind = ? AND value = ?", orphans)
    return (None if len(rows) < limit else (rows[-1][0], rows[-1][1])), len(orphans)


def swap(
    conn: sqlite3.Connection,
    snapshot: str,
    version: int,
    *,
    journal_tx: journal.JournalTx,
    now: float,
) -> journal.Event | None:
    """Make the staged set live in one short transaction; None if the snapshot is older than
    the door's version (a delta overtook it: keep the newer set).

    The people the snapshot says were erased (its chunks' ``erased``) are erased first, in
    the same transaction, as the ``remove_person`` with ``erase`` the door missed would have
    done (``credentials.erase_people``: out of the live set and the journal, their values as
    this door held them, in one pass over the journal): the snapshot alone only leaves them
    out of the new set, and the journal would keep their id and card values until pruned."""
    with (
        _pragma(conn, "foreign_keys", "OFF", "ON"),
        _pragma(conn, "legacy_alter_table", "ON", "OFF"),
        transaction(conn),
    ):
        have = get_version(conn)
        if version < have:
            return None
        erased = _erased(conn, snapshot)
        _removed, rewritten = credentials.erase_people(conn, erased)
        for table in ("people", "credentials"):
            conn.execute(f"DROP TABLE IF EXISTS {table}_old")
        conn.execute("ALTER TABLE people RENAME TO people_old")
        conn.execute("ALTER TABLE credentials RENAME TO credentials_old")
        conn.execute("ALTER TABLE people_stage RENAME TO people")
        conn.execute("ALTER TABLE credentials_stage RENAME TO credentials")
        set_meta(conn, VERSION_KEY, str(version))
        conn.execute(
            "DELETE FROM meta WHERE key IN (?, ?, ?)",
            (STAGING_KEY, LOCAL_HELD_KEY, LOCAL_UNREVIEWED_KEY),
        )
        conn.execute("DELETE FROM snapshot_chunks")
        people = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        count = conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
        fields = {"version": version, "from": have, "people": people, "credentials": count}
        if erased:
            # How many, never who: the ids are what was erased.
            fields |= {"erased": len(erased), "journal_rewritten": rewritten}
        return journal_tx(conn, [("credentials_snapshot", fields)], now)[0]


def _erased(conn: sqlite3.Connection, snapshot: str) -> list[str]:
    """The union of the staged chunks' ``erased`` lists."""
    rows = conn.execute("SELECT erased FROM snapshot_chunks WHERE snapshot = ?", (snapshot,))
    return sorted({person for (text,) in rows for person in json.loads(text)})


def local_people_guard(conn: sqlite3.Connection, replace_local: bool) -> int:
    """How many people enrolled at the door a snapshot would replace without the office
    saying so (0: go ahead). Local people are those of a door that never took an office set
    (version 0, or past it only by deltas, which add and never wipe): once it took an
    office snapshot, the office is the master and its snapshots replace freely."""
    if replace_local:
        return 0
    if get_version(conn) != 0:
        unreviewed = conn.execute(
            "SELECT 1 FROM meta WHERE key = ?", (LOCAL_UNREVIEWED_KEY,)
        ).fetchone()
        if unreviewed is None:
            return 0
    return conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]


def mark_unreviewed(conn: sqlite3.Connection) -> None:
    """A delta is being applied to a door holding its own people (inside its transaction)."""
    set_meta(conn, LOCAL_UNREVIEWED_KEY, "1")


def refuse_snapshot(
    conn: sqlite3.Connection,
    version: int,
    local: int,
    *,
    journal_tx: journal.JournalTx,
    now: float,
) -> journal.Event | None:
    """Drop the staged snapshot and keep the local set. The refusal is journaled once per
    offered version (a door asks again on every reconnect; the journal should not fill up)."""
    with transaction(conn):
        for table in ("people_stage", "credentials_stage"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute("DELETE FROM snapshot_chunks")
        conn.execute("DELETE FROM meta WHERE key = ?", (STAGING_KEY,))
        before = local_held(conn)
        held = {"version": version, "people": local, "ts": journal.rfc3339(now)}
        set_meta(conn, LOCAL_HELD_KEY, json.dumps(held))
        if before is not None and before.get("version") == version:
            return None
        fields = {
            "version": version,
            "from": get_version(conn),
            "local_people": local,
            "reason": "local_people",
        }
        return journal_tx(conn, [("credentials_snapshot_refused", fields)], now)[0]


def local_held(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The last snapshot refused to keep the door's own people (None: none pending)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LOCAL_HELD_KEY,)).fetchone()
    return json.loads(row[0]) if row else None


def local_rows(
    conn: sqlite3.Connection, limit: int
) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(all people, the first ``limit`` people, their cards) for the door's offer:
    (id, name, enabled, valid_from, valid_until, attrs) and
    (value, person, enabled, valid_from, valid_until, label)."""
    total = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    people = conn.execute(
        "SELECT id, name, enabled, valid_from, valid_until, attrs FROM people ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    ids = {p[0] for p in people}
    cards = [
        r
        for r in conn.execute(
            "SELECT value, person_id, enabled, valid_from, valid_until, label FROM credentials "
            "WHERE kind = 'card' ORDER BY person_id, value"
        )
        if r[1] in ids
    ]
    return total, people, cards


def clean_step(conn: sqlite3.Connection) -> bool:
    """Delete one batch of the replaced set; True while there is more to delete."""
    with transaction(conn):
        for table, key in (("credentials_old", "(kind, value)"), ("people_old", "rowid")):
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if not exists:
                continue
            n = conn.execute(
                f"DELETE FROM {table} WHERE {key} IN "
                f"(SELECT {key.strip('()')} FROM {table} LIMIT {CLEAN_BATCH})"
            ).rowcount
            if n == 0:
                conn.execute(f"DROP TABLE {table}")
            return True
    return False
