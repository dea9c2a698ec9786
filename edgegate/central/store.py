"""The master store of the central office: people, credentials and the versions log.

Every change to people or credentials is a list of contract ops (``messages.Op``) applied to
the tables AND recorded as one or more consecutive versions in the same transaction, so what
the doors receive is by construction what the master holds. A version keeps its ops (the
delta) and whether it reached the broker; the snapshot is built from the tables.

The store is SQLAlchemy Core on ``edgegate.central.schema`` (SQLite or PostgreSQL, see
``engine.py``); ``open_master`` migrates it (``migrate.py``) and hands back an ``Engine``
whose connections carry the store key: biometric data (``credentials.data``) is sealed at
rest as on the doors (``edgegate.store.sealed``) and unsealed only when read for a door.
Functions here take a ``Connection``; a change runs inside ``with engine.begin() as conn``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from edgegate.central import migrate
from edgegate.central.dialect import upsert
from edgegate.central.engine import LOCK_TIMEOUT_MS, make_engine, reads, sqlite_path
from edgegate.central.engine import reading as reading  # re-exported: store.reading(engine)
from edgegate.central.schema.master import credentials, people, versions
from edgegate.central.writer_handoff import Writes
from edgegate.contract import messages as m
from edgegate.contract import ops as semantics
from edgegate.errors import EdgegateError
from edgegate.store import sealed

# A version's message stays far below the broker's and the door's limits (16 MiB).
UPDATE_MAX_BYTES = 1_000_000
SEAL_KEY = "edgegate_seal_key"


class CentralError(EdgegateError, ValueError):
    """A change the master store refuses (unknown person or card, card of someone else)."""


def store_key(db: str | Path, key_file: Path | None = None) -> bytes:
    """The office's store key (``edgegate.store.sealed.load_key`` order). An SQLite store
    keeps a created ``store.key`` beside itself; a PostgreSQL store has no directory of its
    own, so every instance must be given the same key (``[central] store_key_file`` or the
    systemd credential ``store-key``)."""
    path = sqlite_path(db)
    if path is not None:
        return sealed.load_key(path, key_file)
    if key_file is None:
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        credential = Path(cred_dir) / sealed.CREDENTIAL_NAME if cred_dir else None
        if credential is None or not credential.is_file():
            raise sealed.SealError(
                "a PostgreSQL office store needs [central] store_key_file (or the systemd "
                "credential store-key): the same 32-byte key on every office instance"
            )
        key_file = credential
    return sealed.load_key(key_file.parent / "db", key_file, create=False)


def open_master(
    db: str | Path,
    *,
    readonly: bool = False,
    key_file: Path | None = None,
    key: bytes | None = None,
    migrate_store: bool = True,
    writes: Writes = Writes.INTERACTIVE,
    busy_timeout_ms: int = LOCK_TIMEOUT_MS,
    **engine_kwargs: object,
) -> Engine:
    """The migrated office store, its connections carrying the store key. ``readonly``: a
    command that only reads (an SQLite store must exist; its transactions do not lock)."""
    path = sqlite_path(db)
    if readonly and path is not None and not path.exists():
        raise migrate.StoreSchemaError(
            "no office store here (has `central serve` or a `central people` command run yet?)"
        )
    engine = make_engine(
        db,
        immediate=not readonly,
        writes=writes,
        busy_timeout_ms=busy_timeout_ms,
        **engine_kwargs,
    )
    if migrate_store:
        migrate.upgrade(engine)
    if key is None:
        key = store_key(db, key_file)
    engine = engine.execution_options(**{SEAL_KEY: key})
    if migrate_store and not readonly:
        with engine.begin() as conn:
            n = seal_clear(conn)
        if n:
            import structlog

            structlog.get_logger(__name__).info("biometrics_sealed_at_rest", credentials=n)
    return engine


def connection_key(conn: Connection) -> bytes:
    """The store key the connection carries (``open_master``)."""
    return _key(conn)


def _key(conn: Connection) -> bytes:
    key = conn.get_execution_options().get(SEAL_KEY)
    if key is None:
        raise sealed.SealError("this connection carries no store key (use store.open_master)")
    return key


def seal_data(conn: Connection, kind: str, value: str, data: str | None) -> bytes | None:
    """Base64 text as sent to doors -> the sealed bytes the store keeps."""
    if data is None:
        return None
    return sealed.seal(_key(conn), kind, value, data.encode("ascii"))


def unseal_data(conn: Connection, kind: str, value: str, stored: bytes | str | None) -> str | None:
    """The stored data -> base64 text for a door. Clear data of an older store (text, or
    bytes without the seal's magic) reads as it is until ``seal_clear`` sealed it."""
    if stored is None:
        return None
    if isinstance(stored, str):
        return stored
    stored = bytes(stored)
    if sealed.is_sealed(stored):
        return sealed.unseal(_key(conn), kind, value, stored).decode("ascii")
    return stored.decode("ascii")


def seal_clear(conn: Connection) -> int:
    """Seal every credential whose data is still in clear (a store of an older version)."""
    rows = conn.execute(
        select(credentials.c.kind, credentials.c.value, credentials.c.data).where(
            credentials.c.data.is_not(None)
        )
    ).all()
    n = 0
    for kind, value, data in rows:
        if isinstance(data, bytes | memoryview) and sealed.is_sealed(bytes(data)):
            continue
        text = data if isinstance(data, str) else bytes(data).decode("ascii")
        conn.execute(
            update(credentials)
            .where(credentials.c.kind == kind, credentials.c.value == value)
            .values(data=seal_data(conn, kind, value, text))
        )
        n += 1
    return n


def now_rfc3339() -> str:
    return m.rfc3339(datetime.now(UTC).replace(microsecond=0))


# --- applying ops -----------------------------------------------------------------------


def _put_people(conn: Connection, ops: list[m.PutPerson], now: float) -> None:
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "enabled": p.enabled,
            "valid_from": p.valid_from,
            "valid_until": p.valid_until,
            "attrs": _attrs(p.attrs),
            "updated_at": now,
        }
        for p in (op.person for op in ops)
    ]
    stmt = upsert(conn, people)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={c: stmt.excluded[c] for c in rows[0] if c != "id"},
    )
    conn.execute(stmt, rows)


