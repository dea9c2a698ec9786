"""The office's services: one implementation of every operation, called by the console, the
REST API and the ``edgegate central`` CLI alike (never a copy per front end).

``Office`` is the composition root's bundle: the config, the SQLAlchemy engine of the office
store (``office.engine``; the master and the archive are read and changed only through
``central/store.py`` and ``central/archive.py``, on ``office.master()``, the same store with the
store key that seals biometrics), a ``publish`` hook and, where the face stack is installed,
the face encoder. The CLI's hook opens
a broker connection per change; ``central serve`` hands its own, already connected client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from edgegate.central import archive, migrate, store
from edgegate.central.config import CentralConfig
from edgegate.central.engine import make_engine
from edgegate.central.writer_handoff import Writes

ROLES = ("admin", "security", "reception", "viewer")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something: an operator (console), an API token's name, or the CLI's user."""

    name: str
    via: str  # console, api, cli, system
    role: str = "admin"


# Publishes every unpublished credential version; returns False when the broker is away
# (the versions stay in the master and go out later: docs/central.md, the catch-up rule).
PublishVersions = Callable[[Engine], bool]
# Sends one signed command on a topic; raises when the broker did not take it.
SendCommand = Callable[[str, dict], None]
# A face credential's data (the versioned face format) from enrolment photos given as
# (name, content); raises ValueError naming the photo when it is not an image or holds no
# face or several; raises RuntimeError carrying a ``reason`` when the encoder cannot take the
# work now (busy, its process died). The composition root hands the face stack's function
# (``edgegate.face.encode.face_data_from_photos``, the one ``edgegate enroll face`` uses; in
# ``central serve`` through its worker process, ``edgegate.face.encode_process``): the office
# imports none of the door's packages itself.
EncodeFace = Callable[[list[tuple[str, bytes]]], bytes]


@dataclass
class Office:
    config: CentralConfig
    engine: Engine
    publish_versions: PublishVersions | None = None
    send_command: SendCommand | None = None
    encode_face: EncodeFace | None = None
    # Told after a commit that changed what live views show (archive.LiveChanged): inside
    # ``central serve`` its own live feed re-reads it (SQLite has no NOTIFY).
    changed: archive.LiveChanged | None = None
    # Whose writes its engines carry (SQLite writers' turns, central/writer_handoff.py): an
    # operator's through the console, the API or the CLI go before background batches.
    writes: Writes = Writes.INTERACTIVE
    _master: Engine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def master(self) -> Engine:
        """The master store's engine (migrated, carrying the store key); one per office,
        shared by every thread (an engine is thread-safe, each caller takes a connection)."""
        with self._lock:
            if self._master is None:
                c = self.config.central
                self._master = store.open_master(
                    c.db, key_file=c.store_key_file, writes=self.writes
                )
            return self._master

    def close(self) -> None:
        """Close both engines' connections (on SQLite the last one checkpoints the WAL)."""
        with self._lock:
            if self._master is not None:
                self._master.dispose()
                self._master = None
        self.engine.dispose()


def open_office(
    config: CentralConfig, *, writes: Writes = Writes.INTERACTIVE, **hooks: object
) -> Office:
    engine = make_engine(config.central.db, writes=writes)
    office = Office(config, engine, writes=writes, **hooks)  # type: ignore[arg-type]
    office.master()  # migrates the store: every table exists from here on
    ensure_schema(engine)
    return office


def ensure_schema(engine: Engine) -> None:
    """Bring the store to the current schema: the migrations, then the tables on ``metadata``
    that are missing (``migrate.upgrade``, the one path that creates tables).

    Never a bare ``metadata.create_all``: on a fresh SQLite file it would create the master's
    own tables without stamping Alembic's revision, and ``store.open_master`` would then
    refuse the file as "not an edgegate office store" (``central serve`` never got ready).

    Two office processes starting at once (``serve`` and a CLI command) may both find a
    table missing and both create it; the loser's "already exists" is harmless: check again.
    """
    for attempt in range(5):
        try:
            migrate.upgrade(engine)
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
