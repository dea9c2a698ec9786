"""Tables of alarms, the equipment register, maintenance and reader faults (docs/alarms.md).

Times are UNIX seconds (float) so both engines store and compare them alike. Alarms and
reader faults are derived from the event archive by ``edgegate/central/alarms.py`` (the
``alarm_ingest`` cursor says how far it has read); the rest is written by operators.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("type", String(32), nullable=False),  # door_forced, ..., door_offline
    Column("priority", String(16), nullable=False),  # critical, high, medium, low
    Column("state", String(16), nullable=False),  # new, acknowledged, cleared
    Column("raised", Float, nullable=False),  # the event's own time
    # The archive event that raised it (unique: a redelivered event raises nothing new);
    # null for alarms the office raises itself (a door gone offline).
    Column("event_id", String(64), unique=True),
    Column("reader", String(64)),
    Column("person", String(128)),
    Column("detail", JSON, nullable=False),  # the event's payload: what failed, for an assist
    Column("acknowledged", Float),
    Column("acknowledged_by", String(128)),
    Column("cleared", Float),
    Column("cleared_by", String(128)),
    Column("escalated", Float),
    Index("ix_alarms_state_raised", "state", "raised"),
    Index("ix_alarms_door_raised", "door", "raised"),
)

alarm_history = Table(
    "alarm_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("ts", Float, nullable=False),
    # raised, acknowledged, cleared, escalated, escalation_failed, released, recovered, note
    Column("action", String(32), nullable=False),
    Column("operator", String(128), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
)

# How far the alarm ingest has read the archive (its ``n``), so every event is looked at once.
alarm_ingest = Table(
    "alarm_ingest",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

equipment = Table(
    "equipment",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("door", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("location", String(200), nullable=False, default=""),
    Column("reader_models", JSON, nullable=False),  # ["rdm6300", "r503", ...]
    Column("lock_type", String(100), nullable=False, default=""),
    Column("installed_on", String(10)),  # ISO date
    Column("responsible", String(128), nullable=False, default=""),
    Column("updated", Float, nullable=False),
    Column("updated_by", String(128), nullable=False, default=""),
)

maintenance_log = Table(
    "maintenance_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # inspection, repair
    Column("ts", Float, nullable=False),
    Column("operator", String(128), nullable=False),
    Column("reader", String(64)),
    Column("findings", Text, nullable=False, default=""),
    Column("action", Text, nullable=False, default=""),
    Index("ix_maintenance_log_door_ts", "door", "ts"),
)

inspection_plan = Table(
    "inspection_plan",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("door", String(64), primary_key=True),
    Column("every_days", Float, nullable=False),
    Column("since", Float, nullable=False),  # when the plan started (due from then on)
)

reader_faults = Table(
    "reader_faults",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("door", String(64), nullable=False),
    Column("reader", String(64), nullable=False),
    Column("started", Float, nullable=False),
    Column("ended", Float),
    Column("error", Text, nullable=False, default=""),
    Index("ix_reader_faults_door_reader", "door", "reader", "started"),
)

TABLES = (
    alarms,
    alarm_history,
    alarm_ingest,
    equipment,
    maintenance_log,
    inspection_plan,
    reader_faults,
)
