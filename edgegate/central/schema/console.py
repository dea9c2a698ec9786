"""Tables of the office console: operators, sessions, audit log, API tokens, webhooks and the
durable outbox of outgoing notifications with its delivery log.

Times are UNIX seconds (float) so both engines store and compare them alike.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from edgegate.central.schema import metadata

operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created", Float, nullable=False),
    # Sign-in throttling: consecutive failures and the lock they put on the account.
    Column("failed", Integer, nullable=False, default=0),
    Column("locked_until", Float),
    Column("last_signin", Float),
)

sessions = Table(
    "console_sessions",
    metadata,
    # SHA-256 of the cookie's token: a copy of the table does not sign anyone in.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "operator",
        String(64),
        ForeignKey("operators.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("via", String(16), nullable=False),  # console, api, cli, system
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),
    # Unique: two writers that read the same head cannot both append after it (the loser
    # retries on the new head), so the chain never forks.
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("revoked", Float),
    Column("last_used", Float),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON, nullable=False),  # ["*"] or a list of event types
    Column("secret", String(128), nullable=False),  # needed to sign; never shown again
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created", Float, nullable=False),
    Column("created_by", String(64), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),  # webhook (email, ... added by others)
    Column("target", String(256), nullable=False),  # webhook id, address, ...
    Column("kind", String(64), nullable=False),  # event type or notification kind
    Column("body", Text, nullable=False),  # exactly the bytes that are sent (UTF-8)
    Column("created", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending/sent/failed
    Column("last_error", Text),
    Column("done", Float),
    Index("ix_outbox_due", "status", "next_attempt"),
)

deliveries = Table(
    "outbox_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "outbox_id",
        Integer,
        ForeignKey("outbox.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("attempt", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("seconds", Float, nullable=False),
)

# Where the webhook fan-out stands in the event archive (the last archived event ``n`` it
# turned into outbox rows): a restart resumes there, so no event is skipped or sent twice.
cursors = Table(
    "outbox_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
)
