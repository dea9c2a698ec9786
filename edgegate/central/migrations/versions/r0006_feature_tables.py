"""The tables a store used to get from ``metadata.create_all`` at every upgrade: the alarms'
and maintenance register, the console's operators, tokens, audit log, outbox and webhooks,
the doors' local-people offers (16 tables). Since this revision every table of the
office store comes from a revision, on SQLite and PostgreSQL alike, and ``migrate.upgrade``
no longer calls ``create_all``.

A store made before this revision has them already, made from the same declarations, so a
table that exists is left as it is. Written out column by column (rendered once from the
metadata of the time): a revision must keep meaning what it meant when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = [
    "alarm_ingest",
    "alarms",
    "api_tokens",
    "audit_log",
    "equipment",
    "inspection_plan",
    "local_offers",
    "maintenance_log",
    "operators",
    "outbox",
    "outbox_cursors",
    "reader_faults",
    "webhooks",
    "alarm_history",
    "console_sessions",
    "outbox_deliveries",
]


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "alarm_ingest" not in existing:
        op.create_table(
            "alarm_ingest",
            sa.Column("name", sa.String(length=32), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_alarm_ingest")),
        )
    if "alarms" not in existing:
        op.create_table(
            "alarms",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("type", sa.String(length=32), nullable=False),
            sa.Column("priority", sa.String(length=16), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("raised", sa.Float(), nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=True),
            sa.Column("reader", sa.String(length=64), nullable=True),
            sa.Column("person", sa.String(length=128), nullable=True),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.Column("acknowledged", sa.Float(), nullable=True),
            sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
            sa.Column("cleared", sa.Float(), nullable=True),
            sa.Column("cleared_by", sa.String(length=128), nullable=True),
            sa.Column("escalated", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
            sa.UniqueConstraint("event_id", name=op.f("uq_alarms_event_id")),
        )
        op.create_index("ix_alarms_door_raised", "alarms", ["door", "raised"], unique=False)
        op.create_index("ix_alarms_state_raised", "alarms", ["state", "raised"], unique=False)
    if "api_tokens" not in existing:
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("prefix", sa.String(length=16), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.Column("revoked", sa.Float(), nullable=True),
            sa.Column("last_used", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
            sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
            sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        )
    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("actor", sa.String(length=128), nullable=False),
            sa.Column("via", sa.String(length=16), nullable=False),
            sa.Column("action", sa.String(length=64), nullable=False),
            sa.Column("target", sa.String(length=256), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("prev_hash", sa.String(length=64), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
            sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
        )
    if "equipment" not in existing:
        op.create_table(
            "equipment",
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("location", sa.String(length=200), nullable=False),
            sa.Column("reader_models", sa.JSON(), nullable=False),
            sa.Column("lock_type", sa.String(length=100), nullable=False),
            sa.Column("installed_on", sa.String(length=10), nullable=True),
            sa.Column("responsible", sa.String(length=128), nullable=False),
            sa.Column("updated", sa.Float(), nullable=False),
            sa.Column("updated_by", sa.String(length=128), nullable=False),
            sa.PrimaryKeyConstraint("site", "door", name=op.f("pk_equipment")),
        )
    if "inspection_plan" not in existing:
        op.create_table(
            "inspection_plan",
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("every_days", sa.Float(), nullable=False),
            sa.Column("since", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("site", "door", name=op.f("pk_inspection_plan")),
        )
    if "local_offers" not in existing:
        op.create_table(
            "local_offers",
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("received", sa.Float(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("people", sa.Text(), nullable=False),
            sa.Column("credentials", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("decided", sa.Float(), nullable=True),
            sa.Column("decided_by", sa.String(length=200), server_default="", nullable=False),
            sa.PrimaryKeyConstraint("site", "door", name=op.f("pk_local_offers")),
        )
    if "maintenance_log" not in existing:
        op.create_table(
            "maintenance_log",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("operator", sa.String(length=128), nullable=False),
            sa.Column("reader", sa.String(length=64), nullable=True),
            sa.Column("findings", sa.Text(), nullable=False),
            sa.Column("action", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_log")),
        )
        op.create_index(
            "ix_maintenance_log_door_ts", "maintenance_log", ["door", "ts"], unique=False
        )
    if "operators" not in existing:
        op.create_table(
            "operators",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("password_hash", sa.String(length=256), nullable=False),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("failed", sa.Integer(), nullable=False),
            sa.Column("locked_until", sa.Float(), nullable=True),
            sa.Column("last_signin", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_operators")),
        )
    if "outbox" not in existing:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("target", sa.String(length=256), nullable=False),
            sa.Column("kind", sa.String(length=64), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt", sa.Float(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("done", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        )
        op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt"], unique=False)
    if "outbox_cursors" not in existing:
        op.create_table(
            "outbox_cursors",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_outbox_cursors")),
        )
    if "reader_faults" not in existing:
        op.create_table(
            "reader_faults",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("site", sa.String(length=64), nullable=False),
            sa.Column("door", sa.String(length=64), nullable=False),
            sa.Column("reader", sa.String(length=64), nullable=False),
            sa.Column("started", sa.Float(), nullable=False),
            sa.Column("ended", sa.Float(), nullable=True),
            sa.Column("error", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_reader_faults")),
        )
        op.create_index(
            "ix_reader_faults_door_reader",
            "reader_faults",
            ["door", "reader", "started"],
            unique=False,
        )
    if "webhooks" not in existing:
        op.create_table(
            "webhooks",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("url", sa.String(length=2048), nullable=False),
            sa.Column("event_types", sa.JSON(), nullable=False),
            sa.Column("secret", sa.String(length=128), nullable=False),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        )
    if "alarm_history" not in existing:
        op.create_table(
            "alarm_history",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("alarm_id", sa.Integer(), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("action", sa.String(length=32), nullable=False),
            sa.Column("operator", sa.String(length=128), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ["alarm_id"],
                ["alarms.id"],
                name=op.f("fk_alarm_history_alarm_id_alarms"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_history")),
        )
        op.create_index(
            op.f("ix_alarm_history_alarm_id"), "alarm_history", ["alarm_id"], unique=False
        )
    if "console_sessions" not in existing:
        op.create_table(
            "console_sessions",
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("operator", sa.String(length=64), nullable=False),
            sa.Column("csrf", sa.String(length=64), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("expires", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["operator"],
                ["operators.name"],
                name=op.f("fk_console_sessions_operator_operators"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
        )
        op.create_index(
            op.f("ix_console_sessions_operator"), "console_sessions", ["operator"], unique=False
        )
    if "outbox_deliveries" not in existing:
        op.create_table(
            "outbox_deliveries",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("outbox_id", sa.Integer(), nullable=False),
            sa.Column("attempt", sa.Integer(), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("ok", sa.Boolean(), nullable=False),
            sa.Column("status_code", sa.Integer(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("seconds", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["outbox_id"],
                ["outbox.id"],
                name=op.f("fk_outbox_deliveries_outbox_id_outbox"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
        )
        op.create_index(
            op.f("ix_outbox_deliveries_outbox_id"), "outbox_deliveries", ["outbox_id"], unique=False
        )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
