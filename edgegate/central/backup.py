"""``edgegate central backup --to FILE``: a consistent copy of an SQLite office store.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the store page by page while
``central serve`` keeps writing: the copy is the store as of one moment, WAL included. The
file is created 0600 (it holds people's names and their sealed biometrics; the store key is
not in it and must be backed up on its own). A PostgreSQL store is backed up with
PostgreSQL's own tools (docs/central.md: pg_dump, or a base backup with WAL archiving).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from edgegate.central.engine import sqlite_path
from edgegate.errors import EdgegateError


class BackupError(EdgegateError, RuntimeError):
    """The store cannot be backed up this way (PostgreSQL), or the target is unusable."""


def backup_sqlite(engine: Engine, db: str, target: Path) -> int:
    """Copy the SQLite store behind ``engine`` to ``target``; returns the pages copied."""
    if sqlite_path(db) is None:
        raise BackupError(
            "a PostgreSQL office store is backed up with pg_dump or a base backup "
            "(docs/central.md, backups)"
        )
    if target.exists():
        raise BackupError(f"{target} exists; give a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    pages = 0

    def progress(_status: int, _remaining: int, total: int) -> None:
        nonlocal pages
        pages = total

    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        dest = sqlite3.connect(target)
        try:
            source.backup(dest, pages=1024, progress=progress)
        finally:
            dest.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        raw.close()
    return pages
