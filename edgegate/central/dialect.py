"""The few statements whose SQLAlchemy construct depends on the engine: upserts.

``INSERT ... ON CONFLICT`` is spelled the same on SQLite and PostgreSQL but SQLAlchemy keeps
it in each dialect's ``insert``; this picks the one of the connection, so callers write one
statement for both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An insert with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for ``conn``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def inserted_id(res: CursorResult[Any]) -> int:
    """The integer key a single-row INSERT made (``lastrowid`` on SQLite, ``RETURNING`` on
    PostgreSQL: SQLAlchemy picks); an insert that made none is a bug, said as one."""
    key = res.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert made no primary key")
    return int(key[0])