def _put_credentials(conn: Connection, ops: list[m.PutCredential], now: float) -> None:
    # One credential twice in a change: one upsert may not touch a row twice on PostgreSQL
    # (CardinalityViolation), and SQLite would apply them in turn. In turn, the later one
    # wins for the same person; given to two people, the second is refused (it belongs to
    # the first) -- so the same here, before the statement.
    latest: dict[tuple[str, str], m.CredentialMsg] = {}
    for op in ops:
        c = op.credential
        first = latest.get((c.kind, c.value))
        if first is not None and first.person != c.person:
            raise CentralError(f"{c.kind} {c.value} belongs to {first.person}; remove it first")
        latest[(c.kind, c.value)] = c
    creds = list(latest.values())
    missing = _missing_people(conn, {c.person for c in creds})
    if missing:
        raise CentralError(f"no person {sorted(missing)[0]!r}; add the person first")
    rows = [
        {
            "kind": c.kind,
            "value": c.value,
            "person_id": c.person,
            "enabled": c.enabled,
            "valid_from": c.valid_from,
            "valid_until": c.valid_until,
            "label": c.label,
            "data": seal_data(conn, c.kind, c.value, c.data),
            "updated_at": now,
        }
        for c in creds
    ]
    # The WHERE makes the upsert a no-op when the card belongs to someone else; RETURNING
    # names the rows written, so a refused one is found without a SELECT per credential.
    stmt = upsert(conn, credentials)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "value"],
        set_={
            c: stmt.excluded[c]
            for c in ("enabled", "valid_from", "valid_until", "label", "data", "updated_at")
        },
        where=credentials.c.person_id == stmt.excluded.person_id,
    )
    written = 0
    for start in range(0, len(rows), 500):
        part = rows[start : start + 500]
        written += len(conn.execute(stmt.values(part).returning(credentials.c.kind)).all())
    if written != len(creds):
        for c in creds:
            owner = credential_owner(conn, c.kind, c.value)
            if owner != c.person:
                raise CentralError(f"{c.kind} {c.value} belongs to {owner}; remove it first")


def _missing_people(conn: Connection, ids: set[str]) -> set[str]:
    found: set[str] = set()
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        found.update(conn.execute(select(people.c.id).where(people.c.id.in_(part))).scalars())
    return ids - found


def _remove_person(conn: Connection, e: semantics.Effect, now: float) -> int:
    # Credentials go with the person (ON DELETE CASCADE, and explicitly for an SQLite
    # connection that did not enable foreign keys).
    (person_id,) = e.key
    conn.execute(delete(credentials).where(credentials.c.person_id == person_id))
    return conn.execute(delete(people).where(people.c.id == person_id)).rowcount


def _set_person_enabled(conn: Connection, e: semantics.Effect, now: float) -> int:
    (person_id,) = e.key
    stmt = update(people).where(people.c.id == person_id)
    return conn.execute(stmt.values(enabled=e.enabled, updated_at=now)).rowcount


