"""People's PINs in the store: credentials of kind ``pin`` (and ``pin_duress``) whose value is
the person id and whose data is the PBKDF2 hash (edgegate/core/pin.py). One of each per
person; nothing outside this module ever looks a PIN up by value."""

from __future__ import annotations

import sqlite3

from edgegate.store.credentials import add_credential

PIN_KIND = "pin"
DURESS_KIND = "pin_duress"


def set_pin(
    conn: sqlite3.Connection, person_id: str, encoded: str, *, duress: bool = False
) -> None:
    kind = DURESS_KIND if duress else PIN_KIND
    add_credential(conn, kind, person_id, person_id, data=encoded.encode(), label="keypad PIN")


def pin_hashes(conn: sqlite3.Connection, person_id: str) -> tuple[str | None, str | None]:
    """(PIN hash, duress PIN hash) of an enabled person's enabled PINs."""
    rows = conn.execute(
        "SELECT kind, data FROM credentials WHERE kind IN (?, ?) AND value = ? AND enabled = 1",
        (PIN_KIND, DURESS_KIND, person_id),
    ).fetchall()
    found = {kind: bytes(data).decode() for kind, data in rows if data}
    return found.get(PIN_KIND), found.get(DURESS_KIND)
