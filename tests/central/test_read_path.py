"""``central serve``'s alarms and visitors loops run every second or two: a pass with nothing to
do must not take SQLite's write lock (the archive's writer would wait for it and, past the
busy timeout, log ``database is locked``). Here another connection holds the write lock while
those passes run: they finish, and find the work once the lock is gone."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edgegate.central import archive
from edgegate.central.alarms import AlarmService
from edgegate.central.alarms_config import AlarmsSection
from edgegate.cli.central_visits import desk_for
from edgegate.sim.broker import free_port
from tests.central.conftest import make_central


def test_idle_alarm_and_visitor_passes_take_no_write_lock(tmp_path: Path) -> None:
    central = make_central(tmp_path, free_port())
    engine = central.db()
    alarms = AlarmService(engine, AlarmsSection(), "hq")
    desk = desk_for(central.config)
    now = time.time()
    with engine.begin() as conn:
        archive.archive_events(
            conn,
            "hq",
            "front",
            [{"id": "e1", "seq": 1, "ts": "2026-12-02T10:00:00Z", "type": "access_granted"}],
            now,
        )
    assert alarms.ingest(now) == 0  # first passes: cursors made, doors seen
    desk.ingest(now)

    holder = sqlite3.connect(central.config.central.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer holds the lock (an import, say)
    try:
        holder.execute(
            "INSERT INTO events(id, site, door, seq, ts, at, type, payload, received) VALUES "
            "('e2', 'hq', 'front', 2, '2026-12-02T10:00:01Z', '2026-12-02 10:00:01', "
            "'door_forced', '{}', 0)"
        )
        # Nothing committed yet: both passes see nothing to do and never wait for the lock.
        assert alarms.ingest(now) == 0
        assert desk.ingest(now).notices == []
    finally:
        holder.execute("COMMIT")
        holder.close()
    # A forced door committed: the next pass takes the lock and raises its alarm.
    assert alarms.ingest(now) == 1
    desk.engine.dispose()
    central.close()
