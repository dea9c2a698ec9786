"""The event archive, the doors table and the counters of the office store.

Events are keyed by their ``id``: a door re-sends after a reconnect (QoS 1 is at least once)
and several ``central serve`` instances may each see a copy around a takeover, so an insert
that meets an archived id does nothing and the ``duplicate_events`` counter says how many.
On PostgreSQL the key is ``(id, at)`` (a partitioned table's unique keys hold the partition
key); ``at`` is computed from the event alone (``event_at``), so a copy meets its original.

**Arrival order is commit order.** Readers of the archive follow ``n`` with a cursor (alarms,
the visitors' register, webhooks, the live console: "rows with ``n`` above my cursor, up to
the highest ``n`` I see"). With several writers that is only safe if no row with a lower
``n`` can commit after one with a higher ``n`` became visible. On PostgreSQL every insert
into the archive therefore takes one transaction-level advisory lock (``ORDER_LOCK``) just
before it and keeps it until its transaction ends: ``n`` is drawn and committed by one
writer at a time, so what any reader sees is always a prefix of ``n`` (gaps left by
duplicates or rolled back transactions are final). Callers insert at the end of their
transaction (``central serve`` parses its whole batch first), so the lock is held for one
multi-row insert and the commit. SQLite needs nothing: it has one writer at a time anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, any_, bindparam, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from edgegate.central.dialect import is_postgres, upsert
from edgegate.central.engine import reads
from edgegate.central.schema.archive import counters as counters_t
from edgegate.central.schema.archive import doors, events
from edgegate.central.schema.master import commands

# Where an event whose ``ts`` is not a time goes: still archived, found by id and door.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
REF_MAX = 128


def event_at(ts: str) -> datetime:
    """The event's time as an aware UTC datetime; ``NO_TIME`` when ``ts`` is not one."""
    try:
        at = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except (ValueError, TypeError):
        return NO_TIME
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except (OverflowError, ValueError):
        return NO_TIME


def _ref(ev: dict[str, Any], key: str) -> str | None:
    value = ev.get(key)
    ok = isinstance(value, str) and 0 < len(value) <= REF_MAX and "\x00" not in value
    return value if ok else None


def event_refs(ev: dict[str, Any]) -> tuple[str | None, str | None]:
    """(person, credential) an event names, for the archive's indexes (strings only)."""
    return _ref(ev, "person"), _ref(ev, "credential")


def event_reason(ev: dict[str, Any]) -> str | None:
    """The reason of a denial (or of any event that gives one), for the archive's index."""
    return _ref(ev, "reason")


def bump(conn: Connection, name: str, n: int = 1) -> None:
    stmt = upsert(conn, counters_t).values(name=name, value=n)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"], set_={"value": counters_t.c.value + stmt.excluded.value}
        )
    )


@reads
def counters(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(counters_t.c.name, counters_t.c.value).order_by(counters_t.c.name))
    return {name: value for name, value in rows}


# pg_advisory_xact_lock key of the archive's writers ("edgegate" in ASCII, as a signed bigint).
ORDER_LOCK = 0x6564676567617465
# NOTIFY channel of every instance's live feed (central/live_feed.py); the payload names the
# kind of change its live views re-read.
LIVE_CHANNEL = "edgegate_live"
LIVE_EVENTS, LIVE_DOORS, LIVE_ALARMS, LIVE_COMMANDS = "events", "doors", "alarms", "commands"
# Told after a commit that ``announce``d a kind, on the committing thread: ``central serve``
# wakes its own live feed with it (``LiveFeed.local``; SQLite has no NOTIFY).
LiveChanged = Callable[[str], None]


def insert_in_order(conn: Connection) -> None:
    """Take the archive's writer lock until the end of ``conn``'s transaction (PostgreSQL;
    see the module docstring). Taking it again in the same transaction costs nothing more.

    The same statement queues the live feed's notification: PostgreSQL sends it when this
    transaction commits (never if it rolls back), in commit order, so every instance's feed
    reads the new rows right after they became visible. No round trip more, and no lock more
    at commit (PostgreSQL serialises notifying commits; these are serialised already)."""
    if is_postgres(conn):
        conn.execute(
            select(
                func.pg_advisory_xact_lock(ORDER_LOCK), func.pg_notify(LIVE_CHANNEL, LIVE_EVENTS)
            )
        )


