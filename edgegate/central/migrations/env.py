"""Alembic's entry point for the office store; run only through ``edgegate.central.migrate``.

The caller hands over an open connection inside its transaction (``config.attributes``), so
the migrations, the check of the old SQLite ``user_version`` and the creation of tables that
have no revision of their own all commit together or not at all.
"""

from __future__ import annotations

from alembic import context

from edgegate.central.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters a table by copying it; batch mode does that for the revisions.
    render_as_batch=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
