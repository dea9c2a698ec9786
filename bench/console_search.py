"""Console event search over a big archive, on SQLite or PostgreSQL: p50/p95/p99 of the
console's filtered queries, their query plans, and what the archive's indexes cost at ingest.

Fills a fresh office store (the real schema and migrations: ``store.open_master``) with N
archived events generated inside the database (a recursive CTE on SQLite, ``generate_series``
on PostgreSQL; 20 doors, 5,000 people, 8 % denials with five reasons, over 90 days), the
archive's secondary indexes dropped during the load and built again after it, then times
``services.events.search`` (what the events page and ``GET /api/v1/events`` call: the newest
page of 100 for each filter, and deep keyset pages) on a real ``Office``.

``--explain`` prints each query's plan (EXPLAIN QUERY PLAN / EXPLAIN); ``--ingest N`` archives
N events through ``archive.archive_events`` (batches of 500, as ``central serve`` does) with
and without the indexes of migrations 7 and 8 (``events_door_type``, ``events_person_type``,
``events_door_at``), to show what they cost, then deletes those events again.

``--keep DIR`` keeps the store in DIR (the SQLite file, or the PostgreSQL cluster's data
directory) and reuses it on the next run with the same DIR: no new fill, the office store's
migrations applied to it (timed), then the search measured again. A 10M fill takes minutes to
an hour; a re-measurement takes minutes.

    python bench/console_search.py --rows 10000000 [--engine sqlite|postgresql] [--runs 30]
        [--explain] [--ingest 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from edgegate.central import archive
from edgegate.central.config import parse_central
from edgegate.central.engine import make_engine
from edgegate.central.services import Office, open_office
from edgegate.central.services import events as ev
from edgegate.central.store import open_master

DOORS = [f"door{i:02d}" for i in range(20)]
REASONS = ["unknown", "revoked", "expired", "schedule", "zone"]
DAYS = 90
CHUNK = 1_000_000

# Deterministic pseudo-random columns from n (a multiplicative hash), so that type and
# reason agree however the database evaluates the expressions.
SQLITE_CHUNK = """
WITH RECURSIVE s(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM s WHERE n < :last),
g AS (
  SELECT n, (n * 2654435761 / 128) % 100 AS d, (n * 40503 / 8) % 5 AS r,
         (n * 7919 + n / 7) % 5000 AS p, :start + n * :step AS t FROM s
),
x AS (
  SELECT n, printf('e%09d', n) AS id, printf('door%02d', n % 20) AS door,
    strftime('%Y-%m-%dT%H:%M:%S', t, 'unixepoch') || '.000Z' AS ts,
    strftime('%Y-%m-%d %H:%M:%S.000000', t, 'unixepoch') AS at,
    CASE WHEN d < 8 THEN 'access_denied' ELSE 'access_granted' END AS type,
    printf('p%05d', p) AS person, printf('%010X', 68719476736 + p) AS credential,
    CASE WHEN d < 8 THEN CASE r WHEN 0 THEN 'unknown' WHEN 1 THEN 'revoked'
      WHEN 2 THEN 'expired' WHEN 3 THEN 'schedule' ELSE 'zone' END END AS reason,
    CASE WHEN n % 2 THEN 'in' ELSE 'out' END AS direction, t
  FROM g
)
INSERT INTO events(n, id, site, door, seq, ts, at, type, person, credential, reason, payload,
                   received)
SELECT n + 1, id, 'hq', door, n, ts, at, type, person, credential, reason,
  json_object('id', id, 'seq', n, 'ts', ts, 'site', 'hq', 'door', door, 'type', type,
    'kind', 'card', 'credential', credential, 'person', person, 'direction', direction,
    'reader', 'entry', 'reason', reason),
  t
FROM x
"""

PG_CHUNK = """
INSERT INTO events(n, id, site, door, seq, ts, at, type, person, credential, reason, payload,
                   received)
SELECT n + 1, id, 'hq', door, n, ts, to_timestamp(t), type, person, credential, reason,
  jsonb_strip_nulls(jsonb_build_object('id', id, 'seq', n, 'ts', ts, 'site', 'hq',
    'door', door, 'type', type, 'kind', 'card', 'credential', credential, 'person', person,
    'direction', direction, 'reader', 'entry', 'reason', reason))::text,
  t
