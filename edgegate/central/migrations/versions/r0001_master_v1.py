"""The master store as it was on raw sqlite3 (``user_version`` 1).

An existing SQLite ``central.db`` at ``user_version`` 1 is stamped at this revision, not
re-created (edgegate/central/migrate.py). Written out column by column, not taken from the
live metadata: a revision must keep meaning what it meant when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("valid_from", sa.Double),
        sa.Column("valid_until", sa.Double),
        sa.Column("attrs", sa.Text, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column(
            "person_id",
            sa.Text,
            sa.ForeignKey("people.id", ondelete="CASCADE", name="fk_credentials_person_id_people"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("valid_from", sa.Double),
        sa.Column("valid_until", sa.Double),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.LargeBinary),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("credentials_person", "credentials", ["person_id"])
    op.create_table(
        "versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("base", sa.Integer, nullable=False),
        sa.Column("issued", sa.Text, nullable=False),
        sa.Column("n_ops", sa.Integer, nullable=False),
        sa.Column("ops", sa.Text, nullable=False),
        sa.Column("published", sa.Double),
    )
    op.create_table(
        "commands",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("door", sa.Text, nullable=False),
        sa.Column("cmd", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("published", sa.Double),
    )
    op.create_table(
        "events",
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("door", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("events_door", "events", ["door", "n"])
    op.create_index("events_type", "events", ["type", "n"])
    op.create_index("events_ts", "events", ["ts"])
    op.create_table(
        "doors",
        sa.Column("site", sa.Text, primary_key=True),
        sa.Column("door", sa.Text, primary_key=True),
        sa.Column("availability", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("changed", sa.Double),
        sa.Column("last_seen", sa.Double),
        sa.Column("state", sa.Text),
        sa.Column("telemetry", sa.Text),
        sa.Column("credential_version", sa.Integer),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("counters", "doors", "events", "commands", "versions", "credentials", "people"):
        op.drop_table(table)
