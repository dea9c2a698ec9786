"""Credential updates and snapshots from the central office, applied to the store.

Every function here runs on the store thread (``AsyncStore.call``) and keeps each transaction
short, because card decisions queue behind it on that same thread.

Deltas (``CredentialUpdate``) apply in one transaction together with the new version in
``meta`` and a ``credentials_updated`` journal row.

Snapshots are staged: each chunk goes into ``people_stage``/``credentials_stage`` (made from
the live tables' own DDL, so columns added by later migrations follow) in short transactions
of at most ``STAGE_BATCH`` rows; the old set keeps deciding meanwhile. When every chunk of one
snapshot id is in, ``swap`` renames the four tables in one transaction (milliseconds whatever
the size; docs/benchmarks.md), and ``clean_step`` then deletes the old set in small batches.

Renames run with ``legacy_alter_table=ON`` and ``foreign_keys=OFF`` (both needed) so SQLite
does not rewrite ``REFERENCES people``
in other tables to ``people_old``: after the swap every foreign key names the new ``people``.
Staging inserts run with ``foreign_keys=OFF`` (the stage's credentials reference the live
``people`` by name); orphans are checked explicitly before the swap.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from edgegate.contract.messages import (
    LOCAL_OFFER_MAX,
    CredentialMsg,
    CredentialUpdate,
    LocalPeople,
    PersonMsg,
    SnapshotChunk,
)
from edgegate.contract.signing import RejectedMessage
from edgegate.face import face_format
from edgegate.store import credentials as creds
from edgegate.store import journal, sealed
from edgegate.store.db import transaction

VERSION_KEY = "credentials_version"
STAGING_KEY = "snapshot_staging"
# A snapshot refused to keep the people enrolled at the door (JSON: version, people, ts).
LOCAL_HELD_KEY = "local_people_held"
# Set when a delta reached a door holding its own people: they stay unreviewed until a snapshot
# marked replace_local comes.
LOCAL_UNREVIEWED_KEY = "local_people_unreviewed"
STAGE_BATCH = 500
CLEAN_BATCH = 2000
BIOMETRIC = frozenset({"finger", "face"})

log = structlog.get_logger(__name__)


def get_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _data(cred: CredentialMsg, seal_key: bytes | None) -> bytes | None:
    """Templates arrive base64; biometric data is sealed at rest (edgegate/store/sealed.py)."""
    if cred.data is None:
        return None
    try:
        raw = base64.b64decode(cred.data, validate=True)
    except binascii.Error:
        raise RejectedMessage(
            "malformed", f"{cred.kind} {cred.value}: data is not base64"
        ) from None
    if cred.kind in BIOMETRIC:
        if seal_key is None:
            raise RejectedMessage("malformed", "biometric data but no store key on this door")
        if cred.kind == "face":
            raw = _face_data(cred, raw)
        return sealed.seal(seal_key, cred.kind, cred.value, raw)
    return raw


def _face_data(cred: CredentialMsg, raw: bytes) -> bytes:
    """Face data in the versioned form (legacy data re-tagged); garbage is ``malformed``.
    Another model or a newer version is kept as it came, unusable here (the face process and
    doctor count it as ``face_format``): refusing it would hold back the cards and
    revocations of the same message, and keeping it lets its later removal apply."""
    try:
        return face_format.versioned(raw)
    except face_format.FaceFormatError as exc:
        log.warning("face_credential_unusable", value=cred.value, error=str(exc))
        return raw
    except face_format.FaceDataError as exc:
        raise RejectedMessage(exc.reason, f"face {cred.value}: {exc}") from None


def _person_row(p: PersonMsg, now: float) -> tuple[Any, ...]:
    return (
        p.id,
        p.name,
        int(p.enabled),
        p.valid_from,
        p.valid_until,
        json.dumps(p.attrs, sort_keys=True),
        now,
    )


def _cred_row(c: CredentialMsg, seal_key: bytes | None, now: float) -> tuple[Any, ...]:
    value = creds.normalise_card(c.value) if c.kind == "card" else c.value
    return (
        c.kind,
        value,
        c.person,
        int(c.enabled),
        c.valid_from,
        c.valid_until,
        c.label,
        _data(c, seal_key),
        now,
    )


# --- deltas -------------------------------------------------------------------------------
def classify_update(have: int, msg: CredentialUpdate) -> str:
    """``apply``, ``replayed`` (nothing new) or ``gap`` (updates missed: ask for a snapshot).

    Ops are absolute (put, set enabled, remove), so an update whose ``base`` is below the
    door's version but whose ``version`` is above it is safe to apply too.
    """
    if msg.version <= have:
        return "replayed"
    if msg.base > have:
        return "gap"
    return "apply"


def apply_update(
    conn: sqlite3.Connection,
    msg: CredentialUpdate,
    *,
    site: str,
    door: str,
    seal_key: bytes | None = None,
    now: float | None = None,
) -> tuple[str, journal.Event | None]:
    """Apply a delta in one transaction. Returns (outcome, journaled event or None)."""
    now = time.time() if now is None else now
    with transaction(conn):
        have = get_version(conn)
        outcome = classify_update(have, msg)
        if outcome != "apply":
            return outcome, None
        # A delta only adds to the door's own people, it never wipes them; but the door is
        # then past version 0, so remember that its people are still unreviewed: a later
        # snapshot must not replace them silently either (local_people_guard).
        if local_people_guard(conn, False):
            _set_meta(conn, LOCAL_UNREVIEWED_KEY, "1")
        try:
            for op in msg.ops:
                _apply_op(conn, op, seal_key, now)
        except creds.CredentialError as exc:
            # Raising inside the transaction rolls the whole update back.
            raise RejectedMessage("malformed", str(exc)) from None
        _set_meta(conn, VERSION_KEY, str(msg.version))
        event = journal.append(
            conn,
            "credentials_updated",
            {"version": msg.version, "from": have, "ops": len(msg.ops)},
            site=site,
            door=door,
            now=now,
        )
    return "apply", event


def _apply_op(conn: sqlite3.Connection, op: Any, seal_key: bytes | None, now: float) -> None:
    if op.op == "put_person":
        p = op.person
        creds.upsert_person(
            conn,
            creds.Person(p.id, p.name, p.enabled, p.valid_from, p.valid_until, p.attrs),
            now,
        )
    elif op.op == "remove_person":
        creds.remove_person(conn, op.id)
    elif op.op == "set_person_enabled":
        creds.set_person_enabled(conn, op.id, op.enabled)
    elif op.op == "put_credential":
        c = op.credential
        row = _cred_row(c, seal_key, now)
        creds.add_credential(
            conn,
            row[0],
            row[1],
            c.person,
            enabled=c.enabled,
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            label=c.label,
            data=row[7],
            now=now,
        )
    elif op.op == "set_credential_enabled":
        for value in _keys(op.kind, op.value):
            creds.set_credential_enabled(conn, op.kind, value, op.enabled)
    elif op.op == "remove_credential":
        for value in _keys(op.kind, op.value):
            creds.remove_credential(conn, op.kind, value)
    else:  # pragma: no cover - the model's discriminator admits nothing else
        raise RejectedMessage("malformed", f"unknown op {op.op!r}")


def _keys(kind: str, value: str) -> tuple[str, ...]:
    if kind != "card":
        return (value,)
    try:
        return (creds.normalise_card(value),)
    except creds.CredentialError as exc:
        raise RejectedMessage("malformed", str(exc)) from None


# --- snapshots ----------------------------------------------------------------------------
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
        for isql in indexes:
            # Index names are global: the staged index gets a new generation suffix.
            conn.execute(
                _CREATE_INDEX.sub(
                    lambda m, t=table: (
                        f"CREATE {m.group(1) or ''}INDEX {m.group(3)}_g{generation} ON {t}_stage"
                    ),
                    isql,
                    count=1,
                )
            )


def stage_chunk_rows(
    conn: sqlite3.Connection,
    msg: SnapshotChunk,
    people: list[tuple[Any, ...]],
    credentials: list[tuple[Any, ...]],
    *,
    last: bool,
) -> None:
    """Stage one slice of a chunk (at most ``STAGE_BATCH`` rows) in one short transaction.
    ``last`` records the chunk as received. Idempotent: a re-delivered chunk replaces rows."""
    with _pragma(conn, "foreign_keys", "OFF", "ON"), transaction(conn):
        staging = conn.execute("SELECT value FROM meta WHERE key = ?", (STAGING_KEY,)).fetchone()
        if staging is None or staging[0] != msg.snapshot:
            # A new snapshot id replaces any half-staged older one.
            generation = time.time_ns() // 1000 % 10**12
            _create_stage(conn, generation)
            conn.execute("DELETE FROM snapshot_chunks")
            _set_meta(conn, STAGING_KEY, msg.snapshot)
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
                "INSERT OR REPLACE INTO snapshot_chunks(snapshot, chunk, chunks, version) "
                "VALUES (?,?,?,?)",
                (msg.snapshot, msg.chunk, msg.chunks, msg.version),
            )


def chunk_rows(
    msg: SnapshotChunk, seal_key: bytes | None, now: float
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of a chunk (built off the store thread: base64 and sealing cost CPU)."""
    try:
        return (
            [_person_row(p, now) for p in msg.people],
            [_cred_row(c, seal_key, now) for c in msg.credentials],
        )
    except creds.CredentialError as exc:
        raise RejectedMessage("malformed", str(exc)) from None


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
    conn: sqlite3.Connection, snapshot: str, version: int, *, site: str, door: str, now: float
) -> journal.Event | None:
    """Make the staged set live in one short transaction; None if the snapshot is older than
    the door's version (a delta overtook it: keep the newer set)."""
    with (
        _pragma(conn, "foreign_keys", "OFF", "ON"),
        _pragma(conn, "legacy_alter_table", "ON", "OFF"),
        transaction(conn),
    ):
        have = get_version(conn)
        if version < have:
            return None
        for table in ("people", "credentials"):
            conn.execute(f"DROP TABLE IF EXISTS {table}_old")
        conn.execute("ALTER TABLE people RENAME TO people_old")
        conn.execute("ALTER TABLE credentials RENAME TO credentials_old")
        conn.execute("ALTER TABLE people_stage RENAME TO people")
        conn.execute("ALTER TABLE credentials_stage RENAME TO credentials")
        _set_meta(conn, VERSION_KEY, str(version))
        conn.execute(
            "DELETE FROM meta WHERE key IN (?, ?, ?)",
            (STAGING_KEY, LOCAL_HELD_KEY, LOCAL_UNREVIEWED_KEY),
        )
        conn.execute("DELETE FROM snapshot_chunks")
        people = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        count = conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
        return journal.append(
            conn,
            "credentials_snapshot",
            {"version": version, "from": have, "people": people, "credentials": count},
            site=site,
            door=door,
            now=now,
        )


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