def _set_credential_enabled(conn: Connection, e: semantics.Effect, now: float) -> int:
    kind, value = e.key
    stmt = update(credentials).where(credentials.c.kind == kind, credentials.c.value == value)
    return conn.execute(stmt.values(enabled=e.enabled, updated_at=now)).rowcount


def _remove_credential(conn: Connection, e: semantics.Effect, now: float) -> int:
    kind, value = e.key
    stmt = delete(credentials).where(credentials.c.kind == kind, credentials.c.value == value)
    return conn.execute(stmt).rowcount


# The office applies with ``Missing.REFUSE`` (edgegate/contract/ops.py): an op on a row that
# is not there is a mistake, refused before it becomes a version. Puts go in runs
# (``_put_people``, ``_put_credentials``); these apply one op each and return the rows hit.
_APPLY_ONE: dict[
    tuple[semantics.Target, semantics.Action], Callable[[Connection, semantics.Effect, float], int]
] = {
    (semantics.Target.PERSON, semantics.Action.REMOVE): _remove_person,
    (semantics.Target.PERSON, semantics.Action.SET_ENABLED): _set_person_enabled,
    (semantics.Target.CREDENTIAL, semantics.Action.SET_ENABLED): _set_credential_enabled,
    (semantics.Target.CREDENTIAL, semantics.Action.REMOVE): _remove_credential,
}


def _apply_one(conn: Connection, op: m.Op, now: float) -> None:
    e = semantics.effect(op)
    hit = _APPLY_ONE[(e.target, e.action)](conn, e, now)
    if hit == 0 and semantics.needs_row(op):  # Missing.REFUSE
        what = f"person {e.key[0]!r}" if e.target is semantics.Target.PERSON else " ".join(e.key)
        raise CentralError(f"no {what}")


def _no_nul(op: m.Op) -> None:
    """PostgreSQL text cannot hold NUL, SQLite can: refuse it on both, so the master means
    the same on either engine (attrs are JSON text, where NUL is escaped)."""
    if any("\x00" in t for t in semantics.effect(op).texts):
        raise CentralError(f"{op.op}: text with a NUL character cannot be stored")


def apply_ops(conn: Connection, ops: list[m.Op], now: float) -> None:
    """Apply ops in order; runs of puts go in one statement (an import is 200,000 ops)."""
    for op in ops:
        _no_nul(op)
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


@reads
def current_version(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(versions.c.version), 0))).scalar_one()


def commit_ops(
    conn: Connection,
    ops: list[m.Op],
    *,
    max_ops: int = 2000,
    max_bytes: int = UPDATE_MAX_BYTES,
    now: float | None = None,
) -> list[Version]:
    """Apply ``ops`` and record them as consecutive versions. Call inside ``engine.begin()``;
    a CentralError rolls the whole change back (nothing half-applied, no version used)."""
    now = time.time() if now is None else now
    apply_ops(conn, ops, now)
    texts = [op.model_dump_json(exclude_defaults=True, by_alias=True) for op in ops]
    base = current_version(conn)
    issued = now_rfc3339()
    out: list[Version] = []
    rows: list[dict[str, Any]] = []
    for group in _split(texts, max_ops, max_bytes):
        ops_json = "[" + ",".join(group) + "]"
        out.append(Version(base + 1, base, issued, ops_json))
        rows.append(
            {
                "version": base + 1,
                "base": base,
                "issued": issued,
                "n_ops": len(group),
                "ops": ops_json,
            }
        )
        base += 1
    if rows:
        conn.execute(versions.insert(), rows)
    return out


def _version_cols() -> tuple[Any, ...]:
    return (versions.c.version, versions.c.base, versions.c.issued, versions.c.ops)


@reads
def unpublished(conn: Connection) -> list[Version]:
    rows = conn.execute(
        select(*_version_cols()).where(versions.c.published.is_(None)).order_by(versions.c.version)
    ).all()
    return [Version(*r) for r in rows]


@reads
def unpublished_count(conn: Connection) -> int:
    return conn.execute(
        select(func.count()).select_from(versions).where(versions.c.published.is_(None))
    ).scalar_one()


def mark_published(conn: Connection, done: list[int], now: float) -> None:
    if done:
        conn.execute(update(versions).where(versions.c.version.in_(done)).values(published=now))


@reads
def versions_after(conn: Connection, have: int, upto: int | None = None) -> list[Version]:
    """The versions a door at ``have`` is missing, oldest first (the delta catch-up)."""
    q = select(*_version_cols()).where(versions.c.version > have)
    if upto is not None:
        q = q.where(versions.c.version <= upto)
    return [Version(*r) for r in conn.execute(q.order_by(versions.c.version))]