FROM (
  SELECT n, 'e' || lpad(n::text, 9, '0') AS id, 'door' || lpad((n % 20)::text, 2, '0') AS door,
    to_char(to_timestamp(t) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') AS ts,
    CASE WHEN d < 8 THEN 'access_denied' ELSE 'access_granted' END AS type,
    'p' || lpad(p::text, 5, '0') AS person,
    lpad(upper(to_hex(68719476736 + p)), 10, '0') AS credential,
    CASE WHEN d < 8 THEN (ARRAY['unknown', 'revoked', 'expired', 'schedule', 'zone'])[r + 1]
      END AS reason,
    CASE WHEN n % 2 = 1 THEN 'in' ELSE 'out' END AS direction, t
  FROM (
    SELECT n, (n * 2654435761 / 128) % 100 AS d, (n * 40503 / 8) % 5 AS r,
           (n * 7919 + n / 7) % 5000 AS p, :start + n * :step AS t
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
  ) g
) x
"""


def _progress(done: int, rows: int, t0: float) -> None:
    rate = done / max(time.monotonic() - t0, 1e-9)
    print(f"\r{done:,}/{rows:,} rows, {rate:,.0f}/s", end="", file=sys.stderr, flush=True)


def fill_sqlite(db: Path, rows: int) -> dict[str, float]:
    open_master(db, key=os.urandom(32)).dispose()  # the real schema, every migration
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB for the index builds
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='events' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / rows
    t0 = time.monotonic()
    for first in range(0, rows, CHUNK):
        last = min(rows, first + CHUNK) - 1
        conn.execute("BEGIN")
        conn.execute(SQLITE_CHUNK, {"first": first, "last": last, "start": start, "step": step})
        conn.execute("COMMIT")
        _progress(last + 1, rows, t0)
    print(file=sys.stderr)
    load = time.monotonic() - t0
    t1 = time.monotonic()
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"load": load, "indexes": time.monotonic() - t1}


def fill_postgres(url: str, key: bytes, rows: int) -> dict[str, float]:
    from edgegate.central import partitions

    engine = open_master(url, key=key)
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / rows
    with engine.begin() as conn:
        partitions.ensure(conn, start, months_ahead=5)
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )
        ).all()
        for name, _sql in indexes:
            conn.execute(text(f"DROP INDEX {name}"))
    # pg_indexes shows a partitioned table's index as "ON ONLY events" (the parent alone):
    # built that way it would leave every partition without it.
    indexes = [(name, sql.replace(" ON ONLY ", " ON ")) for name, sql in indexes]
    t0 = time.monotonic()
    for first in range(0, rows, CHUNK):
        last = min(rows, first + CHUNK) - 1
        with engine.begin() as conn:
            conn.execute(
                text(PG_CHUNK), {"first": first, "last": last, "start": start, "step": step}
            )
        _progress(last + 1, rows, t0)
    print(file=sys.stderr)
    load = time.monotonic() - t0
    t1 = time.monotonic()
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for _name, sql in indexes:
            conn.execute(text(sql))
        conn.execute(text("SELECT setval(pg_get_serial_sequence('events', 'n'), :n)"), {"n": rows})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE events"))
    engine.dispose()
    return {"load": load, "indexes": time.monotonic() - t1}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


class Captured:
    """The last archive query a search ran (for its plan)."""

    def __init__(self, engine: Engine) -> None:
        self.sql = ""
        self.params: Any = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _m: Any) -> None:
        if "FROM events" in statement and not self.sql:
            self.sql, self.params = statement, params


def plan(office: Office, run: Callable[[], Any]) -> str:
    master = office.master()
    cap = Captured(master)
    try:
        run()
    finally:
        event.remove(master, "before_cursor_execute", cap._seen)
    raw = master.raw_connection()
    try:
        cur = raw.cursor()
        if master.dialect.name == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + cap.sql, cap.params)
            lines = [str(r[-1]) for r in cur.fetchall()]
        else:
            cur.execute("EXPLAIN " + cap.sql, cap.params)
            lines = [str(r[0]) for r in cur.fetchall()]
    finally:
        raw.close()
    return "\n      ".join(lines)


def ingest(office: Office, n: int, tag: str) -> float:
    """Seconds to archive ``n`` new events (denials at the archive's rate) in batches of 500,
    one transaction per batch, as ``central serve`` stores a door's drain."""
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    master = office.master()
    run = int(now)  # new ids on every run of a kept store
    t0 = time.perf_counter()
    for first in range(0, n, 500):
        evs = []
        for i in range(first, min(n, first + 500)):
            denied = i % 100 < 8
            e: dict[str, Any] = {
                "id": f"{tag}-{run}-{i}",
                "seq": i,
                "ts": ts,
                "type": "access_denied" if denied else "access_granted",
                "kind": "card",
                "person": f"p{i % 5000:05d}",
                "credential": f"{0x1000000000 + i % 5000:010X}",
                "direction": "in",
                "reader": "entry",
            }
            if denied:
                e["reason"] = REASONS[i % 5]
            evs.append(e)
        with master.begin() as conn:
            archive.archive_events(conn, "hq", DOORS[first // 500 % 20], evs, now)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--explain", action="store_true", help="print each query's plan")
    ap.add_argument("--ingest", type=int, default=0, help="events archived to time the indexes")
    ap.add_argument(
        "--keep", type=Path, help="keep the filled store in DIR; reuse it if DIR has one"
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="edgegate-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    filled = work / "filled.json"  # written once the fill and its indexes are complete
    reuse = filled.exists()
    if reuse:
        kept = json.loads(filled.read_text())
        if kept["engine"] != args.engine:
            ap.error(f"{work} holds a {kept['engine']} store, not {args.engine}")
        args.rows = kept["rows"]
    if not (work / "store.key").exists():
        (work / "store.key").write_bytes(os.urandom(32))
        os.chmod(work / "store.key", 0o600)
    key = (work / "store.key").read_bytes()
    pg = None
    if args.engine == "postgresql":
        from edgegate.sim.postgres import Postgres

        pg = Postgres(work / "pg" if args.keep else None).start()
        db: str = pg.database("bench", exist_ok=reuse)
    else:
        db = str(work / "central.db")
        if not reuse and Path(db).exists():
            ap.error(f"{db} exists but its fill did not complete: remove it")
    try:
        if reuse:
            migrate_kept(db, key, args.rows)
        else:
            if pg is not None:
                took = fill_postgres(db, key, args.rows)
            else:
                took = fill_sqlite(Path(db), args.rows)
            filled.write_text(json.dumps({"engine": args.engine, "rows": args.rows}))
            print(
                f"filled {args.rows:,} events: load {took['load']:.0f} s, indexes "
                f"{took['indexes']:.0f} s",
                flush=True,
            )
        central = {"site": "hq", "db": db, "key_file": str(work / "k")}
        if pg is not None:
            central["store_key_file"] = str(work / "store.key")
        office = open_office(parse_central({"central": central}, work / "c.toml"))
        try:
            search(office, args)
            if args.ingest:
                measure_ingest(office, args.ingest, args.rows)
        finally:
            office.close()
    finally:
        if pg is not None:
            pg.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def migrate_kept(db: str, key: bytes, rows: int) -> None:
    """The office store's migrations on a kept store (new indexes built over its rows, with
    their planner statistics: see migration 7)."""
    from edgegate.central import migrate

    engine = make_engine(db)
    with engine.connect() as conn:
        was = migrate.current(conn)
    engine.dispose()
    t0 = time.monotonic()
    engine = open_master(db, key=key)
    took = time.monotonic() - t0
    with engine.connect() as conn:
        now = migrate.current(conn)
        count = conn.execute(text("SELECT max(n) FROM events")).scalar_one()
    engine.dispose()
    print(
        f"reused a kept store of {rows:,} events (max n {count:,}), revision "
        f"{','.join(sorted(was))} -> {','.join(sorted(now))}: migrations {took:.0f} s"
    )


def search(office: Office, args: argparse.Namespace) -> None:
    rnd = random.Random(2)
    mid = args.rows // 2
    cases: dict[str, Callable[[], tuple[dict[str, str | None], int | None]]] = {
        "newest page (no filter)": lambda: ({}, None),
        "door": lambda: ({"door": rnd.choice(DOORS)}, None),
        "type=access_denied": lambda: ({"type": "access_denied"}, None),
        "door + denied": lambda: ({"door": rnd.choice(DOORS), "type": "access_denied"}, None),
        "time range (1 h, 30 days ago)": lambda: (
            ev.clean_filters({"since": _ago(30 * 86400), "until": _ago(30 * 86400 - 3600)}),
            None,
        ),
        "deep keyset page (before=N/2)": lambda: ({}, mid + rnd.randrange(1000)),
        "door, deep page": lambda: ({"door": rnd.choice(DOORS)}, mid),
        "person": lambda: ({"person": f"p{rnd.randrange(5000):05d}"}, None),
        "credential": lambda: ({"credential": f"{0x1000000000 + rnd.randrange(5000):010X}"}, None),
        "reason=revoked": lambda: ({"reason": "revoked"}, None),
        "reason, deep page": lambda: ({"reason": rnd.choice(REASONS)}, mid),
        "door + reason": lambda: ({"door": rnd.choice(DOORS), "reason": "schedule"}, None),
        "door + time range (1 h, 30 days ago)": lambda: (
            {
                "door": rnd.choice(DOORS),
                **ev.clean_filters({"since": _ago(30 * 86400), "until": _ago(30 * 86400 - 3600)}),
            },
            None,
        ),
        "person + denied": lambda: (
            {"person": f"p{rnd.randrange(5000):05d}", "type": "access_denied"},
            None,
        ),
    }
    print(
        f"{office.master().dialect.name}, {args.rows:,} events, {args.runs} runs per query\n"
        "| query | p50 ms | p95 ms | p99 ms | rows |\n|---|---|---|---|---|"
    )
    plans = {}
    for name, make in cases.items():
        times = []
        got = 0
        for _ in range(args.runs):
            filters, before = make()
            t0 = time.perf_counter()
            page = ev.search(office, filters, before)
            times.append((time.perf_counter() - t0) * 1000)
            got = len(page.events)
        print(
            f"| {name} | {statistics.median(times):.1f} | {pct(times, 95):.1f} | "
            f"{pct(times, 99):.1f} | {got} |",
            flush=True,
        )
        if args.explain:
            filters, before = make()
            plans[name] = plan(office, lambda f=filters, b=before: ev.search(office, f, b))
    for name, text_ in plans.items():
        print(f"  {name}:\n      {text_}")


# The indexes whose ingest cost ``--ingest`` measures (migrations 7 and 8).
NEW_INDEXES = {
    "events_door_type": "CREATE INDEX events_door_type ON events (door, type, n)",
    "events_person_type": "CREATE INDEX events_person_type ON events (person, type, n)",
    "events_door_at": "CREATE INDEX events_door_at ON events (door, at)",
}


def measure_ingest(office: Office, n: int, rows: int) -> None:
    """Archive ``n`` events with the indexes of migrations 7 and 8, then without them, then
    with them again once rebuilt (the first run pays for a cold cache: the order matters
    as much as the indexes at this load); delete the events archived here (a kept store
    stays as it was filled)."""
    master = office.master()
    first = ingest(office, n, "with")
    with master.begin() as conn:
        for name in NEW_INDEXES:
            conn.execute(text(f"DROP INDEX {name}"))
    try:
        without = ingest(office, n, "without")
    finally:
        t0 = time.monotonic()
        with master.begin() as conn:
            for name, sql in NEW_INDEXES.items():
                conn.execute(text(sql))
                if master.dialect.name == "sqlite":
                    # As migration 7 does: an index without statistics next to analysed ones
                    # misleads SQLite's planner. (DROP INDEX dropped its statistics.)
                    conn.execute(text(f"ANALYZE {name}"))
        rebuilt = time.monotonic() - t0
    again = ingest(office, n, "again")
    with master.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE n > :rows"), {"rows": rows})
    if master.dialect.name == "postgresql":
        # The deleted rows' pages are no longer all-visible: index-only scans would check
        # the heap there until autovacuum came by.
        with master.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE events")
            )
    print(
        f"ingest {n:,} events (batches of 500): with migrations 7-8 indexes {n / first:,.0f}/s, "
        f"without them {n / without:,.0f}/s, with them again {n / again:,.0f}/s "
        f"(rebuilt in {rebuilt:.0f} s)",
        flush=True,
    )


def _ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - seconds))


if __name__ == "__main__":
    sys.exit(main())
