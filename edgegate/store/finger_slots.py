"""Finger credentials in the store: site-wide values, this door's slot mapping, sealing.

A finger credential's ``value`` is site-wide (``<person>.<16 hex>``, made once at enrolment) so
the same template can be sent to every door; each door keeps ``finger_slots`` mapping that
value to the slot its own sensor holds the template in (the reader reports slots). The
template itself is ``credentials.data``, sealed (edgegate/store/sealed.py) with the kind and
the value as associated data, and tagged with the sensor family in the label
(``model=r307``): templates are not portable between families.

Functions take a connection and run on the store thread (``AsyncStore.call``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

import structlog

from edgegate.store import credentials as creds
from edgegate.store.db import transaction
from edgegate.store.sealed import SealError, is_sealed, seal, unseal

log = structlog.get_logger(__name__)

KIND = "finger"
MODEL_KEY = "model"
# One "key=value" token of a label; labels are free text, several tokens may be separated by
# spaces, commas or semicolons.
_MODEL_TOKEN = re.compile(r"(?:^|[\s,;])model=([A-Za-z0-9_-]{1,64})(?=$|[\s,;])")


def model_label(model: str) -> str:
    return f"{MODEL_KEY}={model}"


def model_of(label: str | None) -> str | None:
    """The sensor family a template is tagged with (``model=r307`` in the label), or None
    when the label has no tag or more than one different tag (ambiguous: never written)."""
    if not label:
        return None
    found = set(_MODEL_TOKEN.findall(label))
    return found.pop() if len(found) == 1 else None


def new_finger_value(person_id: str) -> str:
    """A site-wide value for a newly enrolled finger: unique without asking anyone."""
    return f"{person_id[:100]}.{secrets.token_hex(8)}"


def template_digest(key: bytes, template: bytes) -> str:
    """A keyed hash of a template: tells a changed template apart without revealing it."""
    return hmac.new(key, b"finger-template\x00" + template, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class FingerTemplate:
    """One finger credential as library sync sees it."""

    value: str
    person_id: str
    active: bool  # credential and person enabled
    model: str | None
    template: bytes | None  # plaintext; None when absent or unreadable
    digest: str = ""


@dataclass(frozen=True, slots=True)
class SlotEntry:
    value: str
    slot: int
    digest: str = ""


def put_finger(
    conn: sqlite3.Connection,
    key: bytes,
    person_id: str,
    value: str,
    model: str,
    template: bytes,
    *,
    slot: int | None = None,
    now: float | None = None,
) -> None:
    """Store a finger credential with its template sealed (and this door's slot, if any).

    The caller holds the transaction (the enrolment CLI writes person, credential and slot
    together, so a crash leaves at most an unmapped sensor slot, which library sync deletes).
    """
    creds.add_credential(
        conn,
        KIND,
        value,
        person_id,
        label=model_label(model),
        data=seal(key, KIND, value, template),
        now=now,
    )
    if slot is not None:
        map_slot(conn, value, slot, template_digest(key, template), now)


def map_slot(
    conn: sqlite3.Connection, value: str, slot: int, digest: str, now: float | None = None
) -> None:
    # A slot holds one template: whatever was mapped to it before is gone from the sensor.
    conn.execute("DELETE FROM finger_slots WHERE slot = ? OR value = ?", (slot, value))
    conn.execute(
        "INSERT INTO finger_slots(value, slot, digest, updated_at) VALUES (?,?,?,?)",
        (value, slot, digest, now if now is not None else time.time()),
    )


def set_digest(conn: sqlite3.Connection, value: str, digest: str) -> None:
    conn.execute("UPDATE finger_slots SET digest = ? WHERE value = ?", (digest, value))


def unmap_slot(conn: sqlite3.Connection, value: str) -> None:
    conn.execute("DELETE FROM finger_slots WHERE value = ?", (value,))


def slot_map(conn: sqlite3.Connection) -> dict[str, SlotEntry]:
    rows = conn.execute("SELECT value, slot, digest FROM finger_slots").fetchall()
    return {r[0]: SlotEntry(r[0], r[1], r[2]) for r in rows}


def seal_clear_templates(conn: sqlite3.Connection, key: bytes) -> int:
    """Seal every finger template still stored in clear (stores from before sealing, or a
    writer that stored one unsealed). Returns how many were sealed.

    ``secure_delete`` zeroes the old cells, and the WAL is checkpointed and truncated after,
    so the clear bytes do not linger in free space or old WAL frames of the copied files.
    """
    conn.execute("PRAGMA secure_delete = ON")
    with transaction(conn):
        rows = conn.execute(
            "SELECT value, data FROM credentials WHERE kind = ? AND data IS NOT NULL", (KIND,)
        ).fetchall()
        # Only bytes are templates; anything else is reported by load_library_state.
        clear = [
            (value, data)
            for value, data in rows
            if isinstance(data, bytes) and data and not is_sealed(data)
        ]
        for value, data in clear:
            conn.execute(
                "UPDATE credentials SET data = ? WHERE kind = ? AND value = ?",
                (seal(key, KIND, value, data), KIND, value),
            )
    if clear:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("finger_templates_sealed", count=len(clear))
    return len(clear)


@dataclass
class LibraryState:
    templates: list[FingerTemplate]
    slots: dict[str, SlotEntry]
    sealed_now: int = 0
    unseal_failed: int = 0


def load_library_state(conn: sqlite3.Connection, key: bytes) -> LibraryState:
    """Everything library sync needs, read in one visit to the store thread (after sealing
    any clear template, so a sync pass is also the at-rest migration)."""
    sealed_now = seal_clear_templates(conn, key)
    rows = conn.execute(
        "SELECT c.value, c.person_id, c.enabled AND p.enabled, c.label, c.data "
        "FROM credentials c JOIN people p ON p.id = c.person_id WHERE c.kind = ?",
        (KIND,),
    ).fetchall()
    templates: list[FingerTemplate] = []
    failed = 0
    for value, person_id, active, label, data in rows:
        template: bytes | None = None
        if data is not None and not isinstance(data, bytes):
            failed += 1  # e.g. base64 text stored by a writer instead of the bytes
            log.error("finger_template_not_bytes", value=value, type=type(data).__name__)
        elif data:
            try:
                template = unseal(key, KIND, value, data)
            except SealError as exc:
                failed += 1
                log.error("finger_template_unreadable", value=value, error=str(exc))
        templates.append(
            FingerTemplate(
                value=value,
                person_id=person_id,
                active=bool(active),
                model=model_of(label),
                template=template,
                digest=template_digest(key, template) if template else "",
            )
        )
    return LibraryState(templates, slot_map(conn), sealed_now, failed)
