"""Archive ingest on PostgreSQL: light simulated doors publish a backlog at full speed; the
sustained events/s stored by one and by two ``central serve`` instances, side by side in the
same run with a bare baseline (the same rows inserted by psycopg directly, 500 per
transaction, ON CONFLICT DO NOTHING, no MQTT).

    python bench/office_ingest.py --doors 500 --events 2000

Each door is a plain paho client (edgegate/sim/light_doors.py) queueing ``--events`` events at
once (a door draining its journal after an outage); the clock runs from the first publish to
the moment the archive holds every event.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import func, select

from edgegate.central import archive, migrate
from edgegate.central.engine import make_engine
from edgegate.central.schema.archive import events
from edgegate.cli.main import main
from edgegate.sim.broker import Broker
from edgegate.sim.light_doors import LightDoor, event
from edgegate.sim.postgres import Postgres

SITE = "bench"
REPO = Path(__file__).resolve().parents[1]
SERVE = [sys.executable, "-m", "edgegate", "central", "serve", "--config"]


def count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()
    finally:
        engine.dispose()


def bare(pg: Postgres, doors: int, per_door: int) -> float:
    url = pg.database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    rows = [
        archive.event_row(SITE, f"d{d}", event(SITE, f"d{d}", s), time.time())
        for s in range(1, per_door + 1)
        for d in range(doors)
    ]
    cols = list(rows[0])
    sql = (
        f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        "ON CONFLICT DO NOTHING"
    )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for i in range(0, len(rows), 500):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, [[r[c] for c in cols] for r in rows[i : i + 500]])
    return len(rows) / (time.perf_counter() - t0)


def office(pg: Postgres, work: Path, instances: int, doors: int, per_door: int) -> float:
    url = pg.database()
    run = work / f"office-{instances}-{time.monotonic_ns()}"
    run.mkdir()
    key = run / "store.key"
    key.write_bytes(os.urandom(32))
    with Broker() as broker:
        configs = []
        for i in range(instances):
            cfg = run / f"central-{i}.toml"
            cfg.write_text(
                f'[central]\nsite = "{SITE}"\nkey_file = "{run / "central.key"}"\n'
                f'db = {json.dumps(url)}\nstore_key_file = "{key}"\ninstance = "i{i}"\n'
                f'\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
            )
            configs.append(cfg)
        assert main(["central", "keygen", "--config", str(configs[0])]) == 0
        procs, logs = [], []
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for i, cfg in enumerate(configs):
            log = run / f"serve-{i}.log"
            logs.append(log)
            with log.open("ab") as f:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "edgegate",
                            "central",
                            "serve",
                            "--config",
                            str(cfg),
                        ],
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=REPO,
                    )
                )
        try:
            deadline = time.monotonic() + 300
            while not all(b"central_subscribed" in log.read_bytes() for log in logs):
                assert time.monotonic() < deadline, "serve did not subscribe"
                time.sleep(0.2)
            lights = [LightDoor(broker.host, broker.port, SITE, f"d{d}") for d in range(doors)]
            for d in lights:
                d.start()
            while not all(d.connected.is_set() for d in lights):
                time.sleep(0.1)
            total = doors * per_door
            t0 = time.perf_counter()
            for d in lights:
                d.publish(per_door)
            while (n := count(url)) < total:
                time.sleep(0.5)
            elapsed = time.perf_counter() - t0
            for d in lights:
                d.stop()
            return n / elapsed
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doors", type=int, default=500)
    ap.add_argument("--events", type=int, default=2000, help="backlog per door")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, load {load}")
    print(f"# {args.doors} doors x {args.events} events = {args.doors * args.events}")
    with Postgres() as pg:
        work = pg.dir
        base = bare(pg, args.doors, args.events)
        print(f"bare psycopg insert: {base:,.0f} events/s")
        one = office(pg, work, 1, args.doors, args.events)
        print(f"one central serve:   {one:,.0f} events/s ({one / base:.0%} of bare)")
        two = office(pg, work, 2, args.doors, args.events)
        print(f"two central serve:   {two:,.0f} events/s ({two / base:.0%} of bare)")
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main_()
