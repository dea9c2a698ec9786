"""Archive ingest on PostgreSQL: light simulated doors publish at a peak rate, then each drains
a backlog; the sustained events/s stored by one and by two ``central serve`` instances, side by
side in the same run with two baselines: the same rows inserted by psycopg directly (500 per
transaction, ON CONFLICT DO NOTHING, no MQTT) and a bare paho subscriber on the office's shared
subscription that only counts and acknowledges (what MQTT alone gives on this machine).

    python bench/office_ingest.py --doors 500 --events 2000

Each door is a plain paho client (edgegate/sim/light_doors.py), 200 per worker process, all of
a process's doors driven from one thread (``DoorGroup``: a paho network thread per door spent
more CPU on the GIL than on MQTT, CPU the office under test did not get). Phase 1, peak: every door
publishes ``--peak-rate`` events/s for ``--peak-seconds`` (a shift change); the line says what
was offered, what was stored meanwhile and how long the rest took. Phase 2, backlog: every door
queues ``--events`` events at once (a door draining its journal after an outage); the clock runs
from the first publish to the moment the archive holds every event: that rate is the figure
the issue's target is about.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from edgegate.central import archive, migrate
from edgegate.central.engine import make_engine
from edgegate.central.schema.archive import events
from edgegate.central.server import subscriptions
from edgegate.cli.main import main
from edgegate.sim.broker import Broker
from edgegate.sim.light_doors import DoorGroup, LightDoor, event
from edgegate.sim.postgres import Postgres

SITE = "bench"
REPO = Path(__file__).resolve().parents[1]
PER_PROCESS = 200  # 3 fds per paho client; stays well below select()'s 1024
SERVE = [sys.executable, "-m", "edgegate", "central", "serve", "--config"]
WAIT = 3600.0  # the longest any phase may take


class Stored:
    """The events stored so far, counted as they come: the rows after the last count's
    highest ``n`` (the archive's writer lock makes ``n`` commit order, so none is counted
    twice or missed). A ``count(*)`` of the whole archive at every poll took 4.9-7.8 s of
    PostgreSQL statement time over a 200,000-event row (pg_stat_statements, loaded
    machine) and grew with the archive: measurement charged to the office rows'
    PostgreSQL share."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.total = 0
        self.last = 0

    def __call__(self) -> int:
        with self.engine.connect() as conn:
            # The archive grows faster than autovacuum analyses it: with stale statistics
            # the planner scans every row instead of the primary key's (n, at) index.
            conn.exec_driver_sql("SET enable_seqscan = off")
            new, top = conn.execute(
                select(func.count(), func.max(events.c.n)).where(events.c.n > self.last)
            ).one()
        if new:
            self.total += new
            self.last = top
        return self.total

    def close(self) -> None:
        self.engine.dispose()


def bare(pg: Postgres, doors: int, per_door: int) -> float:
    """The same rows as the doors send, inserted by psycopg; only the inserts are timed."""
    url = pg.database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    cols = list(archive.event_row(SITE, "d0", event(SITE, "d0", 1), 0.0))
    sql = (
        f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        "ON CONFLICT DO NOTHING"
    )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    keys = [(d, s) for s in range(1, per_door + 1) for d in range(doors)]
    spent = 0.0
    with psycopg.connect(dsn) as conn:
        for i in range(0, len(keys), 500):
            rows = [
                archive.event_row(SITE, f"d{d}", event(SITE, f"d{d}", s), time.time())
                for d, s in keys[i : i + 500]
            ]
            params = [[r[c] for c in cols] for r in rows]
            t0 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, params)
            spent += time.perf_counter() - t0
    return len(keys) / spent


# --- the doors, in worker processes ---------------------------------------------------------


def doors_worker(
    host: str,
    port: int,
    names: list[str],
    peak_rate: float,
    peak_seconds: float,
    backlog: int,
    go_peak: Event,
    go_backlog: Event,
    stop: Event,
    out: Any,
) -> None:
    # One thread drives the process's doors (DoorGroup): what the doors cost the machine is
    # CPU the office under test does not get.
    doors = [LightDoor(host, port, SITE, n) for n in names]
    group = DoorGroup(doors)
    group.connect()
    group.run_until(lambda: all(d.connected.is_set() for d in doors))
    out.put(("ready", len(doors)))
    group.run_until(go_peak.is_set)
    # Every door one event per tick; ticks on a fixed schedule, so a slow tick is caught up
    # (the offered rate is what was asked unless this process cannot keep up).
    start = time.monotonic()
    ticks = int(peak_rate * peak_seconds)
    for k in range(ticks):
        due = start + k / peak_rate
        group.run_until(lambda due=due: time.monotonic() >= due)
        for d in doors:
            d.publish(1)
    out.put(("peak_sent", len(doors) * ticks, time.monotonic() - start))
    group.run_until(go_backlog.is_set)
    for d in doors:
        d.publish(backlog)
    out.put(("backlog_queued", len(doors) * backlog))
    group.run_until(stop.is_set)
    group.close()


