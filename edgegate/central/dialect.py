"""The few statements whose SQLAlchemy construct depends on the engine: upserts.

``INSERT ... ON CONFLICT`` is spelled the same on SQLite and PostgreSQL but SQLAlchemy keeps
it in each dialect's ``insert``; this picks the one of the connection, so callers write one
statement for both.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An insert with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for ``conn``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"
