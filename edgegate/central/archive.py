"""The event archive, the doors table and the counters of the master store.

Events are keyed by their ``id``: a door re-sends after a reconnect (QoS 1 is at least once),
so ``INSERT OR IGNORE`` drops the copy and the ``duplicate_events`` counter says how many.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def bump(conn: sqlite3.Connection, name: str, n: int = 1) -> None:
    conn.execute(
        "INSERT INTO counters(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        (name, n),
    )


def counters(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall())


def archive_events(
    conn: sqlite3.Connection, site: str, door: str, events: list[dict[str, Any]], now: float
) -> int:
    """Insert new events, ignore ids already archived; returns how many were new."""
    new = 0
    for ev in events:
        cur = conn.execute(
            "INSERT OR IGNORE INTO events(id, site, door, seq, ts, type, payload, received) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                ev["id"],
                site,
                door,
                ev["seq"],
                ev["ts"],
                ev["type"],
                json.dumps(ev, separators=(",", ":")),
                now,
            ),
        )
        new += cur.rowcount
    if new:
        bump(conn, "events_archived", new)
    if len(events) - new:
        bump(conn, "duplicate_events", len(events) - new)
    return new


def query_events(
    conn: sqlite3.Connection,
    *,
    door: str | None = None,
    type_: str | None = None,
    since: str | None = None,
    after: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Archived events in arrival order (``n``), newest ``limit`` when a limit is given."""
    where, params = ["n > ?"], [after]
    if door:
        where.append("door = ?")
        params.append(door)
    if type_:
        where.append("type = ?")
        params.append(type_)
    if since:
        where.append("ts >= ?")
        params.append(since)
    sql = f"SELECT n, payload FROM events WHERE {' AND '.join(where)}"
    if limit is not None:
        rows = conn.execute(f"{sql} ORDER BY n DESC LIMIT ?", (*params, limit)).fetchall()
        rows.reverse()
    else:
        rows = conn.execute(f"{sql} ORDER BY n", params).fetchall()
    return [{"n": n, **json.loads(payload)} for n, payload in rows]


# Filters of the console's event search: name -> SQL over the events table. Person,
# credential and reason live in the event's JSON (the door's wire format is archived as is).
_FILTERS = {
    "door": "door = ?",
    "type": "type = ?",
    "person": "json_extract(payload, '$.person') = ?",
    "credential": "json_extract(payload, '$.credential') = ?",
    "reason": "json_extract(payload, '$.reason') = ?",
    "since": "ts >= ?",
    "until": "ts < ?",
}


def search_events(
    conn: sqlite3.Connection,
    filters: dict[str, str | None],
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    """One page of the archive by keyset on ``n`` (no OFFSET: a page deep in millions of
    rows costs what the first one does). Newest first unless ``oldest_first``."""
    where, params = [], []
    for name, value in filters.items():
        if value:
            where.append(_FILTERS[name])
            params.append(value)
    if before is not None:
        where.append("n < ?")
        params.append(before)
    if after is not None:
        where.append("n > ?")
        params.append(after)
    sql = "SELECT n, payload, received FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY n {'ASC' if oldest_first else 'DESC'} LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return [{"n": n, "received": rec, **json.loads(payload)} for n, payload, rec in rows]


def last_event(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(n), 0) FROM events").fetchone()[0]


def seen(conn: sqlite3.Connection, site: str, door: str, now: float) -> None:
    """The door exists and sent something now."""
    conn.execute(
        "INSERT INTO doors(site, door, last_seen) VALUES (?,?,?) "
        "ON CONFLICT(site, door) DO UPDATE SET last_seen = excluded.last_seen",
        (site, door, now),
    )


def set_availability(
    conn: sqlite3.Connection, site: str, door: str, availability: str, now: float
) -> bool:
    """Record online/offline; True when it changed."""
    seen(conn, site, door, now)
    cur = conn.execute(
        "UPDATE doors SET availability=?, changed=? WHERE site=? AND door=? AND availability<>?",
        (availability, now, site, door, availability),
    )
    return cur.rowcount > 0


def set_json(
    conn: sqlite3.Connection, site: str, door: str, column: str, value: dict[str, Any], now: float
) -> None:
    if column not in ("state", "telemetry"):
        raise ValueError(column)
    seen(conn, site, door, now)
    conn.execute(
        f"UPDATE doors SET {column}=? WHERE site=? AND door=?",
        (json.dumps(value, separators=(",", ":")), site, door),
    )


def set_door_version(
    conn: sqlite3.Connection, site: str, door: str, version: int, now: float
) -> None:
    seen(conn, site, door, now)
    conn.execute(
        "UPDATE doors SET credential_version=? WHERE site=? AND door=?", (version, site, door)
    )


def list_doors(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT site, door, availability, changed, last_seen, state, telemetry, "
        "credential_version FROM doors ORDER BY site, door"
    ).fetchall()
    return [
        {
            "site": r[0],
            "door": r[1],
            "availability": r[2],
            "changed": r[3],
            "last_seen": r[4],
            "state": json.loads(r[5]) if r[5] else None,
            "telemetry": json.loads(r[6]) if r[6] else None,
            "credential_version": r[7],
        }
        for r in rows
    ]


# --- commands ---------------------------------------------------------------------------


def record_command(conn: sqlite3.Connection, message: dict[str, Any]) -> None:
    """Every command issued, sent or not (the audit trail of what went to the doors)."""
    conn.execute(
        "INSERT INTO commands(id, door, cmd, message) VALUES (?,?,?,?)",
        (message["id"], message["door"], message["cmd"], json.dumps(message)),
    )


def mark_command_sent(conn: sqlite3.Connection, command_id: str, now: float) -> None:
    conn.execute("UPDATE commands SET published=? WHERE id=?", (now, command_id))


def recent_commands(conn: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, door, cmd, message, published FROM commands ORDER BY rowid DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"id": r[0], "door": r[1], "cmd": r[2], "message": json.loads(r[3]), "published": r[4]}
        for r in rows
    ]


def command_acks(conn: sqlite3.Connection, command_ids: list[str]) -> dict[str, list[dict]]:
    """The doors' ``command_ack`` events of these commands, by command id."""
    out: dict[str, list[dict]] = {cid: [] for cid in command_ids}
    if not command_ids:
        return out
    marks = ",".join("?" * len(command_ids))
    rows = conn.execute(
        "SELECT payload FROM events WHERE type='command_ack' AND "
        f"json_extract(payload, '$.cmd_id') IN ({marks}) ORDER BY n",
        command_ids,
    ).fetchall()
    for (payload,) in rows:
        ev = json.loads(payload)
        out.setdefault(ev.get("cmd_id", ""), []).append(ev)
    return out


def traffic_counts(
    conn: sqlite3.Connection, since: str, door: str | None = None
) -> list[tuple[str, str, str, str | None, str | None, int]]:
    """(door, day, hour, type, direction, reason, count) of decisions since ``since`` (UTC
    text, as the archive keeps ``ts``), grouped; the traffic page shapes them."""
    sql = (
        "SELECT door, substr(ts, 1, 10), substr(ts, 12, 2), type, "
        "json_extract(payload, '$.direction'), json_extract(payload, '$.reason'), COUNT(*) "
        "FROM events WHERE ts >= ? AND type IN ('access_granted', 'access_denied')"
    )
    params: list[str] = [since]
    if door:
        sql += " AND door = ?"
        params.append(door)
    sql += " GROUP BY 1, 2, 3, 4, 5, 6"
    return conn.execute(sql, params).fetchall()