def announce(conn: Connection, kind: str) -> None:
    """PostgreSQL: tell every instance's live feed, at this transaction's commit, that
    ``kind`` (``LIVE_DOORS``, ``LIVE_ALARMS``, ``LIVE_COMMANDS``) changed; nothing if it
    rolls back. Identical notifications of one transaction are sent once. On SQLite the
    writer wakes its own process's feed after the commit (``LiveFeed.local``)."""
    if is_postgres(conn):
        conn.execute(select(func.pg_notify(LIVE_CHANNEL, kind)))


@contextmanager
def changing(engine: Engine, kind: str, changed: LiveChanged | None) -> Iterator[Connection]:
    """One write transaction that changes what the live views show as ``kind``: every
    instance's live feed is told at its commit (``announce``), and ``changed`` (the writing
    process's own feed, SQLite) right after it; nobody if the body raised (rolled back)."""
    with engine.begin() as conn:
        yield conn
        announce(conn, kind)
    if changed is not None:
        changed(kind)


def event_row(site: str, door: str, ev: dict[str, Any], now: float) -> dict[str, Any]:
    person, credential = event_refs(ev)
    return {
        "id": ev["id"],
        "site": site,
        "door": door,
        "seq": ev["seq"],
        # The door's journal epoch: the receipts' runs are per (door, epoch).
        "epoch": ev.get("epoch") or "",
        "ts": ev["ts"],
        "at": event_at(ev["ts"]),
        "type": ev["type"],
        "person": person,
        "credential": credential,
        "reason": event_reason(ev),
        "payload": json.dumps(ev, separators=(",", ":")),
        "received": now,
    }


def archive_events(
    conn: Connection, site: str, door: str, evs: list[dict[str, Any]], now: float
) -> int:
    """Insert new events, ignore ids already archived; returns how many were new."""
    return len(archive_rows(conn, [event_row(site, door, ev, now) for ev in evs]))


def archive_rows(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``event_row`` rows (any doors) in one statement, in arrival order, ignoring ids
    already archived; returns the ids that were new. Takes the writer lock (module
    docstring): call it last in the transaction, and commit soon after."""
    if not rows:
        return set()
    insert_in_order(conn)
    if is_postgres(conn):
        new = _insert_new(conn, rows)
    else:
        # One cached statement, executed for many rows (SQLAlchemy's "insertmanyvalues"
        # sends them as multi-row INSERTs): nothing is compiled under the writer's lock.
        stmt = upsert(conn, events).on_conflict_do_nothing().returning(events.c.id)
        new = set(conn.execute(stmt, rows).scalars())
    if new:
        bump(conn, "events_archived", len(new))
    if len(rows) - len(new):
        bump(conn, "duplicate_events", len(rows) - len(new))
    return new


# The archived copies of a batch's ids: one statement whatever the batch's size. Only the
# partitions of the batch's own times are probed (PostgreSQL prunes the others by ``at`` at
# execution): the id's index is per monthly partition, and a retention setting keeps many.
# A copy has the time of its original, so nothing is missed.
_HELD = select(events.c.id, events.c.at).where(
    events.c.id == any_(bindparam("ids", type_=ARRAY(events.c.id.type))),
    events.c.at >= bindparam("lo", type_=events.c.at.type),
    events.c.at <= bindparam("hi", type_=events.c.at.type),
)


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: the rows whose (id, at) is not archived yet, inserted by a plain
    executemany (psycopg pipelines one prepared single-row statement); returns their ids.

    Not ``INSERT ... RETURNING`` for the batch: SQLAlchemy then sends multi-row INSERTs
    whose text changes with the batch's size, too long for psycopg's statement cache, and
    psycopg re-parsed each one (about a seventh of the office's CPU at full ingest). Exact
    because the caller holds the archive's writer lock: no other writer inserts between the
    look-up and the insert. Copies within the batch count once."""
    times = [r["at"] for r in rows]
    found = conn.execute(
        _HELD, {"ids": [r["id"] for r in rows], "lo": min(times), "hi": max(times)}
    )
    held = {(i, at) for i, at in found}
    fresh = []
    for row in rows:
        key = (row["id"], row["at"])
        if key not in held:
            held.add(key)
            fresh.append(row)
    if fresh:
        conn.execute(upsert(conn, events).on_conflict_do_nothing(), fresh)
    return {row["id"] for row in fresh}


@reads
def query_events(
    conn: Connection,
    *,
    door: str | None = None,
    type_: str | None = None,
    person: str | None = None,
    credential: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    after: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Archived events in arrival order (``n``), newest ``limit`` when a limit is given.
    ``since``/``until`` bound the event's own time (RFC 3339 text or a datetime). The CLI's
    read: the same keyset query as the console's (``search_events``), oldest first."""
    filters: dict[str, str | datetime | None] = {
        "door": door,
        "type": type_,
        "person": person,
        "credential": credential,
        "since": since,
        "until": until,
    }
    if limit is not None:
        rows = search_events(conn, filters, after=after, limit=limit)[::-1]
    else:
        rows = []
        while page := search_events(conn, filters, after=after, limit=1000, oldest_first=True):
            rows += page
            after = page[-1]["n"]
    for row in rows:
        del row["received"]  # the archive's own bookkeeping, not part of the event
    return rows


def _time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else event_at(value)


@reads
def rows_after(conn: Connection, after: int, limit: int) -> list[tuple[int, str, str, str]]:
    """(n, site, door, payload) of the rows after ``after``, oldest first: the live feed's
    read by cursor (central/live_feed.py), on the primary key."""
    q = (
        select(events.c.n, events.c.site, events.c.door, events.c.payload)
        .where(events.c.n > after)
        .order_by(events.c.n)
        .limit(limit)
    )
    return [(n, site, door, payload) for n, site, door, payload in conn.execute(q)]


@reads
def last_n(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(events.c.n), 0))).scalar_one()


