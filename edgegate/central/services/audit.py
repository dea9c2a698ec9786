"""The append-only, hash-chained audit log: every change by console, API or CLI.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's own fields
(canonical JSON), so editing, removing or reordering any entry breaks every later link;
``verify`` recomputes the chain (``edgegate central audit verify``).

One exception, made openly: erasing a person (``services/erasure.py``) redacts the entries
that name them (``redact``), which their hashes no longer match; the erasure's own entry,
chained after them, lists their ``seq`` under ``redacted``, and ``verify`` accepts a changed
entry only when such a later entry names it. The links (``hash``, ``prev_hash``) never
change, so removing or reordering entries is still detected.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from edgegate.central.schema.console import audit_log
from edgegate.central.services import Actor

log = structlog.get_logger(__name__)

GENESIS = "0" * 64


def entry_hash(
    prev: str, ts: float, actor: str, via: str, action: str, target: str, detail: str
) -> str:
    body = json.dumps([prev, repr(ts), actor, via, action, target, detail], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _head(conn: Connection) -> str:
    row = conn.execute(select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    return GENESIS if row is None else row[0]


def _insert(conn: Connection, actor: Actor, action: str, target: str, text: str) -> None:
    ts = time.time()
    prev = _head(conn)
    conn.execute(
        audit_log.insert().values(
            ts=ts,
            actor=actor.name,
            via=actor.via,
            action=action,
            target=target,
            detail=text,
            prev_hash=prev,
            hash=entry_hash(prev, ts, actor.name, actor.via, action, target, text),
        )
    )
    log.info("audit", actor=actor.name, via=actor.via, action=action, target=target)


def record(engine: Engine, actor: Actor, action: str, target: str = "", **detail: Any) -> None:
    """Append one entry in a transaction of its own. Never put a secret in ``detail``."""
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    for _ in range(20):
        try:
            with engine.begin() as conn:
                _insert(conn, actor, action, target, text)
        except IntegrityError:
            continue  # another writer appended after the same head: chain onto theirs
        return
    raise RuntimeError("audit log: could not append (too much contention)")


def append(conn: Connection, actor: Actor, action: str, target: str = "", **detail: Any) -> None:
    """Append one entry inside the caller's transaction, so the entry commits with the change
    it describes (one transaction, one write lock). The caller's engine must support
    savepoints (the master's, ``store.open_master``): each attempt is one, so a writer that
    appended after the same head first (PostgreSQL) makes this one chain onto theirs instead
    of failing the caller's transaction. On SQLite the transaction's write lock already keeps
    every other writer out."""
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    for _ in range(20):
        try:
            with conn.begin_nested():
                _insert(conn, actor, action, target, text)
        except IntegrityError:
            continue
        return
    raise RuntimeError("audit log: could not append (too much contention)")


REDACTING = "person_erased"  # the action whose entry may list redacted entries


def redact(conn: Connection, rows: dict[int, dict[str, str]]) -> None:
    """Rewrite entries' ``target``/``detail`` (seq -> new values) in the caller's
    transaction, which must also append the ``REDACTING`` entry listing them (``redacted``)."""
    for seq, values in rows.items():
        conn.execute(audit_log.update().where(audit_log.c.seq == seq).values(**values))


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    entries: int
    bad_seq: int | None = None
    reason: str = ""
    redacted: int = 0  # entries changed by an erasure that a later entry lists


def _vouched(conn: Connection) -> dict[int, int]:
    """seq of a redacted entry -> seq of the erasure entry listing it."""
    out: dict[int, int] = {}
    q = select(audit_log.c.seq, audit_log.c.detail).where(audit_log.c.action == REDACTING)
    for seq, detail in conn.execute(q):
        try:
            listed = json.loads(detail).get("redacted", [])
        except (ValueError, AttributeError):
            continue
        for s in listed if isinstance(listed, list) else []:
            if isinstance(s, int) and s < seq:
                out.setdefault(s, seq)
    return out


def verify(engine: Engine) -> Verdict:
    prev = GENESIS
    n = redacted = 0
    with engine.connect() as conn:
        vouched = _vouched(conn)
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()
        for r in rows:
            n += 1
            if r["prev_hash"] != prev:
                return Verdict(False, n, r["seq"], "does not follow the entry before it")
            want = entry_hash(
                prev, r["ts"], r["actor"], r["via"], r["action"], r["target"], r["detail"]
            )
            if want != r["hash"]:
                if r["seq"] not in vouched:
                    return Verdict(False, n, r["seq"], "its content was changed")
                redacted += 1  # the erasure entry naming it is checked when its turn comes
            prev = r["hash"]
    return Verdict(True, n, redacted=redacted)


def recent(
    engine: Engine, *, limit: int = 100, before: int | None = None, actor: str | None = None
) -> list[dict[str, Any]]:
    q = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if before is not None:
        q = q.where(audit_log.c.seq < before)
    if actor:
        q = q.where(audit_log.c.actor == actor)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def reasons_for(engine: Engine, actions: tuple[str, ...]) -> dict[str, str]:
    """target -> the ``reason`` of its latest entry among ``actions`` (e.g. lost cards)."""
    q = (
        select(audit_log.c.target, audit_log.c.detail)
        .where(audit_log.c.action.in_(actions))
        .order_by(audit_log.c.seq)
    )
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for target, detail in conn.execute(q):
            out[target] = json.loads(detail).get("reason", "")
    return out
