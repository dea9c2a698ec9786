"""How fast the office turns archived events into alarms and faults, and how long the handover
report and the fault report take on a large archive.

Fills a fresh SQLite office store with N archived events of D doors (about 10% alarming,
reader faults with their recoveries), then times ``AlarmService.ingest`` (in its batches of
1,000, as ``central serve`` runs it), ``MaintenanceService.fault_report`` and
``handover.report`` over the whole range.

    PYTHONPATH=. .venv/bin/python bench/alarms_ingest.py --events 200000 --doors 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from edgegate.central import handover
from edgegate.central.alarms import AlarmService, ensure_tables
from edgegate.central.alarms_config import AlarmsSection
from edgegate.central.engine import make_engine
from edgegate.central.maintenance import MaintenanceService
from edgegate.central.store import open_master
from edgegate.store.journal import rfc3339

ALARMING = ["door_forced", "door_held_open", "tailgating", "lockout", "assist_requested"]


def fill(db: Path, n: int, doors: int, start: float) -> None:
    conn = open_master(db)
    rng = random.Random(7)
    rows = []
    faulty: dict[str, bool] = {}
    for i in range(n):
        door = f"door{rng.randrange(doors):03d}"
        at = start + i * 2.0
        r = rng.random()
        if r < 0.10:
            type_, body = rng.choice(ALARMING), {}
        elif r < 0.11:
            type_ = "reader_recovered" if faulty.get(door) else "reader_fault"
            faulty[door] = type_ == "reader_fault"
            body = {"reader": "entry", "error": "no answer"}
        else:
            type_, body = "access_granted", {"person": f"p{rng.randrange(10000)}"}
        rows.append((f"e{i}", "hq", door, i, rfc3339(at), type_, json.dumps(body), at))
    with conn:
        conn.executemany(
            "INSERT INTO events(id, site, door, seq, ts, type, payload, received) "
            "VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--doors", type=int, default=50)
    args = ap.parse_args()
    start = time.time() - args.events * 2.0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "central.db"
        fill(db, args.events, args.doors, start)
        engine = make_engine(db)
        ensure_tables(engine)
        svc = AlarmService(engine, AlarmsSection(), "hq")
        t0 = time.perf_counter()
        raised = batches = 0
        with engine.connect() as conn:
            while True:
                raised += svc.ingest(time.time())
                batches += 1
                pos = conn.exec_driver_sql("SELECT position FROM alarm_ingest").scalar()
                conn.rollback()
                if pos >= args.events:
                    break
        ingest = time.perf_counter() - t0
        m = MaintenanceService(engine, "hq")
        t1 = time.perf_counter()
        faults = m.fault_report(since=None, until=None, now=time.time())
        t2 = time.perf_counter()
        rep = handover.report(svc, m, start, time.time())
        t3 = time.perf_counter()
        text = handover.html(rep, "hq")
        t4 = time.perf_counter()
    print(
        f"events {args.events}, doors {args.doors}, alarms raised {raised}, "
        f"faults {len(faults['faults'])}"
    )
    print(f"ingest: {ingest:.2f} s ({args.events / ingest:,.0f} events/s, {batches} batches)")
    print(f"fault report: {(t2 - t1) * 1000:.0f} ms")
    print(
        f"handover report over everything: {(t3 - t2) * 1000:.0f} ms; html "
        f"{(t4 - t3) * 1000:.0f} ms, {len(text) / 1e6:.1f} MB"
    )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
