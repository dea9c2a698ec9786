"""Alembic's entry point for the office store; run only through ``edgegate.central.migrate``.

The caller hands over an open connection inside its transaction (``config.attributes``), so
the migrations, the check of the old SQLite ``user_version`` and the creation of tables that
have no revision of their own all commit together or not at all.
"""

from __future__ import annotations

from alembic import context

from edgegate.central.schema import metadata


def run() -> None:
    context.configure(
        connection=context.config.attributes["connection"],
        target_metadata=metadata,
        # SQLite alters a table by copying it; batch mode does that for the revisions.
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic runs this file as a script; anything else importing it (a test walking every
# module) finds no migration context and runs nothing.
if getattr(context, "config", None) is not None:
    run()
