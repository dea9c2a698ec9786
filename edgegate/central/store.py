"""The master store of the central office: people, credentials and the versions log.

Every change to people or credentials is a list of contract ops (``messages.Op``) applied to
the tables AND recorded as one or more consecutive versions in the same transaction, so what
the doors receive is by construction what the master holds. A version keeps its ops (the
delta) and whether it reached the broker; the snapshot is built from the tables.

Same SQLite discipline as the door (WAL, ``user_version`` migrations from
``edgegate.store.db``); the archive tables (events, doors, counters) live here too and are
used by ``archive.py``.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgegate.contract import messages as m
from edgegate.errors import EdgegateError
from edgegate.store.db import open_db, people_credentials_ddl

_V1 = (
    people_credentials_ddl("TEXT")
    + """CREATE TABLE versions (
    version INTEGER PRIMARY KEY,
    base INTEGER NOT NULL,
    issued TEXT NOT NULL,
    n_ops INTEGER NOT NULL,
    ops TEXT NOT NULL,
    published REAL
);
CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    door TEXT NOT NULL,
    cmd TEXT NOT NULL,
    message TEXT NOT NULL,
    published REAL
);
CREATE TABLE events (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    door TEXT NOT NULL,
    seq INTEGER,
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX events_door ON events(door, n);
CREATE INDEX events_type ON events(type, n);
CREATE INDEX events_ts ON events(ts);
CREATE TABLE doors (
    site TEXT NOT NULL,
    door TEXT NOT NULL,
    availability TEXT NOT NULL DEFAULT 'unknown',
    changed REAL,
    last_seen REAL,
    state TEXT,
    telemetry TEXT,
    credential_version INTEGER,
    PRIMARY KEY (site, door)
) WITHOUT ROWID;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
)

# The console's event search by person and by credential (docs/console.md): expression
# indexes over the archived JSON, the same expressions as ``archive._FILTERS`` (SQLite uses an
# expression index only for the identical expression). Without them a search for one person
# reads the whole archive (1.4 s at 200,000 events; see docs/benchmarks.md).
_V2 = """CREATE INDEX events_person ON events(json_extract(payload, '$.person'), n);
CREATE INDEX events_credential ON events(json_extract(payload, '$.credential'), n);
"""

# Append only (see edgegate/store/db.py): entry N-1 takes the master from N-1 to N.
CENTRAL_MIGRATIONS: list[str] = [_V1, _V2]

# A version's message stays far below the broker's and the door's limits (16 MiB).
UPDATE_MAX_BYTES = 1_000_000


class CentralError(EdgegateError, ValueError):
    """A change the master store refuses (unknown person or card, card of someone else)."""


