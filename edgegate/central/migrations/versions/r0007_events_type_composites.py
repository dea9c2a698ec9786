"""Archive v7: ``events_door_type (door, type, n)`` and ``events_person_type (person, type,
n)`` for the console's search by door or person and type together.

With only ``events_door`` and ``events_person`` (revision 0002), one person's denials read
every event of that person and dropped the others until a page was full (398 ms p99 at
10,000,000 rows on SQLite), and a door's rare type (a forced door) could read most of the
door's events. With the type in the index the page is the index's first 100 entries. Not
partial: a person's or a door's rare types are what the console looks for (duress, a forced
door, a staff release), not only denials. Their ingest cost is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


NEW = ("events_door_type", "events_person_type")


def upgrade() -> None:
    op.create_index("events_door_type", "events", ["door", "type", "n"])
    op.create_index("events_person_type", "events", ["person", "type", "n"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sa.inspect(bind).has_table("sqlite_stat1"):
        # A store someone ran ANALYZE on: SQLite takes an index without statistics for ~10
        # rows a key, so a door's newest page went through events_door_type and sorted the
        # door's 500,000 entries (1.3 s at 10,000,000 rows) instead of reading events_door in
        # order. Statistics for the new indexes too. (Without any, both are costed alike and
        # the index already in order wins.) PostgreSQL keeps statistics per column.
        for name in NEW:
            op.execute(f"ANALYZE {name}")


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