def refuse_snapshot(
    conn: sqlite3.Connection,
    version: int,
    local: int,
    *,
    site: str,
    door: str,
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
        _set_meta(
            conn,
            LOCAL_HELD_KEY,
            json.dumps({"version": version, "people": local, "ts": journal.rfc3339(now)}),
        )
        if before is not None and before.get("version") == version:
            return None
        return journal.append(
            conn,
            "credentials_snapshot_refused",
            {
                "version": version,
                "from": get_version(conn),
                "local_people": local,
                "reason": "local_people",
            },
            site=site,
            door=door,
            now=now,
        )


def local_held(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The last snapshot refused to keep the door's own people (None: none pending)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LOCAL_HELD_KEY,)).fetchone()
    return json.loads(row[0]) if row else None


def local_offer(conn: sqlite3.Connection, site: str, door: str) -> LocalPeople:
    """The door's own people and their cards, offered to the office for review (biometric
    templates stay on the door; at most ``LOCAL_OFFER_MAX`` people, ``total`` says all)."""
    total = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    people = [
        PersonMsg(
            id=r[0],
            name=r[1],
            enabled=bool(r[2]),
            valid_from=r[3],
            valid_until=r[4],
            attrs=json.loads(r[5] or "{}"),
        )
        for r in conn.execute(
            "SELECT id, name, enabled, valid_from, valid_until, attrs FROM people "
            "ORDER BY id LIMIT ?",
            (LOCAL_OFFER_MAX,),
        )
    ]
    ids = {p.id for p in people}
    cards = [
        CredentialMsg(
            kind="card",
            value=r[0],
            person=r[1],
            enabled=bool(r[2]),
            valid_from=r[3],
            valid_until=r[4],
            label=r[5],
        )
        for r in conn.execute(
            "SELECT value, person_id, enabled, valid_from, valid_until, label FROM credentials "
            "WHERE kind = 'card' ORDER BY person_id, value"
        )
        if r[1] in ids
    ]
    return LocalPeople(
        type="local_people", site=site, door=door, total=total, people=people, credentials=cards
    )


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
