"""Helpers for the fingerprint door tests: a door config with a card reader and a sensor, and
finger credentials written into a store the way enrolment or a credential update leaves them."""

from __future__ import annotations

from pathlib import Path

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.sim.fingerprint import finger_template
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.finger_slots import new_finger_value, put_finger
from edgegate.store.sealed import load_key


def fp_config(tmp_path: Path, card_port: str, fp_port: str, door: str = "d", **fp) -> Config:
    return parse(
        {
            "door": {"site": "t", "id": door, "unlock_seconds": 0.3},
            "gpio": {"pin_factory": "mock", "deny_led_seconds": 0.1},
            "readers": [{"type": "rdm6300", "port": card_port, "name": "entry"}],
            "fingerprint": {"port": fp_port, "poll_interval": 0.05, "assist_after": 3, **fp},
            "storage": {"path": str(tmp_path / door / "door.db")},
        },
        tmp_path / f"{door}.toml",
    )


def put_person_finger(
    conn, db: Path, person: str, finger: str, model: str = "r307", value: str | None = None
) -> str:
    """On an open connection (inside the caller's transaction): person + finger credential
    with a site-wide value, model tag and the template sealed with this store's key."""
    value = value or new_finger_value(person)
    if conn.execute("SELECT 1 FROM people WHERE id = ?", (person,)).fetchone() is None:
        creds.upsert_person(conn, creds.Person(person))
    put_finger(conn, load_key(db), person, value, model, finger_template(finger))
    return value


def enrol_finger(db: Path, person: str, finger: str, model: str = "r307") -> str:
    """No slot on this door yet: library sync writes the template into the sensor."""
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        value = put_person_finger(conn, db, person, finger, model)
    conn.close()
    return value
