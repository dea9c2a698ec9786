"""The office store's schema as SQLAlchemy Core tables, one module per feature.

Every table of the office lives on the one ``metadata`` below so that both engines (SQLite,
the embedded default, and PostgreSQL) get the same schema and the same migrations. A feature
declares its tables in its own module here (``console.py``, ``visitors.py``, ...) and that
module is imported at the bottom of this file, so importing ``edgegate.central.schema``
always yields the complete schema.
"""

from __future__ import annotations

from sqlalchemy import MetaData

# Deterministic constraint names: migrations on PostgreSQL need to name what they drop.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# Feature modules register their tables on ``metadata`` when imported (keep this list sorted),
# one line per module so parallel additions merge cleanly. Every table and every change to
# one comes with a revision in edgegate/central/migrations (tests/central/test_migrations*
# compare what the revisions build with this metadata, on SQLite and PostgreSQL).
from edgegate.central.schema import (  # noqa: E402
    alarms,  # noqa: F401
    archive,  # noqa: F401
    console,  # noqa: F401
    local_people,  # noqa: F401
    master,  # noqa: F401
    visitors,  # noqa: F401
)
