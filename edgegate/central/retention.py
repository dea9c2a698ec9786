"""The archive's housekeeping, run by ``central serve`` at start and every few hours:
PostgreSQL's month partitions created ahead, and events older than
``[central] archive_retention_days`` (by their own time) deleted: whole months dropped on
PostgreSQL, the rest by a delete on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection

from edgegate.central import archive, partitions

log = structlog.get_logger(__name__)

HOUSEKEEPING_SECONDS = 6 * 3600.0


def housekeeping(conn: Connection, now: float, retention_days: int) -> int:
    """Partitions ahead, then retention; returns the events deleted by the delete (events in
    dropped partitions are not counted one by one)."""
    partitions.ensure(conn, now)
    if retention_days <= 0:
        return 0
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=retention_days)
    dropped = partitions.drop_before(conn, cutoff)
    deleted = archive.delete_events_before(conn, cutoff)
    if deleted or dropped:
        log.info(
            "archive_retention", cutoff=cutoff.isoformat(), deleted=deleted, partitions=dropped
        )
    return deleted
