"""The console's event search (``archive.search_events``, a deferred join: the page's ``n``
from the indexes, then those rows) returns exactly what a plain scan of the archive returns,
in the same order, page after page by keyset, on random archives and random filters, on
SQLite and PostgreSQL (a real cluster). Arrival order (``n``) and the events' own times are
unrelated here on purpose: a time range must still come back in arrival order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, inspect, select

from edgegate.central import archive, migrate
from edgegate.central.engine import make_engine
from edgegate.central.schema.archive import events
from edgegate.central.store import open_master
from edgegate.contract.messages import rfc3339

DOORS = ["front", "side", "dock"]
TYPES = ["access_granted", "access_denied", "door_forced", "duress"]
PEOPLE = ["p1", "p2", "p3"]
CARDS = ["0A01", "0A02", "0A03"]
REASONS = ["unknown", "revoked", "schedule"]
# Three months and a bit: PostgreSQL's monthly partitions and its default one all get rows.
# Events on 13 days 8 days apart, bounds 4 days apart: a bound often equals an event's time.
T0 = datetime(2026, 9, 20, tzinfo=UTC)
DAY = 24 * 60


def at(minutes: int) -> str:
    return rfc3339(T0 + timedelta(minutes=minutes))


event_st = st.fixed_dictionaries(
    {
        "door": st.sampled_from(DOORS),
        "type": st.sampled_from(TYPES),
        "person": st.none() | st.sampled_from(PEOPLE),
        "credential": st.none() | st.sampled_from(CARDS),
        "reason": st.none() | st.sampled_from(REASONS),
        "minute": st.integers(0, 12).map(lambda k: k * 8 * DAY),
    }
)

FILTER_VALUES = {
    "door": st.sampled_from([*DOORS, "nowhere"]),
    "type": st.sampled_from(TYPES),
    "person": st.sampled_from([*PEOPLE, "p9"]),
    "credential": st.sampled_from(CARDS),
    "reason": st.sampled_from(REASONS),
    "since": st.integers(-1, 25).map(lambda k: at(k * 4 * DAY)),
    "until": st.integers(-1, 25).map(lambda k: at(k * 4 * DAY)),
}
# Up to three filters at once: more would rarely leave a row to page through.
filters_st = st.lists(st.sampled_from(sorted(FILTER_VALUES)), unique=True, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: FILTER_VALUES[k] for k in keys})
)


def plain_scan(
    rows: list[dict[str, Any]], filters: dict[str, str], oldest_first: bool
) -> list[int]:
    """Every event's ``n`` that passes the filters, in arrival order: no index, no SQL."""
    out = []
    for r in rows:
        if any(r[k] != v for k, v in filters.items() if k not in ("since", "until")):
            continue
        if "since" in filters and r["at"] < archive.event_at(filters["since"]):
            continue
        if "until" in filters and r["at"] >= archive.event_at(filters["until"]):
            continue
        out.append(r["n"])
    return sorted(out, reverse=not oldest_first)


@pytest.fixture
def store(office_db: str) -> Iterator[Engine]:
    engine = open_master(office_db, key=os.urandom(32))
    yield engine
    engine.dispose()


def fill(engine: Engine, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fresh archive of ``evs`` in list order (arrival), and what a plain scan sees of it."""
    with engine.begin() as conn:
        conn.execute(delete(events))
        for i, e in enumerate(evs):
            ev = {"id": f"e{i}", "seq": i, "ts": at(e["minute"]), "type": e["type"]}
            ev.update({k: e[k] for k in ("person", "credential", "reason") if e[k]})
            archive.archive_events(conn, "hq", e["door"], [ev], 1.0)
    with engine.connect() as conn:
        got = conn.execute(select(events)).mappings().all()
    return [{**r, "at": archive.event_at(r["ts"])} for r in got]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    evs=st.lists(event_st, max_size=40),
    queries=st.lists(
        st.tuples(filters_st, st.integers(1, 7), st.booleans()), min_size=1, max_size=4
    ),
)
def test_search_pages_are_exactly_a_plain_scan(
    store: Engine, evs: list[dict[str, Any]], queries: list[tuple[dict[str, str], int, bool]]
):
    rows = fill(store, evs)
    for filters, limit, oldest_first in queries:
        expected = plain_scan(rows, filters, oldest_first)
        got: list[int] = []
        cursor: int | None = None
        while True:  # every page by keyset, as the console and the outbox walk them
            keyset = {"after": cursor} if oldest_first else {"before": cursor}
            page = archive.search_events(
                store, filters, limit=limit, oldest_first=oldest_first, **keyset
            )
            assert len(page) <= limit
            got += [e["n"] for e in page]
            by_n = {r["n"]: r for r in rows}
            assert all(e["id"] == by_n[e["n"]]["id"] for e in page)  # each row's own payload
            if len(page) < limit:
                break
            cursor = page[-1]["n"]
        assert got == expected, filters


def test_the_search_indexes_exist_on_both_engines(store: Engine):
    """Migration 7's composites are on the store (on PostgreSQL on the partitioned table:
    every month's partition gets them)."""
    names = {i["name"] for i in inspect(store).get_indexes("events")}
    assert {
        "events_door_type",
        "events_person_type",
        "events_door_at",
        "events_at",
        "events_reason",
    } <= names


def test_migration_7_gives_its_indexes_statistics_on_an_analysed_sqlite_store(tmp_path: Path):
    """SQLite costs an index without statistics at ~10 rows a key: next to analysed ones, the
    new composites would be taken for a door's newest page and the door's events sorted."""
    engine = make_engine(tmp_path / "central.db")
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0006")
    with engine.begin() as conn:
        for i in range(20):  # the archive as revision 0006 has it (no later column)
            conn.exec_driver_sql(
                "INSERT INTO events (id, site, door, seq, ts, at, type, person, payload, "
                "received) VALUES (?, 'hq', ?, ?, ?, ?, ?, 'p1', '{}', 1.0)",
                (f"e{i}", DOORS[i % 3], i, at(i), at(i), TYPES[i % 4]),
            )
        conn.exec_driver_sql("ANALYZE")
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "heads")
    with engine.connect() as conn:
        analysed = {r[0] for r in conn.exec_driver_sql("SELECT idx FROM sqlite_stat1")}
    engine.dispose()
    assert {"events_door", "events_door_type", "events_person_type", "events_door_at"} <= analysed