def open_master(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    # NORMAL: a commit survives a crash of the process; a power cut may lose the last
    # commits, never corrupt the file, and a lost CLI change is simply redone.
    return open_db(
        path, readonly=readonly, check=False, synchronous="NORMAL", migrations=CENTRAL_MIGRATIONS
    )


def now_rfc3339() -> str:
    return m.rfc3339(datetime.now(UTC).replace(microsecond=0))


# --- applying ops -----------------------------------------------------------------------


_PUT_PERSON = (
    "INSERT INTO people(id, name, enabled, valid_from, valid_until, attrs, updated_at) "
    "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, "
    "enabled=excluded.enabled, valid_from=excluded.valid_from, "
    "valid_until=excluded.valid_until, attrs=excluded.attrs, updated_at=excluded.updated_at"
)
# The WHERE makes the upsert a no-op when the card belongs to someone else: the row count
# tells, without a SELECT per credential. A missing owner fails the foreign key.
_PUT_CREDENTIAL = (
    "INSERT INTO credentials(kind, value, person_id, enabled, valid_from, valid_until, label, "
    "data, updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(kind, value) DO UPDATE SET "
    "enabled=excluded.enabled, valid_from=excluded.valid_from, "
    "valid_until=excluded.valid_until, label=excluded.label, data=excluded.data, "
    "updated_at=excluded.updated_at WHERE credentials.person_id = excluded.person_id"
)


def _put_people(conn: sqlite3.Connection, ops: list[m.PutPerson], now: float) -> None:
    conn.executemany(
        _PUT_PERSON,
        (
            (p.id, p.name, int(p.enabled), p.valid_from, p.valid_until, _attrs(p.attrs), now)
            for p in (op.person for op in ops)
        ),
    )


def _put_credentials(conn: sqlite3.Connection, ops: list[m.PutCredential], now: float) -> None:
    creds = [op.credential for op in ops]
    try:
        cur = conn.executemany(
            _PUT_CREDENTIAL,
            (
                (c.kind, c.value, c.person, int(c.enabled), *_window(c), c.label, c.data, now)
                for c in creds
            ),
        )
    except sqlite3.IntegrityError as exc:
        missing = next(
            (
                c.person
                for c in creds
                if not conn.execute("SELECT 1 FROM people WHERE id=?", (c.person,)).fetchone()
            ),
            None,
        )
        if missing is None:
            raise CentralError(f"credential refused by the store: {exc}") from None
        raise CentralError(f"no person {missing!r}; add the person first") from None
    if cur.rowcount != len(creds):
        for c in creds:
            owner = credential_owner(conn, c.kind, c.value)
            if owner != c.person:
                raise CentralError(f"{c.kind} {c.value} belongs to {owner}; remove it first")


def _window(c: m.CredentialMsg) -> tuple[float | None, float | None]:
    return c.valid_from, c.valid_until


def _apply_one(conn: sqlite3.Connection, op: m.Op, now: float) -> None:
    if isinstance(op, m.RemovePerson):
        cur = conn.execute("DELETE FROM people WHERE id=?", (op.id,))
        what = f"no person {op.id!r}"
    elif isinstance(op, m.SetPersonEnabled):
        cur = conn.execute(
            "UPDATE people SET enabled=?, updated_at=? WHERE id=?", (int(op.enabled), now, op.id)
        )
        what = f"no person {op.id!r}"
    elif isinstance(op, m.SetCredentialEnabled):
        cur = conn.execute(
            "UPDATE credentials SET enabled=?, updated_at=? WHERE kind=? AND value=?",
            (int(op.enabled), now, op.kind, op.value),
        )
        what = f"no {op.kind} {op.value}"
    elif isinstance(op, m.RemoveCredential):
        cur = conn.execute("DELETE FROM credentials WHERE kind=? AND value=?", (op.kind, op.value))
        what = f"no {op.kind} {op.value}"
    else:
        raise TypeError(op)
    if cur.rowcount == 0:
        raise CentralError(what)


def apply_ops(conn: sqlite3.Connection, ops: list[m.Op], now: float) -> None:
    """Apply ops in order; runs of puts go in one executemany (an import is 200,000 ops)."""
    i = 0
    while i < len(ops):
        kind = type(ops[i])
        j = i
        while j < len(ops) and type(ops[j]) is kind:
            j += 1
        run = ops[i:j]
        if kind is m.PutPerson:
            _put_people(conn, run, now)  # type: ignore[arg-type]
        elif kind is m.PutCredential:
            _put_credentials(conn, run, now)  # type: ignore[arg-type]
        else:
            for op in run:
                _apply_one(conn, op, now)
        i = j


def _attrs(attrs: dict[str, Any]) -> str:
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"))


def _split(ops: list[str], max_ops: int, max_bytes: int) -> list[list[str]]:
    """Consecutive groups of serialised ops, each within both limits (at least one op)."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in ops:
        if current and (len(current) >= max_ops or size + len(text) > max_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    base: int
    issued: str
    ops_json: str  # the JSON array of ops, as stored

    def issued_before(self, ts: float) -> bool:
        return datetime.fromisoformat(self.issued).timestamp() < ts

    def message(self, site: str) -> dict[str, Any]:
        return {
            "type": "credentials",
            "v": m.PROTOCOL,
            "site": site,
            "version": self.version,
            "base": self.base,
            "issued": self.issued,
            "ops": json.loads(self.ops_json),
        }


def current_version(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM versions").fetchone()[0]


def commit_ops(
    conn: sqlite3.Connection,
    ops: list[m.Op],
    *,
    max_ops: int = 2000,
    max_bytes: int = UPDATE_MAX_BYTES,
    now: float | None = None,
) -> list[Version]:
    """Apply ``ops`` and record them as consecutive versions. Call inside ``transaction``;
    a CentralError rolls the whole change back (nothing half-applied, no version used)."""
    now = time.time() if now is None else now
    apply_ops(conn, ops, now)
    texts = [op.model_dump_json(exclude_defaults=True, by_alias=True) for op in ops]
    base = current_version(conn)
    issued = now_rfc3339()
    out: list[Version] = []
    for group in _split(texts, max_ops, max_bytes):
        ops_json = "[" + ",".join(group) + "]"
        version = Version(base + 1, base, issued, ops_json)
        conn.execute(
            "INSERT INTO versions(version, base, issued, n_ops, ops) VALUES (?,?,?,?,?)",
            (version.version, version.base, issued, len(group), ops_json),
        )
        out.append(version)
        base += 1
    return out


def unpublished(conn: sqlite3.Connection) -> list[Version]:
    rows = conn.execute(
        "SELECT version, base, issued, ops FROM versions WHERE published IS NULL ORDER BY version"
    ).fetchall()
    return [Version(*r) for r in rows]


def unpublished_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM versions WHERE published IS NULL").fetchone()[0]


def mark_published(conn: sqlite3.Connection, versions: list[int], now: float) -> None:
    conn.executemany(
        "UPDATE versions SET published=? WHERE version=?", ((now, v) for v in versions)
    )


# --- reading ----------------------------------------------------------------------------


def get_person(conn: sqlite3.Connection, person_id: str) -> m.PersonMsg | None:
    row = conn.execute(
        "SELECT id, name, enabled, valid_from, valid_until, attrs FROM people WHERE id=?",
        (person_id,),
    ).fetchone()
    return None if row is None else m.PersonMsg.model_validate(person_dict(row))


def person_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A people row as its contract object, without the keys that hold their default."""
    out: dict[str, Any] = {"id": row[0]}
    if row[1]:
        out["name"] = row[1]
    if not row[2]:
        out["enabled"] = False
    if row[3] is not None:
        out["valid_from"] = row[3]
    if row[4] is not None:
        out["valid_until"] = row[4]
    if row[5] != "{}":
        out["attrs"] = _parse_attrs(row[5])
    return out


@functools.lru_cache(maxsize=4096)
def _parse_attrs(text: str) -> dict[str, Any]:
    # Most people of a site share a handful of attribute sets ({"groups":["staff"]}): a
    # 100,000-people snapshot parses each distinct one once. Callers never mutate the dict.
    return json.loads(text)


def credential_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """(kind, value, person, enabled, from, until, label, data) as its contract object."""
    out: dict[str, Any] = {"kind": row[0], "value": row[1], "person": row[2]}
    if not row[3]:
        out["enabled"] = False
    for key, value in zip(("valid_from", "valid_until"), row[4:6], strict=True):
        if value is not None:
            out[key] = value
    if row[6]:
        out["label"] = row[6]
    if row[7] is not None:
        out["data"] = row[7]
    return out


PEOPLE_COLS = "id, name, enabled, valid_from, valid_until, attrs"
CRED_COLS = "kind, value, person_id, enabled, valid_from, valid_until, label, data"


def list_people(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {PEOPLE_COLS}, (SELECT COUNT(*) FROM credentials c WHERE c.person_id = p.id) "
        "FROM people p ORDER BY id"
    ).fetchall()
    return [{**person_dict(r), "enabled": bool(r[2]), "credentials": r[6]} for r in rows]


def list_credentials(
    conn: sqlite3.Connection, person: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    sql = f"SELECT {CRED_COLS} FROM credentials WHERE 1=1"
    params: list[str] = []
    if person:
        sql += " AND person_id=?"
        params.append(person)
    if kind:
        sql += " AND kind=?"
        params.append(kind)
    rows = conn.execute(sql + " ORDER BY person_id, kind, value", params).fetchall()
    return [{**credential_dict(r), "enabled": bool(r[3])} for r in rows]


def credential_owner(conn: sqlite3.Connection, kind: str, value: str) -> str | None:
    row = conn.execute(
        "SELECT person_id FROM credentials WHERE kind=? AND value=?", (kind, value)
    ).fetchone()
    return None if row is None else row[0]


def search_people(conn: sqlite3.Connection, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """People whose id or name contains ``q`` (or who hold a credential whose value does),
    by id, at most ``limit``."""
    like = f"%{q.replace('%', '').replace('_', '')}%"
    rows = conn.execute(
        f"SELECT {PEOPLE_COLS}, (SELECT COUNT(*) FROM credentials c WHERE c.person_id = p.id) "
        "FROM people p WHERE p.id LIKE ? OR p.name LIKE ? OR EXISTS (SELECT 1 FROM credentials "
        "c WHERE c.person_id = p.id AND c.value LIKE ?) ORDER BY id LIMIT ?",
        (like, like, like, limit),
    ).fetchall()
    return [{**person_dict(r), "enabled": bool(r[2]), "credentials": r[6]} for r in rows]
