"""The journal's epoch: which life of this door's journal an event's ``seq`` belongs to.

``seq`` alone names an event only within one store: a replaced store (a new SD card, a
factory reset, a store made afresh after a fault) starts at seq 1 again, and a store
restored from a backup re-uses seqs its original went on to give other events. The office
keeps its receipts per (door, epoch) (docs/mqtt.md, receipts), so a receipt for the door's
earlier store never covers the events of this one.

The epoch (``meta.epoch``, random) is made with the store. A store that journaled before
epochs existed keeps ``''`` (its migration, edgegate/store/db.py), which is what the office
files an older door's events under. A new epoch is taken when the store is opened as a copy:
one ``edgegate backup`` wrote (it marks the copy, ``BACKUP_KEY``), or one whose identity
marker says it was last opened elsewhere (edgegate/store/identity.py). Every event keeps
the epoch it was journaled in (``events.epoch``), so the events of the earlier epoch in a
restored journal are still settled by the receipts of their own epoch.
"""

from __future__ import annotations

import secrets
import sqlite3
import time

import structlog

from edgegate.store.db import transaction

log = structlog.get_logger(__name__)

KEY = "epoch"
BACKUP_KEY = "backup_copy"
# 16 hex digits: 64 random bits, a collision between two lives of one door is out of reach.
EPOCH_BYTES = 8


def current(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEY,)).fetchone()
    return row[0] if row else ""


def ensure(conn: sqlite3.Connection, *, moved: str | None = None) -> str:
    """After opening the door's store: its epoch, a new one when it has none yet, when it is
    a backup copy, or when it ``moved`` (the identity marker's reason)."""
    with transaction(conn):
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEY,)).fetchone()
        backup = conn.execute("SELECT value FROM meta WHERE key = ?", (BACKUP_KEY,)).fetchone()
        reason = "new_store" if row is None else "backup_copy" if backup else moved
        if reason is None:
            return str(row[0])
        epoch = secrets.token_hex(EPOCH_BYTES)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (KEY, epoch))
        conn.execute("DELETE FROM meta WHERE key = ?", (BACKUP_KEY,))
    if row is None:
        log.info("journal_epoch_created", epoch=epoch)
    else:
        # Its seqs may have been given to other events since: never under this epoch.
        log.warning("journal_epoch_new", reason=reason, was=row[0], epoch=epoch)
    return epoch


def mark_backup(conn: sqlite3.Connection) -> None:
    """In a backup copy (not the live store): the store opened from it takes a new epoch."""
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (BACKUP_KEY, str(time.time()))
    )
