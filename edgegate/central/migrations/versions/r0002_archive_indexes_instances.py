"""Archive v2: the event's own time (``at``), person and credential columns and their
indexes, PostgreSQL's monthly partitions, when each command was recorded, and the
``instances`` of ``central serve``.

On SQLite the new columns are added and filled from each archived event (``at`` stays
nullable at the column level there: SQLite cannot add a NOT NULL column without rebuilding
the table, and every insert writes it). On PostgreSQL the archive becomes a table partitioned
by month on ``at`` (edgegate/central/partitions.py keeps the months ahead created) and the
rows of an older archive are copied over.
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from alembic import op

from edgegate.central import partitions
from edgegate.central.archive import event_at, event_refs

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "events_door": ["door", "n"],
    "events_type": ["type", "n"],
    "events_person": ["person", "n"],
    "events_credential": ["credential", "n"],
    "events_at": ["at"],
    "events_door_seq": ["site", "door", "seq"],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _postgres(bind)
    else:
        _sqlite(bind)
    with op.batch_alter_table("commands", recreate="never") as batch:
        batch.add_column(sa.Column("issued", sa.Double))
    op.create_table(
        "instances",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started", sa.Double, nullable=False),
        sa.Column("heartbeat", sa.Double, nullable=False),
        sa.Column("broker", sa.Text, nullable=False, server_default="connecting"),
        sa.Column("broker_since", sa.Double),
        sa.Column("broker_error", sa.Text, nullable=False, server_default=""),
        sa.Column("leader", sa.Boolean, nullable=False, server_default="0"),
    )


def _sqlite(bind: sa.Connection) -> None:
    with op.batch_alter_table("events", recreate="never") as batch:
        batch.add_column(sa.Column("at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("person", sa.Text))
        batch.add_column(sa.Column("credential", sa.Text))
    op.drop_index("events_ts", "events")
    # An office that ran the receipts' own index creation before this revision has it.
    op.execute("DROP INDEX IF EXISTS events_door_seq")
    ev = sa.table(
        "events",
        sa.column("n", sa.Integer),
        sa.column("payload", sa.Text),
        sa.column("ts", sa.Text),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("person", sa.Text),
        sa.column("credential", sa.Text),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(ev.c.n, ev.c.ts, ev.c.payload)
            .where(ev.c.n > last)
            .order_by(ev.c.n)
            .limit(5000)
        ).all()
        if not rows:
            break
        updates = []
        for n, ts, payload in rows:
            person, credential = event_refs(_object(payload))
            updates.append({"k": n, "at": event_at(ts), "person": person, "credential": credential})
        bind.execute(
            sa.update(ev).where(ev.c.n == sa.bindparam("k")),
            updates,
        )
        last = rows[-1][0]
    for name, cols in INDEXES.items():
        if name not in ("events_door", "events_type"):
            op.create_index(name, "events", cols)


def _object(payload: str) -> dict:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _postgres(bind: sa.Connection) -> None:
    # An office on PostgreSQL starts at this revision (0001 is the SQLite era's schema), so
    # the unpartitioned archive is empty in practice; its rows are carried over anyway.
    old = sa.table(
        "events",
        *(sa.column(c) for c in ("id", "site", "door", "seq", "ts", "type", "payload", "received")),
    )
    rows = [dict(r) for r in bind.execute(sa.select(old).order_by(sa.text("n"))).mappings()]
    op.drop_table("events")
    op.create_table(
        "events",
        sa.Column("n", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("door", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("person", sa.Text),
        sa.Column("credential", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("n", "at", name="pk_events"),
        sa.UniqueConstraint("id", "at", name="uq_events_id_at"),
        postgresql_partition_by="RANGE (at)",
    )
    for name, cols in INDEXES.items():
        op.create_index(name, "events", cols)
    partitions.ensure(bind, time.time())
    if rows:
        copied = (*rows[0].keys(), "at", "person", "credential")
        new = sa.table("events", *(sa.column(c) for c in copied))
        for row in rows:
            row["at"] = event_at(row["ts"])
            row["person"], row["credential"] = event_refs(_object(row["payload"]))
        bind.execute(sa.insert(new), rows)


def downgrade() -> None:
    raise NotImplementedError("the office store does not go back to an older schema")