@reads
def ops_bytes_after(conn: Connection, have: int) -> tuple[int, int]:
    """(number of versions, bytes of their ops) after ``have``: what a delta would cost."""
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(func.length(versions.c.ops)), 0)).where(
            versions.c.version > have
        )
    ).one()
    return int(row[0]), int(row[1])


# --- reading ----------------------------------------------------------------------------

PEOPLE_COLS = (
    people.c.id,
    people.c.name,
    people.c.enabled,
    people.c.valid_from,
    people.c.valid_until,
    people.c.attrs,
)
CRED_COLS = (
    credentials.c.kind,
    credentials.c.value,
    credentials.c.person_id,
    credentials.c.enabled,
    credentials.c.valid_from,
    credentials.c.valid_until,
    credentials.c.label,
    credentials.c.data,
)


@reads
def get_person(conn: Connection, person_id: str) -> m.PersonMsg | None:
    row = conn.execute(select(*PEOPLE_COLS).where(people.c.id == person_id)).first()
    return None if row is None else m.PersonMsg.model_validate(person_dict(tuple(row)))


@reads
def person_names(conn: Connection, ids: set[str]) -> dict[str, str]:
    """id -> name of the people among ``ids`` that have one: one query for a page of events
    (the console's search names up to 1,000 people per page)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(people.c.id, people.c.name).where(people.c.id.in_(sorted(ids)), people.c.name != "")
    )
    return {pid: name for pid, name in rows}


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


def credential_dict(conn: Connection, row: tuple[Any, ...]) -> dict[str, Any]:
    """(kind, value, person, enabled, from, until, label, data) as its contract object,
    the data unsealed for the door."""
    out: dict[str, Any] = {"kind": row[0], "value": row[1], "person": row[2]}
    if not row[3]:
        out["enabled"] = False
    for key, value in zip(("valid_from", "valid_until"), row[4:6], strict=True):
        if value is not None:
            out[key] = value
    if row[6]:
        out["label"] = row[6]
    data = unseal_data(conn, row[0], row[1], row[7])
    if data is not None:
        out["data"] = data
    return out


@reads
def list_people(conn: Connection) -> list[dict[str, Any]]:
    n_creds = (
        select(func.count())
        .select_from(credentials)
        .where(credentials.c.person_id == people.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(select(*PEOPLE_COLS, n_creds).order_by(people.c.id)).all()
    return [{**person_dict(tuple(r)), "enabled": bool(r[2]), "credentials": r[6]} for r in rows]


@reads
def list_credentials(
    conn: Connection, person: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    q = select(*CRED_COLS)
    if person:
        q = q.where(credentials.c.person_id == person)
    if kind:
        q = q.where(credentials.c.kind == kind)
    q = q.order_by(credentials.c.person_id, credentials.c.kind, credentials.c.value)
    return [
        {**credential_dict(conn, tuple(r)), "enabled": bool(r[3])} for r in conn.execute(q).all()
    ]


@reads
def credential_owner(conn: Connection, kind: str, value: str) -> str | None:
    return conn.execute(
        select(credentials.c.person_id).where(
            credentials.c.kind == kind, credentials.c.value == value
        )
    ).scalar_one_or_none()


@reads
def card_owners(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        select(credentials.c.value, credentials.c.person_id).where(credentials.c.kind == "card")
    )
    return {value: person for value, person in rows}


@reads
def all_people(conn: Connection) -> dict[str, dict[str, Any]]:
    return {r[0]: person_dict(tuple(r)) for r in conn.execute(select(*PEOPLE_COLS))}


@reads
def search_people(conn: Connection, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """People whose id or name contains ``q`` (or who hold a credential whose value does),
    by id, at most ``limit``."""
    like = f"%{q.replace('%', '').replace('_', '')}%"
    n_creds = (
        select(func.count())
        .select_from(credentials)
        .where(credentials.c.person_id == people.c.id)
        .scalar_subquery()
    )
    holds = (
        select(credentials.c.kind)
        .where(credentials.c.person_id == people.c.id, credentials.c.value.like(like))
        .exists()
    )
    rows = conn.execute(
        select(*PEOPLE_COLS, n_creds)
        .where(people.c.id.like(like) | people.c.name.like(like) | holds)
        .order_by(people.c.id)
        .limit(limit)
    ).all()
    return [{**person_dict(tuple(r)), "enabled": bool(r[2]), "credentials": r[6]} for r in rows]