class Doors:
    """``doors`` light doors in forked worker processes, driven phase by phase."""

    def __init__(self, broker: Broker, doors: int, args: argparse.Namespace) -> None:
        ctx = mp.get_context("fork")  # forked before this process starts any paho thread
        self.go_peak, self.go_backlog, self.stop_ = ctx.Event(), ctx.Event(), ctx.Event()
        self.out: Any = ctx.Queue()
        names = [f"d{i}" for i in range(doors)]
        self.workers = [
            ctx.Process(
                target=doors_worker,
                args=(
                    broker.host,
                    broker.port,
                    names[i : i + PER_PROCESS],
                    args.peak_rate,
                    args.peak_seconds,
                    args.events,
                    self.go_peak,
                    self.go_backlog,
                    self.stop_,
                    self.out,
                ),
            )
            for i in range(0, doors, PER_PROCESS)
        ]
        for w in self.workers:
            w.start()
        self._wait("ready")

    def _wait(self, what: str) -> list[tuple[Any, ...]]:
        got = [self.out.get(timeout=WAIT) for _ in self.workers]
        assert all(g[0] == what for g in got), got
        return got

    def peak(self, stored: Callable[[], int]) -> tuple[int, float, int]:
        """(events offered, seconds to offer them, events stored when the last was offered)."""
        self.go_peak.set()
        got = self._wait("peak_sent")
        return sum(g[1] for g in got), max(g[2] for g in got), stored()

    def backlog(self) -> None:
        self.go_backlog.set()
        self._wait("backlog_queued")

    def stop(self) -> None:
        self.stop_.set()
        for w in self.workers:
            w.join(60)


# --- what is measured ------------------------------------------------------------------------


def until(stored: Callable[[], int], total: int) -> float:
    """Waits until ``stored()`` reaches ``total``; returns when (monotonic)."""
    deadline = time.monotonic() + WAIT
    while stored() < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {stored()} of {total} events after {WAIT} s")
        time.sleep(0.2)
    return time.monotonic()


