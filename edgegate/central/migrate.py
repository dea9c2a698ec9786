"""Bring the office store to the current schema: Alembic revisions, run in-process.

Alembic (SQLAlchemy's own migration tool) rather than the door's ``user_version`` list: one
set of revisions serves SQLite and PostgreSQL, and revisions of several features can live
side by side (``upgrade heads``). Every ``central`` command and ``central serve`` calls
``upgrade`` on start, so an operator never runs a migration by hand.

* An SQLite ``central.db`` of the raw-sqlite3 era (``user_version`` 1, no ``alembic_version``)
  is stamped at revision 0001 and upgraded in place.
* On PostgreSQL every instance may start at once: a transaction-scoped advisory lock makes
  the others wait for the first one's migration and then find nothing to do.
* A table declared on ``schema.metadata`` without a revision of its own (a feature's new
  table) is created as declared, in the same transaction. A *change* to an existing table
  needs a revision in ``migrations/versions``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from edgegate.errors import EdgegateError

SCRIPTS = Path(__file__).resolve().parent / "migrations"
LEGACY_USER_VERSION = 1  # the raw-sqlite3 master store's last migration
MIGRATION_LOCK = 0x6564_6765_6D69  # "edgemi": pg_advisory_xact_lock key for migrations
# Alembic's ``context`` (used by migrations/env.py) is one module-global proxy: two threads
# of one process running ``command.upgrade`` at once overwrite each other's migration
# context ("This Connection is closed"). One migration per process at a time; across
# processes the database's own locks (and PostgreSQL's advisory lock) order them.
_PROCESS_LOCK = threading.Lock()


class StoreSchemaError(EdgegateError, RuntimeError):
    """A store this version cannot open (newer than the code, or of something else)."""


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine) -> None:
    """Migrate ``engine``'s store to the newest revisions (see the module docstring)."""
    with _PROCESS_LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        cfg = alembic_config(conn)
        have = current(conn)
        if not have and conn.dialect.name == "sqlite":
            _adopt_legacy_sqlite(conn, cfg)
            have = current(conn)
        unknown = have - _known(cfg)
        if unknown:
            raise StoreSchemaError(
                f"the office store is at revision {', '.join(sorted(unknown))}, which this "
                "edgegate does not know: it was written by a newer version"
            )
        if have != heads():
            command.upgrade(cfg, "heads")


def _known(cfg: Config) -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}


def _adopt_legacy_sqlite(conn: Connection, cfg: Config) -> None:
    user_version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    tables = set(inspect(conn).get_table_names())
    core = {"people", "versions", "events"}
    if user_version == 0 and not tables & core:
        # A new store, or one where a feature created only its own tables first: the
        # revisions create the rest.
        return
    if user_version != LEGACY_USER_VERSION or not core <= tables:
        raise StoreSchemaError(
            f"not an edgegate office store (user_version {user_version}, tables "
            f"{', '.join(sorted(tables)) or 'none'})"
        )
    command.stamp(cfg, "0001")
