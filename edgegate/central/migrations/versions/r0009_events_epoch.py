"""Archive v9: the doors' journal epochs (docs/mqtt.md, receipts).

A door's ``seq`` starts at 1 again when its store is replaced, and a store restored from a
backup re-uses seqs; the office's receipts therefore name runs per (door, epoch). ``epoch``
is ``''`` for every event archived before (doors from before epochs send none, and an
upgraded door keeps ``''`` for its journal), so their runs go on as they were.
``events_door_seq`` becomes ``(site, door, epoch, seq)``: the receipts' probes walk it.
On PostgreSQL the column is added with its default in the catalogue (no rewrite of the
partitions); the index is rebuilt on every partition, once, at the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("epoch", sa.Text, nullable=False, server_default=""))
    op.drop_index("events_door_seq", "events")
    op.create_index("events_door_seq", "events", ["site", "door", "epoch", "seq"])


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
