"""Credential updates and snapshots from the central office: messages turned into the
store's rows and ops, applied through ``edgegate/store`` (which owns every SQL statement).

Every function here runs on the store thread (``AsyncStore.call``), except ``chunk_rows``,
which the parse worker runs off it (base64 and sealing cost CPU).

Deltas (``CredentialUpdate``) apply in one transaction together with the new version in
``meta`` and a ``credentials_updated`` journal row; each op does what
``edgegate/contract/ops.py`` says, as on the office. Snapshots are staged and swapped in by
``edgegate/store/credential_sync.py``; its steps are re-exported here for the sync service.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import structlog

from edgegate.contract import messages as m
from edgegate.contract import ops
from edgegate.contract.messages import CredentialMsg, CredentialUpdate, PersonMsg, SnapshotChunk
from edgegate.contract.signing import RejectedMessage
from edgegate.face import face_format
from edgegate.store import credential_sync as cs
from edgegate.store import credentials as creds
from edgegate.store import journal, sealed
from edgegate.store.credential_sync import (
    STAGE_BATCH,
    clean_step,
    get_version,
    remove_orphans_step,
    snapshot_complete,
    swap,
)
from edgegate.store.db import transaction, truncate_wal

__all__ = [
    "STAGE_BATCH",
    "apply_update",
    "chunk_rows",
    "classify_update",
    "clean_step",
    "get_version",
    "local_offer",
    "remove_orphans_step",
    "snapshot_complete",
    "stage_chunk_rows",
    "swap",
]

BIOMETRIC = frozenset({"finger", "face"})

log = structlog.get_logger(__name__)


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
    journal_tx: journal.JournalTx,
    seal_key: bytes | None = None,
    now: float | None = None,
) -> tuple[str, journal.Event | None]:
    """Apply a delta in one transaction. Returns (outcome, journaled event or None)."""
    now = time.time() if now is None else now
    with transaction(conn):
        have = cs.get_version(conn)
        outcome = classify_update(have, msg)
        if outcome != "apply":
            return outcome, None
        # A delta only adds to the door's own people, it never wipes them; but the door is
        # then past version 0, so its people stay marked unreviewed: a later snapshot must
        # not replace them silently either (cs.local_people_guard).
        if cs.local_people_guard(conn, False):
            cs.mark_unreviewed(conn)
        try:
            for op in msg.ops:
                _apply_op(conn, op, seal_key, now)
        except creds.CredentialError as exc:
            # Raising inside the transaction rolls the whole update back.
            raise RejectedMessage("malformed", str(exc)) from None
        cs.set_version(conn, msg.version)
        fields = {"version": msg.version, "from": have, "ops": len(msg.ops)}
        (event,) = journal_tx(conn, [("credentials_updated", fields)], now)
    if any(isinstance(op, m.RemovePerson) and op.erase for op in msg.ops):
        # secure_delete zeroed the old cells in the pages; the WAL still holds the pages as
        # they were until a checkpoint copies them back: truncate it now (as sealing does).
        truncate_wal(conn)
    return "apply", event


def _put_person(
    conn: sqlite3.Connection, op: m.PutPerson, seal_key: bytes | None, now: float
) -> None:
    p = op.person
    creds.upsert_person(
        conn, creds.Person(p.id, p.name, p.enabled, p.valid_from, p.valid_until, p.attrs), now
    )


def _remove_person(
    conn: sqlite3.Connection, op: m.RemovePerson, seal_key: bytes | None, now: float
) -> None:
    person = ops.effect(op).key[0]
    if op.erase:
        _removed, rows = creds.erase_person(conn, person)
        log.info("journal_person_erased", rows=rows)  # never the id: it is what is erased
    else:
        creds.remove_person(conn, person)


def _set_person_enabled(
    conn: sqlite3.Connection, op: m.SetPersonEnabled, seal_key: bytes | None, now: float
) -> None:
    e = ops.effect(op)
    creds.set_person_enabled(conn, e.key[0], bool(e.enabled))


def _put_credential(
    conn: sqlite3.Connection, op: m.PutCredential, seal_key: bytes | None, now: float
) -> None:
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


def _set_credential_enabled(
    conn: sqlite3.Connection, op: m.SetCredentialEnabled, seal_key: bytes | None, now: float
) -> None:
    e = ops.effect(op)
    kind, value = e.key
    for key in _keys(kind, value):
        creds.set_credential_enabled(conn, kind, key, bool(e.enabled))


def _remove_credential(
    conn: sqlite3.Connection, op: m.RemoveCredential, seal_key: bytes | None, now: float
) -> None:
    kind, value = ops.effect(op).key
    for key in _keys(kind, value):
        creds.remove_credential(conn, kind, key)


# A door applies with ``Missing.IGNORE`` (edgegate/contract/ops.py): the store functions'
# "nothing was there" results are not errors here, and a put credential takes the owner the
# office signed.
_APPLY: dict[tuple[ops.Target, ops.Action], Callable[..., None]] = {
    (ops.Target.PERSON, ops.Action.PUT): _put_person,
    (ops.Target.PERSON, ops.Action.REMOVE): _remove_person,
    (ops.Target.PERSON, ops.Action.SET_ENABLED): _set_person_enabled,
    (ops.Target.CREDENTIAL, ops.Action.PUT): _put_credential,
    (ops.Target.CREDENTIAL, ops.Action.SET_ENABLED): _set_credential_enabled,
    (ops.Target.CREDENTIAL, ops.Action.REMOVE): _remove_credential,
}


def _apply_op(conn: sqlite3.Connection, op: m.Op, seal_key: bytes | None, now: float) -> None:
    e = ops.effect(op)
    _APPLY[e.target, e.action](conn, op, seal_key, now)


def _keys(kind: str, value: str) -> tuple[str, ...]:
    if kind != "card":
        return (value,)
    try:
        return (creds.normalise_card(value),)
    except creds.CredentialError as exc:
        raise RejectedMessage("malformed", str(exc)) from None


# --- snapshots ----------------------------------------------------------------------------
def stage_chunk_rows(
    conn: sqlite3.Connection,
    msg: SnapshotChunk,
    people: list[tuple[Any, ...]],
    credentials: list[tuple[Any, ...]],
    *,
    last: bool,
) -> None:
    """Stage one slice of a chunk's rows (``store.credential_sync.stage_rows``)."""
    chunk = cs.ChunkId(msg.snapshot, msg.chunk, msg.chunks, msg.version)
    cs.stage_rows(conn, chunk, people, credentials, last=last, erased=msg.erased)


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


def local_offer(conn: sqlite3.Connection, site: str, door: str) -> m.LocalPeople:
    """The door's own people and their cards, offered to the office for review (biometric
    templates stay on the door; at most ``LOCAL_OFFER_MAX`` people, ``total`` says all)."""
    total, people, cards = cs.local_rows(conn, m.LOCAL_OFFER_MAX)
    return m.LocalPeople(
        type="local_people",
        site=site,
        door=door,
        total=total,
        people=[
            PersonMsg(
                id=r[0],
                name=r[1],
                enabled=bool(r[2]),
                valid_from=r[3],
                valid_until=r[4],
                attrs=json.loads(r[5] or "{}"),
            )
            for r in people
        ],
        credentials=[
            CredentialMsg(
                kind="card",
                value=r[0],
                person=r[1],
                enabled=bool(r[2]),
                valid_from=r[3],
                valid_until=r[4],
                label=r[5],
            )
            for r in cards
        ],
    )