@reads
def count_events(conn: Connection, door: str | None = None) -> int:
    q = select(func.count()).select_from(events)
    if door:
        q = q.where(events.c.door == door)
    return conn.execute(q).scalar_one()


@reads
def archived_per_door(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(events.c.site, events.c.door, func.count()).group_by(events.c.site, events.c.door)
    )
    return {(site, door): n for site, door, n in rows}


def delete_events_before(conn: Connection, cutoff: datetime) -> int:
    """Retention: remove events whose own time is before ``cutoff`` (both engines; on
    PostgreSQL ``partitions.drop_before`` first drops whole months, this takes the rest)."""
    result = conn.execute(delete(events).where(events.c.at < cutoff, events.c.at > NO_TIME))
    return result.rowcount or 0


def seen(conn: Connection, site: str, door: str, now: float) -> None:
    """The door exists and sent something now."""
    seen_many(conn, [(site, door)], now)


def seen_many(conn: Connection, doors_: list[tuple[str, str]], now: float) -> None:
    """``seen`` for several (site, door) at once: one statement, rows in the given order (give
    them sorted: two writers then lock the doors' rows in the same order)."""
    if not doors_:
        return
    stmt = upsert(conn, doors)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site", "door"], set_={"last_seen": stmt.excluded.last_seen}
    )
    conn.execute(stmt, [{"site": s, "door": d, "last_seen": now} for s, d in doors_])


def _door(site: str, door: str) -> Any:
    return (doors.c.site == site) & (doors.c.door == door)


def set_availability(conn: Connection, site: str, door: str, availability: str, now: float) -> bool:
    """Record online/offline; True when it changed."""
    seen(conn, site, door, now)
    result = conn.execute(
        update(doors)
        .where(_door(site, door), doors.c.availability != availability)
        .values(availability=availability, changed=now)
    )
    return result.rowcount > 0


def set_json(
    conn: Connection, site: str, door: str, column: str, value: dict[str, Any], now: float
) -> None:
    if column not in ("state", "telemetry"):
        raise ValueError(column)
    seen(conn, site, door, now)
    text = json.dumps(value, separators=(",", ":"))
    conn.execute(update(doors).where(_door(site, door)).values({column: text}))


def set_door_version(conn: Connection, site: str, door: str, version: int, now: float) -> None:
    seen(conn, site, door, now)
    conn.execute(update(doors).where(_door(site, door)).values(credential_version=version))


@reads
def list_doors(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            doors.c.site,
            doors.c.door,
            doors.c.availability,
            doors.c.changed,
            doors.c.last_seen,
            doors.c.state,
            doors.c.telemetry,
            doors.c.credential_version,
        ).order_by(doors.c.site, doors.c.door)
    ).all()
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


# --- the console's event search (edgegate/central/web) ------------------------------------


