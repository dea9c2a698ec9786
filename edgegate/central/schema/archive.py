"""The event archive, the doors the office has heard from, counters and office instances.

``events`` is the logical table every query uses. On PostgreSQL the migrations create it
partitioned by month on ``at`` (the event's own time, parsed from ``ts``); a partitioned
table's unique keys must hold the partition key, so there the keys are ``(n, at)`` and
``(id, at)``. ``at`` is a pure function of the event, so a re-sent copy has the same ``at`` and
the ``id`` still deduplicates (``edgegate/central/archive.py``). Indexes follow the console's
and the CLI's queries: door, type, person, credential, each with the arrival order, and time.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    Table,
    Text,
    text,
)

from edgegate.central.schema import metadata

# BigInteger on PostgreSQL, INTEGER (the rowid alias, AUTOINCREMENT) on SQLite.
EventN = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("n", EventN, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("site", Text, nullable=False),
    Column("door", Text, nullable=False),
    Column("seq", BigInteger),
    # The door's journal epoch (docs/mqtt.md, receipts); '' for doors from before epochs.
    Column("epoch", Text, nullable=False, server_default=""),
    Column("ts", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("person", Text),
    Column("credential", Text),
    # The reason of a denial (also in the payload): its own column and index, so the
    # console's search by reason does not scan the archive (office store migration 3).
    Column("reason", Text),
    Column("payload", Text, nullable=False),
    Column("received", Double, nullable=False),
    Index("events_door", "door", "n"),
    Index("events_type", "type", "n"),
    Index("events_person", "person", "n"),
    Index("events_credential", "credential", "n"),
    Index("events_at", "at"),
    # Partial: only the events that carry a reason (denials, ~10 %) pay for it at ingest.
    Index(
        "events_reason",
        "reason",
        "n",
        sqlite_where=text("reason IS NOT NULL"),
        postgresql_where=text("reason IS NOT NULL"),
    ),
    # One door and one reason (migration 5): the reason's index alone reads every other
    # door's entries of that reason until a page is full.
    Index(
        "events_door_reason",
        "door",
        "reason",
        "n",
        sqlite_where=text("reason IS NOT NULL"),
        postgresql_where=text("reason IS NOT NULL"),
    ),
    # A door's or a person's events of one type, newest first (migration 7): with the
    # door's or the person's index alone, a rare type read all their events for one page.
    Index("events_door_type", "door", "type", "n"),
    Index("events_person_type", "person", "type", "n"),
    # A door's events in a time range (migration 8): events_door alone walked the door's
    # events back from the newest until the range was read.
    Index("events_door_at", "door", "at"),
    # The receipts' run of stored seqs per door and journal epoch (central/receipts.py).
    Index("events_door_seq", "site", "door", "epoch", "seq"),
    sqlite_autoincrement=True,
)

doors = Table(
    "doors",
    metadata,
    Column("site", Text, primary_key=True),
    Column("door", Text, primary_key=True),
    Column("availability", Text, nullable=False, server_default="unknown"),
    Column("changed", Double),
    Column("last_seen", Double),
    Column("state", Text),
    Column("telemetry", Text),
    Column("credential_version", Integer),
)

counters = Table(
    "counters",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# One row per running ``central serve``: its broker link (item "say what is wrong") and
# whether it holds the singleton duties (edgegate/central/leader.py).
instances = Table(
    "instances",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", Double, nullable=False),
    Column("heartbeat", Double, nullable=False),
    Column("broker", Text, nullable=False, server_default="connecting"),
    Column("broker_since", Double),
    Column("broker_error", Text, nullable=False, server_default=""),
    Column("leader", Boolean, nullable=False, server_default="0"),
)