def machine_cpu(office: list[int], doors: list[int]) -> dict[str, float]:
    """CPU seconds so far of the processes of each part (children of the office's and the
    doors' processes count as theirs), everything else the machine did (other processes,
    interrupts: loopback TCP's softirq work lands there) and its idle time: where the cores
    went during a phase, so a rate limited by the machine is told from one limited by the
    office."""
    tck = os.sysconf("SC_CLK_TCK")
    parts: dict[str, float] = {"office": 0.0, "broker": 0.0, "doors": 0.0, "postgres": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            head, rest = (proc / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        pid, ppid, comm = int(proc.name), int(fields[1]), head.split("(", 1)[1]
        spent = (int(fields[11]) + int(fields[12])) / tck
        if pid in office or ppid in office:
            parts["office"] += spent
        elif pid in doors or ppid in doors:
            parts["doors"] += spent
        elif comm == "mosquitto":
            parts["broker"] += spent
        elif comm.startswith("postgres"):
            parts["postgres"] += spent
    # cpu  user nice system idle iowait irq softirq steal ...
    cpu = [int(v) / tck for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    parts["other"] = sum(cpu) - cpu[3] - cpu[4] - sum(parts.values())
    parts["idle"] = cpu[3] + cpu[4]
    return parts


def breakdown(before: dict[str, float], after: dict[str, float], events: int) -> str:
    return ", ".join(f"{k} {(after[k] - before[k]) / events * 1e6:,.0f}" for k in before)


def run_phases(
    broker: Broker, args: argparse.Namespace, stored: Callable[[], int], pids: list[int]
) -> str:
    doors = Doors(broker, args.doors, args)
    try:
        t0 = time.monotonic()
        offered, took, at_end = doors.peak(stored)
        t_peak = until(stored, offered) if offered else t0
        peak = (
            f"peak {offered:,} offered at {offered / took:,.0f}/s, "
            f"{at_end:,} stored by then, all {t_peak - t0 - took:.1f} s after"
            if offered
            else "no peak phase"
        )
        start = time.monotonic()
        workers = [w.pid for w in doors.workers if w.pid is not None]
        machine0 = machine_cpu(pids, workers)
        doors.backlog()
        total = offered + args.doors * args.events
        rate = args.doors * args.events / (until(stored, total) - start)
        machine1 = machine_cpu(pids, workers)
        # CPU of the receiving processes (and their children: event receivers) per event:
        # what the machine's load does not change.
        cpu = (machine1["office"] - machine0["office"]) / (args.doors * args.events)
        where = breakdown(machine0, machine1, args.doors * args.events)
        return (
            f"{rate:,.0f} events/s\t{cpu * 1e6:,.0f} µs CPU/event ({peak})\n"
            f"    the machine's CPU µs per event, by part: {where}"
        )
    finally:
        doors.stop()


def mqtt_only(args: argparse.Namespace) -> str:
    """A bare paho subscriber in its own process: the office's shared subscription on MQTT 5,
    QoS 1, each message acknowledged on arrival, counted and dropped."""
    with Broker() as broker:
        counted = broker.dir / "counted"
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--count-only",
                broker.host,
                str(broker.port),
                str(counted),
                args.mqtt_protocol,
            ],
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 60
            while not counted.exists():
                assert time.monotonic() < deadline and proc.poll() is None, "no subscriber"
                time.sleep(0.05)
            return run_phases(broker, args, lambda: int(counted.read_text()), [proc.pid])
        finally:
            proc.terminate()
            proc.wait(30)


def count_only(host: str, port: int, out: Path, protocol: str = "5") -> None:
    v5 = protocol == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="bench-counter",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else False,
    )
    client.manual_ack_set(True)
    seen = [0]

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seen[0] += 1
        c.ack(msg.mid, msg.qos)

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe([(t, 1) for t in subscriptions(SITE) if t.endswith("/events")])

    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: write(out, 0)
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 60
        client.connect(host, port, clean_start=False, properties=props)
    else:  # a persistent 3.1.1 session: what MQTT 5's session expiry replaces
        client.connect(host, port)
    client.loop_start()
    while True:
        time.sleep(0.1)
        write(out, seen[0])


def write(path: Path, n: int) -> None:
    """The count, replaced whole (the reader never sees half a number)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(n))
    tmp.replace(path)


def office(pg: Postgres, work: Path, instances: int, args: argparse.Namespace) -> str:
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
                f"event_receivers = {args.event_receivers}\n"
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
                        [*SERVE, str(cfg)],
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
            stored = Stored(url)
            try:
                return run_phases(broker, args, stored, [p.pid for p in procs])
            finally:
                stored.close()
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)


def main_() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--doors", type=int, default=500)
    ap.add_argument("--events", type=int, default=2000, help="backlog per door")
    ap.add_argument("--peak-rate", type=float, default=1.0, help="events/s per door, phase 1")
    ap.add_argument("--peak-seconds", type=float, default=10.0, help="length of phase 1")
    ap.add_argument(
        "--only",
        choices=("bare", "mqtt", "one", "two"),
        action="append",
        help="run only these rows (repeatable; default: all four)",
    )
    ap.add_argument(
        "--mqtt-protocol",
        choices=("5", "3.1.1"),
        default="5",
        help="the bare subscriber row's MQTT version (the office speaks 5)",
    )
    ap.add_argument(
        "--event-receivers",
        type=int,
        default=0,
        help="[central] event_receivers of each central serve row (processes receiving events)",
    )
    ap.add_argument("--count-only", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count_only:
        host, port, out, protocol = args.count_only
        count_only(host, int(port), Path(out), protocol)
        return
    rows = args.only or ["bare", "mqtt", "one", "two"]
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores")
    print(f"# load before: {os.getloadavg()}")
    peak = args.doors * args.peak_rate
    print(
        f"# {args.doors} doors: peak {args.peak_rate:g} events/s each for {args.peak_seconds:g} s"
        f" ({peak:,.0f}/s), then a backlog of {args.events} each ({args.doors * args.events:,})"
    )
    with Postgres() as pg:
        base = None
        if "bare" in rows:
            base = bare(pg, args.doors, args.events)
            print(f"bare psycopg insert:      {base:,.0f} events/s", flush=True)

        def line(name: str, result: str) -> None:
            rate = float(result.split(" ", 1)[0].replace(",", ""))
            share = f" ({rate / base:.0%} of bare)" if base else ""
            print(f"{name}{result.replace(chr(9), share + ', ', 1)}", flush=True)

        rx = f" ({args.event_receivers} receivers)" if args.event_receivers else ""
        if "mqtt" in rows:
            line(f"bare paho subscriber v{args.mqtt_protocol}: ", mqtt_only(args))
        if "one" in rows:
            line(f"one central serve{rx}:        ", office(pg, pg.dir, 1, args))
        if "two" in rows:
            line(f"two central serve{rx}:        ", office(pg, pg.dir, 2, args))
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main_()
