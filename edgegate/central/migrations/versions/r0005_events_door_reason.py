"""Archive v5: a partial index ``events_door_reason (door, reason, n) WHERE reason IS NOT
NULL`` for the console's search by door and reason together.

With only ``events_reason`` (revision 0003), one door and one reason read the reason's index
newest-first and dropped the other doors' rows until a page was full: a combination that is
rare at that door read most of the reason's entries (3.2 s p50 at 10,000,000 rows,
docs/benchmarks.md). Partial like ``events_reason``: only events that carry a reason pay for it
at ingest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WHERE = "reason IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "events_door_reason",
        "events",
        ["door", "reason", "n"],
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
