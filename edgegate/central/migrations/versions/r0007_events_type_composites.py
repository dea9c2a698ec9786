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

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("events_door_type", "events", ["door", "type", "n"])
    op.create_index("events_person_type", "events", ["person", "type", "n"])


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
