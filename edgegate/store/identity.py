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
from dataclasses import dataclass
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


def check_before_open(path: Path) -> str | None:
    """Before opening: raise StoreVanished if a marked store is missing or zero-length; else
    the id its marker holds (None: no marker). The one read of the marker at start-up: what
    ``came_from_elsewhere`` and ``mark`` need of it is handed on in an ``Identity``."""
    marker = marker_path(path)
    try:
        current = marker.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreVanished(path, marker, "is missing") from None
    if size == 0:
        raise StoreVanished(path, marker, "is empty (zero bytes)")
    return current


@dataclass(frozen=True)
class Identity:
    """What start-up knows of the store's identity, read once: the id in the store
    (``meta.store_id``; None for a new store or one from before markers) and the id in its
    marker (None: no marker)."""

    store_id: str | None
    marker: str | None

    def came_from_elsewhere(self) -> str | None:
        """Why this store is not the one last opened here (its marker is missing or names
        another store: it was copied from elsewhere), or None. A store without an id has
        nothing to compare."""
        if self.store_id is None:
            return None
        if self.marker is None:
            return "store_without_its_marker"
        return None if self.marker == self.store_id else "marker_names_another_store"


def read(conn: sqlite3.Connection, marker: str | None) -> Identity:
    """After opening, before ``mark``: the store's id with the marker's (``check_before_open``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ID_KEY,)).fetchone()
    return Identity(None if row is None else str(row[0]), marker)


def mark(conn: sqlite3.Connection, path: Path, seen: Identity) -> str:
    """After opening: give the store an id if it has none, and write the marker beside it
    (atomically, via a temporary file) when it is missing or names another id. ``seen`` is
    what ``read`` found at start-up (nothing else writes either in between)."""
    store_id = seen.store_id or uuid.uuid4().hex
    if seen.store_id is None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (ID_KEY, store_id))
    if seen.marker != store_id:
        if seen.marker is not None:
            log.warning("store_marker_replaced", store=str(path), was=seen.marker, now=store_id)
        marker = marker_path(path)
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(store_id + "\n")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(marker)
    return store_id
