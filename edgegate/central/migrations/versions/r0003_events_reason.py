"""Archive v3: the reason of a denial gets a column of its own and a partial index
``events_reason (reason, n) WHERE reason IS NOT NULL``, so the console's search by reason
reads a page from the index instead of scanning the archive's JSON newest-first until a page is
full (103 ms p99 at 2,000,000 rows; figures in docs/benchmarks.md).

Partial, because only the events that carry a reason (denials, ~10 % of an archive) pay for it
at ingest. The column is filled from the archived payloads in the same migration (the text
``reason`` of the JSON, as ``archive.event_reason`` fills it for new events); on a big archive
that is one pass over the table, once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from edgegate.central.archive import REF_MAX

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WHERE = "reason IS NOT NULL"


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("events", recreate="never") as batch:
        batch.add_column(sa.Column("reason", sa.Text))
    if bind.dialect.name == "postgresql":
        # The same rule as archive.event_reason: a non-empty string without NUL, at most
        # REF_MAX characters (PostgreSQL text never holds a NUL anyway).
        op.execute(
            "UPDATE events SET reason = payload::jsonb ->> 'reason' "
            "WHERE jsonb_typeof(payload::jsonb -> 'reason') = 'string' "
            f"AND length(payload::jsonb ->> 'reason') BETWEEN 1 AND {REF_MAX}"
        )
        op.create_index("events_reason", "events", ["reason", "n"], postgresql_where=sa.text(WHERE))
    else:
        op.execute(
            "UPDATE events SET reason = json_extract(payload, '$.reason') "
            "WHERE json_valid(payload) AND json_type(payload, '$.reason') = 'text' "
            f"AND length(json_extract(payload, '$.reason')) BETWEEN 1 AND {REF_MAX} "
            "AND instr(json_extract(payload, '$.reason'), char(0)) = 0"
        )
        op.create_index("events_reason", "events", ["reason", "n"], sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
