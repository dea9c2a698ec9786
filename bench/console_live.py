"""Console latency through the real parts: a real mosquitto, ``central serve`` with its console
(a process), a door (daemon in this process on mock pins, RDM6300 simulated on a pty).

1. Door event -> visible in the console's live view: a door client publishes N events on its
   ``events`` topic (QoS 1, as a door does, stamped with the send time); a client reads the
   console's server-sent-event stream ``/live/events`` and takes each event's arrival: p50/p99.
   With ``--instances 2``: two ``central serve`` instances on one PostgreSQL (a cluster of the
   bench's own, edgegate/sim/postgres.py). Instance ``a`` is on the doors' broker and archives
   every event; instance ``b`` is on a broker of its own that no door uses, so every event
   reaches b's console through the office store only (central/live_feed.py: the insert's
   NOTIFY, then b's read by cursor). Both consoles' streams are read: "own" (a) and "other" (b).
2. Lost card disabled in the console -> the door denies it: ``POST /api/v1/cards/UID/disable``
   (what the page's form calls), then the card is tapped every 20 ms until the door journals
   ``access_denied``; from the request to that decision, over ``--cycles`` (the card is
   enabled again and granted between cycles).

    python bench/console_live.py [--events 1000] [--cycles 30] [--engine postgresql | --db URL]
    python bench/console_live.py --instances 2 --cycles 0

The office store is SQLite by default (``central.db`` in the bench's temp dir); ``--engine
postgresql`` starts a throwaway PostgreSQL cluster (``edgegate.sim.postgres``) for it, ``--db``
takes the URL of one you run yourself (an empty database). ``--busy N`` runs N processes that
spin on a CPU for the whole run (a machine shared with other work, made repeatable: the
lost-card tail appears only when the office's threads wait for a CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gpiozero.pins.mock import MockFactory

from edgegate.central.config import load_central
from edgegate.central.services import Actor, credentials, open_office, tokens
from edgegate.cli.demo_site import office_config
from edgegate.config import parse
from edgegate.contract import signing
from edgegate.contract.topics import site_credentials
from edgegate.daemon.app import Daemon
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator

CARD = "0F00BC614E"
ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(
    work: Path, broker: Broker, db: str | None = None
) -> tuple[Path, str, str, subprocess.Popen[bytes]]:
    key = signing_key(work)
    path = office_toml(work, broker, db, work)
    # serve's info lines: at its stop, how long its SQLite writers waited for their turns.
    path.write_text(path.read_text().replace('level = "warning"', 'level = "info"'))
    token = prepare(path)
    url, proc = serve(path, work / "serve.log")
    return path, url, token, proc, signing.public_text(key.public_key())  # type: ignore[return-value]


def signing_key(keys: Path) -> Ed25519PrivateKey:
    """The office's signing key, written to ``keys``/central.key (every instance's)."""
    key = signing.generate()
    (keys / "central.key").write_bytes(signing.private_pem(key))
    os.chmod(keys / "central.key", 0o600)
    return key


def office_toml(work: Path, broker: Broker, db: str | None, keys: Path, instance: str = "") -> Path:
    """central.toml in ``work`` with its console on a free port, the signing key of ``keys``;
    on PostgreSQL (``db``) the URL and the store key every instance shares (made once)."""
    path = office_config(work, broker, free_port(), site="hq")
    text = path.read_text().replace(str(work / "central.key"), str(keys / "central.key"))
    if db is not None:
        if not (keys / "store.key").exists():
            (keys / "store.key").write_bytes(os.urandom(32))
            os.chmod(keys / "store.key", 0o600)
        named = f'\ninstance = "{instance}"' if instance else ""
        store = f'db = "{db}"\nstore_key_file = "{keys / "store.key"}"{named}'
        text = re.sub(r'^db = ".*"$', lambda _m: store, text, flags=re.M)
    path.write_text(text)
    return path


def prepare(path: Path) -> str:
    """The office store of ``path`` migrated, alice and her card in it; an API token."""
    office = open_office(load_central(path))
    actor = Actor("bench", "cli")
    token = tokens.create(office.engine, actor, "bench", "admin")
    credentials.save_person(office, actor, "alice", name="Alice", cards=[CARD])
    office.close()
    return token


def serve(path: Path, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """``central serve`` on ``path`` as a process; its console's URL once it answers."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegate", "central", "serve", "--config", str(path)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{load_central(path).http.port}"  # type: ignore[union-attr]
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit("central serve ended:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(url + "/signin", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return url, proc


def live_view(broker: Broker, url: str, token: str, n: int) -> list[float]:
    return live_views(broker, {"": url}, token, n)[""]


def live_views(broker: Broker, urls: dict[str, str], token: str, n: int) -> dict[str, list[float]]:
    """Door event -> shown on each console's live events stream (ms), per console."""
    arrivals: dict[str, dict[str, float]] = {name: {} for name in urls}
    readers = []

    def read(name: str, url: str, ready: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        seen = arrivals[name]
        with httpx.stream("GET", url + "/live/events", headers=headers, timeout=None) as r:
            for line in r.iter_lines():
                ready.set()
                m = re.search(r'data-id="(b\d+-\d+)"', line)
                if m:
                    seen[m.group(1)] = time.time()
                    if len(seen) >= n:
                        return

    for name, url in urls.items():
        ready = threading.Event()
        t = threading.Thread(target=read, args=(name, url, ready), daemon=True)
        t.start()
        assert ready.wait(30)
        readers.append(t)
    door = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-door")
    door.connect(broker.host, broker.port)
    door.loop_start()
    sent: dict[str, float] = {}
    for i in range(n):
        now = time.time()
        eid = f"b{i:06d}-{int(now * 1e6)}"
        ev = {
            "id": eid,
            "seq": i + 1,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
            "site": "hq",
            "door": "bench",
            "type": "access_granted",
            "kind": "card",
            "credential": CARD,
            "person": "alice",
            "direction": "in",
            "reader": "entry",
        }
        sent[eid] = now
        door.publish("edgegate/hq/bench/events", json.dumps(ev), qos=1)
        time.sleep(0.01)  # 100 events/s: a busy site's rush hour
    deadline = time.monotonic() + 60
    for t in readers:
        t.join(max(0.0, deadline - time.monotonic()))
    door.loop_stop()
    door.disconnect()
    return {
        name: [(seen[k] - sent[k]) * 1000 for k in sent if k in seen]
        for name, seen in arrivals.items()
    }


def two_instances(work: Path, broker: Broker, n: int) -> dict[str, list[float]]:
    """Instances a (the doors' broker) and b (a broker of its own) on one PostgreSQL: every
    event is archived by a and reaches b's console through the office store only."""
    from edgegate.sim.postgres import Postgres

    (work / "broker-b").mkdir()
    other = Broker(workdir=work / "broker-b")
    pg = Postgres().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = pg.database()
        signing_key(work)
        other.start()
        urls: dict[str, str] = {}
        for name, on in (("a", broker), ("b", other)):
            (work / name).mkdir()
            path = office_toml(work / name, on, db, work, instance=name)
            if name == "a":
                token = prepare(path)
            urls[name], proc = serve(path, work / name / "serve.log")
            procs.append(proc)
        lat = live_views(broker, urls, token, n)
        return {"own (a, archived it)": lat["a"], "other (b, through the store)": lat["b"]}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(20)
        other.stop()
        pg.close()


@dataclass
class Cycle:
    """One lost-card cycle, every mark in ms after the request was sent."""

    on_wire: float  # the signed version seen on the site's credentials topic (a subscriber)
    answered: float  # the console's answer (after the PUBACK and marking it published)
    applied: float  # the door committed the version (its credentials listener)
    denied: float  # the door journaled access_denied for the card


async def lost_card(
    work: Path,
    broker: Broker,
    url: str,
    token: str,
    public: str,
    cycles: int,
    gap: float,
    warmup: int,
) -> list[Cycle]:
    sim = Rdm6300Simulator()
    (work / "front").mkdir()
    cfg = parse(
        {
            "door": {"site": "hq", "id": "front", "unlock_seconds": 0.2},
            "gpio": {"pin_factory": "mock"},
            "readers": [
                {"type": "rdm6300", "port": sim.port, "name": "entry", "hold_off_seconds": 0}
            ],
            "mqtt": {"host": broker.host, "port": broker.port, "central_public_keys": [public]},
            "storage": {"path": str(work / "front" / "door.db")},
            "daemon": {"watchdog": False},
            "logging": {"level": "warning"},
        },
        work / "front" / "door.toml",
    )
    daemon = Daemon(cfg, pin_factory=MockFactory())
    decisions: asyncio.Queue = asyncio.Queue()
    daemon.door.add_listener(
        lambda e: (
            decisions.put_nowait((e.type, time.monotonic()))
            if e.type in ("access_granted", "access_denied")
            else None
        )
    )
    applied: dict[int, float] = {}
    daemon.door.add_credentials_listener(lambda v: applied.setdefault(v, time.monotonic()))
    # What the office puts on the wire, seen by a plain subscriber (paho's thread).
    wire: dict[int, float] = {}
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watch")
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_a: subscribed.set()
    watcher.on_message = lambda _c, _u, msg: wire.setdefault(
        json.loads(json.loads(msg.payload)["body"])["version"], time.monotonic()
    )
    watcher.connect(broker.host, broker.port)
    watcher.loop_start()
    watcher.subscribe(site_credentials("hq"), qos=1)
    assert subscribed.wait(10)
    await daemon.start()
    headers = {"Authorization": f"Bearer {token}"}
    out: list[Cycle] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def until(kind: str) -> float:
            # One tap in flight at a time (a person taps, sees the light, taps again): a
            # flood of taps would queue decisions on the door and measure the queue.
            while True:
                sim.tap(CARD)
                try:
                    got, at = await asyncio.wait_for(decisions.get(), 2)
                except TimeoutError:
                    continue
                if got == kind:
                    return at

        await asyncio.wait_for(until("access_granted"), 60)  # snapshot in
        for cycle in range(-warmup, cycles):
            await asyncio.sleep(gap)  # the door idle, as between two taps at a real door
            while not decisions.empty():
                decisions.get_nowait()
            t0 = time.monotonic()
            task = asyncio.create_task(
                http.post(f"/api/v1/cards/{CARD}/disable", json={"reason": "lost"})
            )
            denied = await asyncio.wait_for(until("access_denied"), 30)
            r = await task
            r.raise_for_status()
            answered = time.monotonic()
            version = r.json()["version"]
            for _ in range(100):  # the listener runs on this loop right after the commit
                if version in applied and version in wire:
                    break
                await asyncio.sleep(0.01)
            print(
                f"  cycle {cycle}: denied after {(denied - t0) * 1000:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
            if cycle >= 0:  # the first ones meet a serve still starting (migrations, pools)
                out.append(
                    Cycle(
                        on_wire=(wire.get(version, float("nan")) - t0) * 1000,
                        answered=(answered - t0) * 1000,
                        applied=(applied.get(version, float("nan")) - t0) * 1000,
                        denied=(denied - t0) * 1000,
                    )
                )
            (await http.post(f"/api/v1/cards/{CARD}/enable")).raise_for_status()
            await asyncio.wait_for(until("access_granted"), 30)
    watcher.loop_stop()
    watcher.disconnect()
    await daemon.stop()
    sim.close()
    return out


def summary(name: str, values: list[float]) -> str:
    return (
        f"  {name:<44} p50 {statistics.median(values):7.1f}  p95 {pct(values, 95):7.1f}"
        f"  p99 {pct(values, 99):7.1f}  max {max(values):7.1f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000, help="events for the live view (0: skip)")
    ap.add_argument(
        "--instances",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: two serve instances on PostgreSQL, the event shown on the other's console",
    )
    ap.add_argument("--cycles", type=int, default=30, help="lost-card cycles (0: skip)")
    ap.add_argument(
        "--gap", type=float, default=0.3, help="seconds the door is idle before each disable"
    )
    ap.add_argument(
        "--warmup", type=int, default=3, help="lost-card cycles run first and not counted"
    )
    store = ap.add_mutually_exclusive_group()
    store.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the office store: SQLite in the temp dir, or a throwaway PostgreSQL cluster",
    )
    store.add_argument("--db", help="the office store's URL (an empty PostgreSQL database)")
    ap.add_argument(
        "--busy", type=int, default=0, help="processes spinning on a CPU during the run"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgegate-bench-console-"))
    (work / "broker").mkdir()
    broker = Broker(workdir=work / "broker")
    broker.start()
    proc = None
    pg = None
    db: str | None = args.db
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    try:
        if args.instances == 2:
            print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            for name, lat in two_instances(work, broker, args.events).items():
                print(
                    f"event -> live view, {name}: {len(lat)}/{args.events} seen, p50 "
                    f"{statistics.median(lat):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
                    f"max {max(lat):.1f} ms",
                    flush=True,
                )
            print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            return 0
        if args.engine == "postgresql":
            from edgegate.sim.postgres import Postgres

            pg = Postgres().start()
            db = pg.database("bench")
        print(f"office store: {db or 'SQLite'}", flush=True)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average before: {load}", flush=True)
        _path, url, token, proc, public = setup(work, broker, db)  # type: ignore[misc]
        if args.events:
            lat = live_view(broker, url, token, args.events)
            print(
                f"event -> live view: {len(lat)}/{args.events} seen, p50 "
                f"{statistics.median(lat):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
                f"max {max(lat):.1f} ms",
                flush=True,
            )
        if args.cycles:
            lost = asyncio.run(
                lost_card(work, broker, url, token, public, args.cycles, args.gap, args.warmup)
            )
            print(f"lost card disabled (API) -> door denies: {len(lost)} cycles", flush=True)
            for name, values in (
                ("request -> signed version on the wire", [c.on_wire for c in lost]),
                ("request -> door applied the version", [c.applied for c in lost]),
                ("request -> door denies the card", [c.denied for c in lost]),
                ("request -> console answered", [c.answered for c in lost]),
            ):
                print(summary(name, values), flush=True)
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"load average after: {load}", flush=True)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            for line in (work / "serve.log").read_text(errors="replace").splitlines():
                if "writer_handoff_stats" in line:
                    print(f"serve's SQLite writers: {line}", flush=True)
        broker.stop()
        if pg is not None:
            pg.close()
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
