"""PostgreSQL: the event archive's monthly partitions, created ahead and dropped by retention.

``events`` is partitioned by range on ``at`` (migration 0002). A month's partition is
``events_yYYYYmMM``; ``events_default`` takes what no month holds (an event with a wrong clock
far in the past or future, or ``ts`` that is not a time), so no insert ever fails for want of
a partition. ``ensure`` runs at migration, at every ``central serve`` start and daily; it
creates the current month and ``MONTHS_AHEAD`` more. Partition DDL has no SQLAlchemy
construct, hence the SQL text here (PostgreSQL only, names built from integers).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger(__name__)

MONTHS_AHEAD = 2
_NAME = "events_y{:04d}m{:02d}"


def _month(year: int, month: int, shift: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + shift
    return index // 12, index % 12 + 1


def _bound(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}-01 00:00:00+00"


def existing(conn: Connection) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' "
            "ORDER BY c.relname"
        )
    )
    return [r[0] for r in rows]


def ensure(conn: Connection, now: float, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the default partition and the months from now to ``months_ahead``; returns
    the partitions created. A month whose rows already sit in the default partition (a door
    with a clock ahead) cannot be created; that is logged and the default keeps them."""
    if conn.dialect.name != "postgresql":
        return []
    have = set(existing(conn))
    made: list[str] = []
    if "events_default" not in have:
        conn.execute(text("CREATE TABLE IF NOT EXISTS events_default PARTITION OF events DEFAULT"))
        made.append("events_default")
    start = datetime.fromtimestamp(now, UTC)
    for shift in range(months_ahead + 1):
        y, mo = _month(start.year, start.month, shift)
        name = _NAME.format(y, mo)
        if name in have:
            continue
        ny, nmo = _month(y, mo, 1)
        try:
            with conn.begin_nested():
                conn.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events "
                        f"FOR VALUES FROM ('{_bound(y, mo)}') TO ('{_bound(ny, nmo)}')"
                    )
                )
        except DBAPIError as exc:
            log.warning("partition_not_created", partition=name, error=str(exc.orig)[:200])
            continue
        made.append(name)
    if made:
        log.info("partitions_created", partitions=made)
    return made


def drop_before(conn: Connection, cutoff: datetime) -> list[str]:
    """Drop every month partition that ends at or before ``cutoff`` (retention)."""
    if conn.dialect.name != "postgresql":
        return []
    dropped: list[str] = []
    for name in existing(conn):
        if not name.startswith("events_y"):
            continue
        y, mo = int(name[8:12]), int(name[13:15])
        ny, nmo = _month(y, mo, 1)
        if datetime(ny, nmo, 1, tzinfo=UTC) <= cutoff:
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    if dropped:
        log.info("partitions_dropped", partitions=dropped)
    return dropped
