"""People's PINs in the store: credentials of kind ``pin`` whose data is the PBKDF2 hash
(edgegate/core/pin.py). The value is the person id for the PIN and ``<person id>:duress`` for
the duress PIN (person ids cannot contain ':'), so both fit the one ``pin`` kind that the
credential sync contract knows. Nothing outside this module ever looks a PIN up by value."""

from __future__ import annotations

import sqlite3

from edgegate.store.credentials import add_credential

PIN_KIND = "pin"
DURESS_SUFFIX = ":duress"


def set_pin(
    conn: sqlite3.Connection, person_id: str, encoded: str, *, duress: bool = False
) -> None:
    value = person_id + DURESS_SUFFIX if duress else person_id
    label = "keypad duress PIN" if duress else "keypad PIN"
    add_credential(conn, PIN_KIND, value, person_id, data=encoded.encode(), label=label)


def pin_hashes(conn: sqlite3.Connection, person_id: str) -> tuple[str | None, str | None]:
    """(PIN hash, duress PIN hash) of the person's enabled PINs."""
    rows = conn.execute(
        "SELECT value, data FROM credentials WHERE kind = ? AND person_id = ? "
        "AND value IN (?, ?) AND enabled = 1",
        (PIN_KIND, person_id, person_id, person_id + DURESS_SUFFIX),
    ).fetchall()
    found = {value: bytes(data).decode() for value, data in rows if data}
    return found.get(person_id), found.get(person_id + DURESS_SUFFIX)
