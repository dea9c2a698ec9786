"""People and their credentials in the store. Functions take a connection; no IO beyond it."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict

from edgegate.core.decision import CredentialRecord
from edgegate.core.wiegand_card import canonical_card
from edgegate.errors import EdgegateError
from edgegate.store import journal
from edgegate.store.db import transaction

HEX_UID = re.compile(r"^[0-9A-F]{2,40}$")


class CredentialError(EdgegateError, ValueError):
    """A credential or person that cannot be stored as given."""


def normalise_card(uid: str) -> str:
    """A card UID as readers report it: uppercase hex, leading zeros kept, no separators; a
    26- or 34-bit Wiegand frame with parity (as OSDP readers report 125 kHz prox cards, e.g.
    ``2F764DD``) in its canonical form, the data bits a GPIO Wiegand reader reports."""
    cleaned = uid.strip().replace(":", "").replace("-", "").replace(" ", "").upper()
    if HEX_UID.match(cleaned + "0"):
        cleaned = canonical_card(cleaned)
    if not HEX_UID.match(cleaned) or len(cleaned) % 2:
        raise CredentialError(f"card UID {uid!r} is not an even number of hex digits")
    return cleaned


def card_number_to_uid(number: str) -> str:
    """The decimal number printed on an EM4100 card is its low 32 bits; the version byte
    is not printed. Stored as 8 hex digits, matched against the last 8 of a 10-digit read."""
    # isascii: str.isdigit() accepts digits such as '²' that int() rejects.
    if not (number.strip().isascii() and number.strip().isdigit()):
        raise CredentialError(f"card number {number!r} is not a decimal number")
    value = int(number)
    if value >= 1 << 32:
        raise CredentialError(f"card number {number} is larger than 32 bits")
    return f"{value:08X}"


def canonical_card_forms(conn: sqlite3.Connection) -> int:
    """Store migration: card credentials stored as raw Wiegand frames (7 or 9 hex digits
    with parity, e.g. from an office that took an OSDP reader's value) rewritten in the
    canonical form readers now report. A value whose canonical form is already stored is left
    (and logged by the caller's count). Returns the number rewritten."""
    rows = conn.execute(
        "SELECT value FROM credentials WHERE kind = 'card' AND length(value) IN (7, 9)"
    ).fetchall()
    n = 0
    for (value,) in rows:
        new = canonical_card(value)
        if new != value:
            n += conn.execute(
                "UPDATE OR IGNORE credentials SET value = ? WHERE kind = 'card' AND value = ?",
                (new, value),
            ).rowcount
    return n


def card_lookup_keys(uid: str) -> tuple[str, ...]:
    # A 10-digit EM4100 read also matches a card enrolled by its printed (32-bit) number.
    return (uid, uid[2:]) if len(uid) == 10 else (uid,)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str = ""
    enabled: bool = True
    valid_from: float | None = None
    valid_until: float | None = None
    attrs: dict[str, object] | None = None


def upsert_person(conn: sqlite3.Connection, person: Person, now: float | None = None) -> None:
    conn.execute(
        "INSERT INTO people(id, name, enabled, valid_from, valid_until, attrs, updated_at) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, "
        "enabled=excluded.enabled, valid_from=excluded.valid_from, "
        "valid_until=excluded.valid_until, attrs=excluded.attrs, updated_at=excluded.updated_at",
        (
            person.id,
            person.name,
            int(person.enabled),
            person.valid_from,
            person.valid_until,
            json.dumps(person.attrs or {}, sort_keys=True),
            now if now is not None else time.time(),
        ),
    )


def get_person_attrs(conn: sqlite3.Connection, person_id: str) -> dict[str, object] | None:
    row = conn.execute("SELECT attrs FROM people WHERE id = ?", (person_id,)).fetchone()
    return None if row is None else json.loads(row[0])


def update_person_attrs(
    conn: sqlite3.Connection, person_id: str, updates: dict[str, object], now: float | None = None
) -> dict[str, object]:
    """Merge ``updates`` into the person's attrs (a None value removes the key)."""
    attrs = get_person_attrs(conn, person_id)
    if attrs is None:
        raise CredentialError(f"no person {person_id!r}; add the person first")
    for key, value in updates.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    conn.execute(
        "UPDATE people SET attrs = ?, updated_at = ? WHERE id = ?",
        (json.dumps(attrs, sort_keys=True), now if now is not None else time.time(), person_id),
    )
    return attrs


def set_person_validity(
    conn: sqlite3.Connection, person_id: str, valid_from: float | None, valid_until: float | None
) -> bool:
    """A visitor pass's window is the person's validity window."""
    cur = conn.execute(
        "UPDATE people SET valid_from = ?, valid_until = ?, updated_at = ? WHERE id = ?",
        (valid_from, valid_until, time.time(), person_id),
    )
    return cur.rowcount > 0


def person_values(conn: sqlite3.Connection, person_id: str) -> set[str]:
    """The values of every credential the person holds (cards, template ids)."""
    rows = conn.execute("SELECT value FROM credentials WHERE person_id = ?", (person_id,))
    return {r[0] for r in rows}


def erase_person(conn: sqlite3.Connection, person_id: str) -> tuple[bool, int]:
    """Remove the person and rewrite them out of the journal (``journal.forget_people``),
    in the caller's transaction: a signed erasure from the office, or ``edgegate people
    remove --erase`` for a person only this door holds. Returns (removed, journal rows
    rewritten). Their values are read first: their events name the values as this door
    holds them."""
    removed, rows = erase_people(conn, [person_id])
    return removed > 0, rows


def erase_people(conn: sqlite3.Connection, people: Iterable[str]) -> tuple[int, int]:
    """``erase_person`` for several people, the journal rewritten in one pass
    (``journal.forget_people``). Returns (people removed, journal rows rewritten)."""
    held = {person: person_values(conn, person) for person in people}
    rows = journal.forget_people(conn, held)
    return sum(remove_person(conn, person) for person in held), rows


def remove_person(conn: sqlite3.Connection, person_id: str) -> bool:
    # ON DELETE CASCADE removes the person's credentials with them, but only with foreign
    # keys on: a snapshot's swap erases with them off (credential_sync.swap), so they go
    # explicitly. Their anti-passback presence names them too and means nothing without them.
    conn.execute("DELETE FROM credentials WHERE person_id = ?", (person_id,))
    conn.execute("DELETE FROM presence WHERE person_id = ?", (person_id,))
    return conn.execute("DELETE FROM people WHERE id = ?", (person_id,)).rowcount > 0


def set_person_enabled(conn: sqlite3.Connection, person_id: str, enabled: bool) -> bool:
    cur = conn.execute(
        "UPDATE people SET enabled = ?, updated_at = ? WHERE id = ?",
        (int(enabled), time.time(), person_id),
    )
    return cur.rowcount > 0


def add_credential(
    conn: sqlite3.Connection,
    kind: str,
    value: str,
    person_id: str,
    *,
    enabled: bool = True,
    valid_from: float | None = None,
    valid_until: float | None = None,
    label: str = "",
    data: bytes | None = None,
    now: float | None = None,
) -> None:
    if conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None:
        raise CredentialError(f"no person {person_id!r}; add the person first")
    conn.execute(
        "INSERT INTO credentials(kind, value, person_id, enabled, valid_from, valid_until, "
        "label, data, updated_at) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(kind, value) DO UPDATE SET person_id=excluded.person_id, "
        "enabled=excluded.enabled, valid_from=excluded.valid_from, "
        "valid_until=excluded.valid_until, label=excluded.label, data=excluded.data, "
        "updated_at=excluded.updated_at",
        (
            kind,
            value,
            person_id,
            int(enabled),
            valid_from,
            valid_until,
            label,
            data,
            now if now is not None else time.time(),
        ),
    )


def bulk_add_cards(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[str, str, str]],
    now: float | None = None,
    *,
    on_chunk: Callable[[int], None] | None = None,
    chunk_size: int = 5000,
) -> int:
    """Add (person_id, person_name, uid) rows in one transaction; returns the count added.

    Used for bulk enrolment and benchmarks: one executemany per table keeps a million cards
    to seconds rather than hours. ``on_chunk(n)`` is called after every ``chunk_size`` rows
    (progress bars); the whole import still commits or rolls back as one.
    """
    ts = now if now is not None else time.time()
    rows = list(rows)
    with transaction(conn):
        for start in range(0, len(rows), chunk_size):
            part = rows[start : start + chunk_size]
            conn.executemany(
                "INSERT OR IGNORE INTO people(id, name, enabled, attrs, updated_at) "
                "VALUES (?, ?, 1, '{}', ?)",
                ((pid, name, ts) for pid, name, _ in part),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO credentials(kind, value, person_id, enabled, updated_at) "
                "VALUES ('card', ?, ?, 1, ?)",
                ((uid, pid, ts) for pid, _, uid in part),
            )
            if on_chunk is not None:
                on_chunk(len(part))
    return len(rows)


def remove_credential(conn: sqlite3.Connection, kind: str, value: str) -> bool:
    cur = conn.execute("DELETE FROM credentials WHERE kind = ? AND value = ?", (kind, value))
    return cur.rowcount > 0


def set_credential_enabled(conn: sqlite3.Connection, kind: str, value: str, enabled: bool) -> bool:
    cur = conn.execute(
        "UPDATE credentials SET enabled = ?, updated_at = ? WHERE kind = ? AND value = ?",
        (int(enabled), time.time(), kind, value),
    )
    return cur.rowcount > 0


_LOOKUP = (
    "SELECT c.kind, c.value, c.person_id, c.enabled, c.valid_from, c.valid_until, "
    "p.enabled, p.valid_from, p.valid_until, p.name, p.attrs "
    "FROM credentials c JOIN people p ON p.id = c.person_id "
    "WHERE c.kind = ? AND c.value = ?"
)

# A fingerprint reader reports the sensor slot that matched; the door's finger_slots table maps
# it to the site-wide credential value (one indexed query: slot is UNIQUE, value the key).
_LOOKUP_FINGER = (
    "SELECT c.kind, c.value, c.person_id, c.enabled, c.valid_from, c.valid_until, "
    "p.enabled, p.valid_from, p.valid_until, p.name, p.attrs "
    "FROM finger_slots s JOIN credentials c ON c.kind = 'finger' AND c.value = s.value "
    "JOIN people p ON p.id = c.person_id WHERE s.slot = ?"
)


def lookup(conn: sqlite3.Connection, kind: str, value: str) -> CredentialRecord | None:
    queries: list[tuple[str, tuple[object, ...]]]
    if kind == "finger":
        if not (value.isascii() and value.isdigit() and len(value) <= 5):
            return None  # not a slot number: nothing on this door can match it
        queries = [(_LOOKUP_FINGER, (int(value),))]
    else:
        keys = card_lookup_keys(value) if kind == "card" else (value,)
        queries = [(_LOOKUP, (kind, key)) for key in keys]
    for sql, params in queries:
        row = conn.execute(sql, params).fetchone()
        if row is not None:
            return CredentialRecord(
                kind=row[0],
                value=row[1],
                person_id=row[2],
                enabled=bool(row[3]),
                valid_from=row[4],
                valid_until=row[5],
                person_enabled=bool(row[6]),
                person_valid_from=row[7],
                person_valid_until=row[8],
                person_name=row[9],
                attrs=json.loads(row[10]) if row[10] != "{}" else {},
            )
    return None


def list_people(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        "SELECT p.id, p.name, p.enabled, p.valid_from, p.valid_until, "
        "(SELECT COUNT(*) FROM credentials c WHERE c.person_id = p.id) "
        "FROM people p ORDER BY p.id"
    ).fetchall()
    keys = ("id", "name", "enabled", "valid_from", "valid_until", "credentials")
    return [dict(zip(keys, r, strict=True)) for r in rows]


class CredentialRow(TypedDict):
    kind: str
    value: str
    person_id: str
    enabled: int
    valid_from: float | None
    valid_until: float | None
    label: str | None


def list_credentials(conn: sqlite3.Connection, person_id: str | None = None) -> list[CredentialRow]:
    sql = "SELECT kind, value, person_id, enabled, valid_from, valid_until, label FROM credentials"
    args: tuple[str, ...] = ()
    if person_id is not None:
        sql += " WHERE person_id = ?"
        args = (person_id,)
    rows = conn.execute(sql + " ORDER BY person_id, kind, value", args).fetchall()
    return [
        CredentialRow(
            kind=r[0],
            value=r[1],
            person_id=r[2],
            enabled=r[3],
            valid_from=r[4],
            valid_until=r[5],
            label=r[6],
        )
        for r in rows
    ]


def count_credentials(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
