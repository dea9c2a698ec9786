"""One SQLAlchemy engine for the office store, on SQLite (embedded default) or PostgreSQL.

``make_engine`` takes either a plain file path (SQLite, as ``[central] db`` always was) or a
SQLAlchemy URL (``postgresql+psycopg://...``). SQLite gets the same discipline as the door's
store: WAL so readers never wait for the archive's writer, foreign keys on, a busy timeout so
two office processes on one file wait instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from sqlite3 import Connection as SQLiteConnection


def store_url(where: str | Path) -> URL:
    """A SQLAlchemy URL for ``where``: a URL as given, or a SQLite file path."""
    text = str(where)
    if "://" in text:
        return make_url(text)
    return make_url(f"sqlite+pysqlite:///{Path(text).expanduser()}")


def _sqlite_pragmas(dbapi_conn: SQLiteConnection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(where: str | Path, **kwargs: object) -> Engine:
    """The office store's engine for a file path or URL (see the module docstring)."""
    url = store_url(where)
    engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
