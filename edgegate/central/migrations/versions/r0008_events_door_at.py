"""Archive v8: ``events_door_at (door, at)`` for the console's search by a door and a time
range together ("the front door last night").

Without it, the planner walks ``events_door`` newest first and reads each row's time until the
range's page is full: an hour 30 days back read a third of the door's events (1.7 s p50, 5.6 s
p99 at 10,000,000 rows on SQLite, docs/benchmarks.md). With it the page's ``n`` come from the
door's entries in the range (on SQLite the index carries the rowid ``n``: the search's deferred
join reads only the page's rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("events_door_at", "events", ["door", "at"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sa.inspect(bind).has_table("sqlite_stat1"):
        op.execute("ANALYZE events_door_at")  # why: revision 0007


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
