"""Console event search over a big archive: p50/p99 of the console's filtered queries.

Fills a fresh office store (the real schema: ``store.open_master``) with N archived events in
bulk inserts (``executemany`` in 100,000-row transactions; 20 doors, 5,000 people, a
realistic mix of grants and denials over 90 days), then times ``services.events.search`` (what
the events page and ``GET /api/v1/events`` call: the newest page of 100 for each filter, and a
deep keyset page) on a real ``Office``. Bounded: ``--rows`` (default 10,000,000).

    python bench/console_search.py [--rows 10000000] [--runs 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgegate.central.config import parse_central
from edgegate.central.services import events as ev
from edgegate.central.services import open_office
from edgegate.central.store import open_master

DOORS = [f"door{i:02d}" for i in range(20)]
REASONS = ["unknown", "revoked", "expired", "schedule", "zone"]


def fill(db: Path, rows: int) -> float:
    conn = open_master(db)
    conn.execute("PRAGMA synchronous=OFF")
    # Bulk load: the secondary indexes are dropped and built again at the end (the same
    # indexes the office store's migrations create, checked by the query plans below).
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='events' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    rnd = random.Random(1)
    t0 = time.monotonic()
    start = time.time() - 90 * 86400
    step = 90 * 86400 / rows
    batch = 100_000
    for first in range(0, rows, batch):
        data = []
        for n in range(first, min(rows, first + batch)):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + n * step)) + ".000Z"
            door = DOORS[n % 20]
            granted = rnd.random() > 0.08
            person = f"p{rnd.randrange(5000):05d}"
            payload = {
                "id": f"e{n:09d}",
                "seq": n,
                "ts": ts,
                "site": "hq",
                "door": door,
                "type": "access_granted" if granted else "access_denied",
                "kind": "card",
                "credential": f"{0x1000000000 + int(person[1:]):010X}",
                "person": person,
                "direction": "in" if n % 2 else "out",
                "reader": "entry",
            }
            if not granted:
                payload["reason"] = rnd.choice(REASONS)
            data.append(
                (
                    payload["id"],
                    "hq",
                    door,
                    n,
                    ts,
                    payload["type"],
                    json.dumps(payload, separators=(",", ":")),
                    start + n * step,
                )
            )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events(id, site, door, seq, ts, type, payload, received) "
            "VALUES (?,?,?,?,?,?,?,?)",
            data,
        )
        conn.execute("COMMIT")
        print(f"\r{first + len(data):,} rows", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return time.monotonic() - t0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--keep", type=Path, help="use/keep the store in this directory")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="edgegate-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "central.db"
    if not db.exists():
        print(f"filling {args.rows:,} events: {fill(db, args.rows):.0f} s", flush=True)
    config = parse_central(
        {"central": {"site": "hq", "db": str(db), "key_file": str(work / "k")}}, work / "c.toml"
    )
    office = open_office(config)
    rnd = random.Random(2)
    mid = args.rows // 2
    cases = {
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
        "reason=revoked": lambda: ({"reason": "revoked"}, None),
    }
    print("| query | p50 ms | p99 ms | rows |\n|---|---|---|---|")
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
            f"| {name} | {statistics.median(times):.1f} | {pct(times, 99):.1f} | {got} |",
            flush=True,
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - seconds))


if __name__ == "__main__":
    sys.exit(main())
