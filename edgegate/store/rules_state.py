"""Rule state kept in the store: presence per anti-passback area, traffic per door per hour.

Functions take a connection and are called inside the transaction that journals the event
they belong to, so a restart never sees a decision without its presence or its count.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from edgegate.core.areas import Passage, newer
from edgegate.core.passback import Presence

TRAFFIC_COLUMNS = ("granted", "denied", "passages", "exits")


def get_presence(conn: sqlite3.Connection, person_id: str, area: str) -> Presence | None:
    row = conn.execute(
        "SELECT state, ts FROM presence WHERE person_id = ? AND area = ?", (person_id, area)
    ).fetchone()
    return Presence(area, row[0], row[1]) if row else None


def set_presence(
    conn: sqlite3.Connection,
    person_id: str,
    area: str,
    state: str,
    now: float,
    *,
    door: str = "",
    seq: int = 0,
) -> None:
    """This door's own passage: always the person's presence now."""
    conn.execute(
        "INSERT INTO presence(person_id, area, state, ts, door, seq) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT(person_id, area) DO UPDATE SET state=excluded.state, ts=excluded.ts, "
        "door=excluded.door, seq=excluded.seq",
        (person_id, area, state, now, door, seq),
    )


def merge_presence(conn: sqlite3.Connection, passage: Passage) -> bool:
    """A peer door's passage: applied when it is newer than what this door knows, in the
    area's total order (edgegate/core/areas.py), so every door of the area converges."""
    row = conn.execute(
        "SELECT state, ts, door, seq FROM presence WHERE person_id = ? AND area = ?",
        (passage.person_id, passage.area),
    ).fetchone()
    known = None if row is None else Passage(passage.person_id, passage.area, *row)
    if not newer(passage, known):
        return False
    set_presence(
        conn,
        passage.person_id,
        passage.area,
        passage.state,
        passage.ts,
        door=passage.door,
        seq=passage.seq,
    )
    return True


def reset_presence(conn: sqlite3.Connection, area: str) -> int:
    """Forget everyone's presence in ``area`` (after an evacuation): returns how many."""
    return conn.execute("DELETE FROM presence WHERE area = ?", (area,)).rowcount


def occupancy(conn: sqlite3.Connection, area: str) -> int:
    """People whose last passage in ``area`` was in."""
    row = conn.execute(
        "SELECT COUNT(*) FROM presence WHERE area = ? AND state = 'in'", (area,)
    ).fetchone()
    return int(row[0])


def hour_of(now: float) -> int:
    return int(now // 3600) * 3600


def bump(conn: sqlite3.Connection, door: str, now: float, column: str, n: int = 1) -> None:
    if column not in TRAFFIC_COLUMNS:
        raise ValueError(f"unknown traffic counter {column!r}")
    # column is one of TRAFFIC_COLUMNS (checked above), never user text.
    conn.execute(
        f"INSERT INTO traffic(door, hour, {column}) VALUES (?,?,?) "
        f"ON CONFLICT(door, hour) DO UPDATE SET {column} = {column} + excluded.{column}",
        (door, hour_of(now), n),
    )


def traffic_rows(
    conn: sqlite3.Connection, door: str | None = None, since: float = 0.0
) -> list[tuple[str, int, int, int, int, int]]:
    """(door, hour_ts, granted, denied, passages, exits), oldest first."""
    sql = "SELECT door, hour, granted, denied, passages, exits FROM traffic WHERE hour >= ?"
    args: list[object] = [hour_of(since)]
    if door is not None:
        sql += " AND door = ?"
        args.append(door)
    return conn.execute(sql + " ORDER BY hour, door", args).fetchall()


def local_day_start(now: float) -> float:
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def today_counts(conn: sqlite3.Connection, door: str, now: float) -> dict[str, int]:
    """Today's (local day) totals for ``door``: what telemetry carries as ``today``."""
    start = local_day_start(now)
    end = (datetime.fromtimestamp(start) + timedelta(days=1)).timestamp()
    row = conn.execute(
        "SELECT COALESCE(SUM(granted),0), COALESCE(SUM(denied),0), COALESCE(SUM(passages),0), "
        "COALESCE(SUM(exits),0) FROM traffic WHERE door = ? AND hour >= ? AND hour < ?",
        (door, hour_of(start), end),
    ).fetchone()
    return dict(zip(TRAFFIC_COLUMNS, (int(v) for v in row), strict=True))


# The door's latched modes (meta key): the emergency latch and lockdown must survive a restart
# (a watchdog restart during a fire must not relock the door, and an emergency only ends with
# a reset), whatever the journal's pruning. Written on every change, read before the lock is
# driven at start.
MODES_KEY = "door_modes"


def save_modes(conn: sqlite3.Connection, modes: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (MODES_KEY, json.dumps(modes, sort_keys=True)),
    )


def load_modes(conn: sqlite3.Connection) -> dict[str, Any]:
    """The last saved modes, {} if none (a new door) or unreadable."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MODES_KEY,)).fetchone()
    if row is None:
        return {}
    try:
        value = json.loads(row[0])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