@reads
def search_events(
    conn: Connection,
    filters: Mapping[str, str | datetime | None],
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    """One page of the archive by keyset on ``n`` (no OFFSET: a page deep in millions of
    rows costs what the first one does). Newest first unless ``oldest_first``. Filters:
    door, type, person, credential, reason (indexed columns, each with ``n``), since and
    until (the event's own time, RFC 3339).

    A deferred join: the page's ``n`` are chosen first, from the indexes alone where they
    hold every filtered column (on SQLite every index carries the rowid ``n``), then only
    those rows are read. Read whole, a filter that an index narrows but does not order (a
    time range: ``events_at`` then sorted by ``n``) read the payload of every match before
    keeping 100 of them (docs/benchmarks.md)."""
    columns = {
        "door": events.c.door,
        "type": events.c.type,
        "person": events.c.person,
        "credential": events.c.credential,
        "reason": events.c.reason,
    }
    page = select(events.c.n)
    for name, value in filters.items():
        if not value:
            continue
        if name in columns:
            page = page.where(columns[name] == value)
        elif name == "since":
            page = page.where(events.c.at >= _time(value))
        elif name == "until":
            page = page.where(events.c.at < _time(value))
        else:
            raise ValueError(f"unknown event filter {name!r}")
    if before is not None:
        page = page.where(events.c.n < before)
    if after is not None:
        page = page.where(events.c.n > after)
    chosen = page.order_by(events.c.n.asc() if oldest_first else events.c.n.desc()).limit(limit)
    q = (
        select(events.c.n, events.c.payload, events.c.received)
        .where(events.c.n.in_(chosen.scalar_subquery()))
        .order_by(events.c.n.asc() if oldest_first else events.c.n.desc())
    )
    return [{"n": n, "received": rec, **json.loads(payload)} for n, payload, rec in conn.execute(q)]


@reads
def last_event(conn: Connection) -> int:
    return last_n(conn)


# --- commands (the audit trail of what went to the doors) ---------------------------------


def record_command(conn: Connection, message: dict[str, Any]) -> None:
    """Every command issued, sent or not."""
    conn.execute(
        commands.insert().values(
            id=message["id"],
            door=message["door"],
            cmd=message["cmd"],
            message=json.dumps(message),
            issued=time.time(),
        )
    )


def mark_command_sent(conn: Connection, command_id: str, now: float) -> None:
    conn.execute(update(commands).where(commands.c.id == command_id).values(published=now))


@reads
def commands_mark(conn: Connection) -> tuple[int, float, float]:
    """(commands recorded, the newest ``issued``, the newest ``published``): recording a
    command or marking it sent moves it, whichever process did it. The live feed compares
    it at each read on SQLite, where a CLI process's change wakes nobody
    (central/live_feed.py); on PostgreSQL the change's own NOTIFY does."""
    count, issued, published = conn.execute(
        select(func.count(), func.max(commands.c.issued), func.max(commands.c.published))
    ).one()
    return int(count), float(issued or 0.0), float(published or 0.0)


@reads
def recent_commands(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            commands.c.id, commands.c.door, commands.c.cmd, commands.c.message, commands.c.published
        )
        .order_by(commands.c.issued.desc().nulls_last(), commands.c.id)
        .limit(limit)
    )
    return [
        {"id": r[0], "door": r[1], "cmd": r[2], "message": json.loads(r[3]), "published": r[4]}
        for r in rows
    ]


@reads
def command_acks(conn: Connection, command_ids: list[str]) -> dict[str, list[dict]]:
    """The doors' ``command_ack`` events of these commands, by command id."""
    out: dict[str, list[dict]] = {cid: [] for cid in command_ids}
    if not command_ids:
        return out
    # The acks are few and recent: select them by type, match the ids here (no JSON SQL).
    rows = conn.execute(
        select(events.c.payload).where(events.c.type == "command_ack").order_by(events.c.n)
    )
    wanted = set(command_ids)
    for (payload,) in rows:
        ev = json.loads(payload)
        if ev.get("cmd_id") in wanted:
            out[ev["cmd_id"]].append(ev)
    return out


def _json_text(conn: Connection, key: str) -> Any:
    """A top-level text field of the event's JSON payload, in the engine's JSON syntax."""
    if conn.dialect.name == "postgresql":
        return cast(events.c.payload, JSONB)[key].astext
    return func.json_extract(events.c.payload, f"$.{key}")


@reads
def traffic_counts(
    conn: Connection, since: str, door: str | None = None
) -> list[tuple[str, str, str, str, str | None, str | None, int]]:
    """(door, day, hour, type, direction, reason, count) of decisions since ``since`` (UTC
    text, as the archive keeps ``ts``), grouped; the traffic page shapes them."""
    day = func.substr(events.c.ts, 1, 10)
    hour = func.substr(events.c.ts, 12, 2)
    direction = _json_text(conn, "direction")
    reason = _json_text(conn, "reason")
    q = select(events.c.door, day, hour, events.c.type, direction, reason, func.count()).where(
        events.c.ts >= since, events.c.type.in_(("access_granted", "access_denied"))
    )
    if door:
        q = q.where(events.c.door == door)
    q = q.group_by(events.c.door, day, hour, events.c.type, direction, reason)
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(q)]
