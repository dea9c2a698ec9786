"""The store's identity marker: a store that existed and vanished, or shrank to nothing, is
an error, not a new door.

SQLite creates an empty database for a missing or zero-length file, so without a marker a
door whose store was truncated (a power cut on a failing SD card, a bad restore) comes back
as a brand-new door that denies everyone while doctor says "all good, 0 people". The store
holds a random id (``meta.store_id``); ``<store>.id`` beside it holds the same id. When the
marker is there and the store is missing or empty, opening it is refused with what to do.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import structlog

from edgegate.store.db import StoreError

log = structlog.get_logger(__name__)

ID_KEY = "store_id"


class StoreVanished(StoreError):
    """The marker says a store was here; the file is missing or empty."""

    def __init__(self, path: Path, marker: Path, what: str) -> None:
        self.path, self.marker = path, marker
        self.fix = (
            f"restore the store from a backup (docs/operations.md, Backup and restore); only if "
            f"this door is meant to start empty, delete {marker}"
        )
        super().__init__(f"{path}: the store {what} (its identity marker {marker} is there)")


def marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".id")


def check_before_open(path: Path) -> None:
    """Raise StoreVanished if a marked store is missing or zero-length."""
    marker = marker_path(path)
    if not marker.exists():
        return
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreVanished(path, marker, "is missing") from None
    if size == 0:
        raise StoreVanished(path, marker, "is empty (zero bytes)")


def came_from_elsewhere(conn: sqlite3.Connection, path: Path) -> str | None:
    """Before ``mark``: why this store is not the one last opened here (its marker is
    missing or names another store: it was copied from elsewhere), or None. A store without
    an id (new, or from before markers) has nothing to compare."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ID_KEY,)).fetchone()
    if row is None:
        return None
    try:
        current = marker_path(path).read_text().strip()
    except FileNotFoundError:
        return "store_without_its_marker"
    return None if current == row[0] else "marker_names_another_store"


def mark(conn: sqlite3.Connection, path: Path) -> str:
    """After opening: give the store an id if it has none, and write the marker beside it
    (atomically, via a temporary file) when it is missing or names another id."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ID_KEY,)).fetchone()
    store_id = row[0] if row else uuid.uuid4().hex
    if row is None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (ID_KEY, store_id))
    marker = marker_path(path)
    try:
        current = marker.read_text().strip()
    except FileNotFoundError:
        current = None
    if current != store_id:
        if current is not None:
            log.warning("store_marker_replaced", store=str(path), was=current, now=store_id)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(store_id + "\n")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(marker)
    return store_id
