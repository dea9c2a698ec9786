"""Doors reconnecting after an office outage: deltas against full snapshots, side by side.

A master of ``--people`` people with one card each (``central import``), then ``--behind``
small changes (``central cards disable``) made while the doors were away: every door holds
version V-k. Per mode a real mosquitto (``edgegate/sim/broker.py``) and a real
``central serve`` (SQLite store) are started; once the office is subscribed, ``--doors`` light
doors (plain paho clients, split over worker processes: paho waits in ``select()``, which
cannot see file descriptors above 1024) all connect at once, subscribe, and send their
snapshot request with ``have`` V-k. A door counts as at V when it has verified the versions
V-k+1..V in order on the site's credentials topic, or every chunk of a snapshot of V.

* deltas: the normal rule (``catchup_max_versions`` 500): the missed versions re-sent on the
  site's credentials topic, one re-send shared by every door asking within a few seconds;
* snapshots: the same doors with ``catchup_max_versions = 0`` (always a snapshot).

Measured: payload bytes the office published on credential topics (a plain subscriber on the
site's credentials topic and every door's snapshot topic), the bytes the broker delivered to
the doors (MQTT payloads only, no packet headers), per-door time to V (from the office's start
and from the door's request), and the office's CPU time (``/proc/<pid>/stat``): at start-up
(until subscribed), then answering until the last door was at V and until the credential
topics had been quiet for 3 s (settled: coalesced or late re-sends included).

    python bench/reconnect_catchup.py --doors 500 --people 20000 --behind 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Empty
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.central.engine import make_engine
from edgegate.central.store import current_version
from edgegate.cli.main import main as cli
from edgegate.contract import signing
from edgegate.contract.topics import DoorTopics, site_credentials
from edgegate.sim.broker import Broker

REPO = Path(__file__).resolve().parents[1]
SITE = "bench"
PER_PROCESS = 200  # 3 fds per paho client; stays well below select()'s 1024


@dataclass
class Result:
    door: str
    requested: float  # time.monotonic() (one clock for every process on Linux)
    at_v: float | None
    delivered: int  # payload bytes the broker delivered to this door
    rejected: int


class CatchupDoor:
    """Tracks what the office sends one door; applies nothing (verifying is the door's cost
    we keep: the signature check and the JSON parse)."""

    def __init__(self, host: str, port: int, name: str, have: int, target: int, v: Any) -> None:
        self.name, self.have, self.target, self.verifier = name, have, target, v
        self.topics = DoorTopics(SITE, name)
        self.requested = 0.0
        self.at_v: float | None = None
        self.delivered = self.rejected = 0
        self.chunks: dict[str, set[int]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rc-{name}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async(host, port, keepalive=60)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(site_credentials(SITE), 1), (self.topics.snapshot, 1)])

    def _on_subscribe(self, client: mqtt.Client, _u: Any, _m: int, _c: Any, _p: Any) -> None:
        # Asked only once the answer cannot be missed: the subscriptions are confirmed.
        request = {"type": "snapshot_request", "v": 1, "site": SITE, "door": self.name}
        self.requested = time.monotonic()
        payload = json.dumps({**request, "have": self.have, "reason": "gap"})
        client.publish(self.topics.snapshot_request, payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.delivered += len(msg.payload)
        try:
            body = self.verifier.verify(bytes(msg.payload))
        except signing.RejectedMessage:
            self.rejected += 1
            return
        if body["type"] == "credentials":
            # Applied only in order (docs/mqtt.md): base <= have < version.
            if body["base"] <= self.have < body["version"]:
                self.have = body["version"]
        elif body["type"] == "snapshot":
            got = self.chunks.setdefault(body["snapshot"], set())
            got.add(body["chunk"])
            if len(got) == body["chunks"]:
                self.have = max(self.have, body["version"])
        if self.at_v is None and self.have >= self.target:
            self.at_v = time.monotonic()


def doors_worker(
    host: str, port: int, names: list[str], have: int, target: int, pub: str, go: Event, out: Any
) -> None:
    verifier = signing.Verifier([signing.parse_public(pub)])
    doors = [CatchupDoor(host, port, n, have, target, verifier) for n in names]
    go.wait()
    for d in doors:
        d.client.loop_start()
    deadline = time.monotonic() + 900
    while any(d.at_v is None for d in doors) and time.monotonic() < deadline:
        time.sleep(0.05)
    out.put([Result(d.name, d.requested, d.at_v, d.delivered, d.rejected) for d in doors])
    for d in doors:
        d.client.disconnect()
        d.client.loop_stop()


class Counter:
    """The office's side of the wire: every payload on the credential topics, seen once."""

    def __init__(self, broker: Broker) -> None:
        self.bytes = self.messages = 0
        self.last = time.monotonic()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rc-counter")
        self.c.on_message = self._on_message
        ready = threading.Event()
        self.c.on_subscribe = lambda *_: ready.set()
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        topics = [site_credentials(SITE), DoorTopics(SITE, "+").snapshot]
        self.c.subscribe([(t, 1) for t in topics])
        assert ready.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.bytes += len(msg.payload)
        self.messages += 1
        self.last = time.monotonic()

    def settle(self, quiet: float = 3.0) -> None:
        while time.monotonic() - self.last < quiet:
            time.sleep(0.2)
        self.c.disconnect()
        self.c.loop_stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_mode(tmp: Path, mode: str, doors: int, have: int, target: int, pub: str) -> str:
    cfg = tmp / f"central-{mode}.toml"
    limit = 500 if mode == "deltas" else 0
    with Broker(persistent=False) as broker:
        cfg.write_text(
            f'[central]\nsite = "{SITE}"\nkey_file = "{tmp}/central.key"\n'
            f'db = "{tmp}/central.db"\ncatchup_max_versions = {limit}\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        ctx = mp.get_context("fork")  # forked before any thread of this process starts
        go, out = ctx.Event(), ctx.Queue()
        names = [f"d{i:03d}" for i in range(doors)]
        parts = [names[i : i + PER_PROCESS] for i in range(0, doors, PER_PROCESS)]
        workers = [
            ctx.Process(
                target=doors_worker,
                args=(broker.host, broker.port, part, have, target, pub, go, out),
            )
            for part in parts
        ]
        for w in workers:
            w.start()
        counter = Counter(broker)
        log = tmp / f"serve-{mode}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t0 = time.monotonic()
        office = subprocess.Popen(
            [sys.executable, "-m", "edgegate", "central", "serve", "--config", str(cfg)],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            while b"central_subscribed" not in log.read_bytes():
                if time.monotonic() - t0 > 120 or office.poll() is not None:
                    raise SystemExit(f"central serve did not subscribe; see {log}")
                time.sleep(0.05)
            ready = time.monotonic() - t0
            cpu_ready = cpu_seconds(office.pid)
            go.set()
            results: list[Result] = []
            while len(results) < doors:
                try:
                    results += out.get(timeout=1000)
                except Empty:
                    raise SystemExit("doors did not report within 1000 s") from None
            cpu_done = cpu_seconds(office.pid)
            counter.settle()
            cpu_settled = cpu_seconds(office.pid)
        finally:
            office.terminate()
            office.wait(30)
            for w in workers:
                w.join(30)
    done = [r for r in results if r.at_v is not None]
    from_start = [r.at_v - t0 for r in done if r.at_v is not None]
    from_request = [r.at_v - r.requested for r in done if r.at_v is not None]
    delivered = sum(r.delivered for r in results)
    rejected = sum(r.rejected for r in results)
    return (
        f"| {mode} | {len(done)}/{doors} | {counter.messages:,} | {size(counter.bytes)} "
        f"| {size(delivered)} | {ready:.1f} s "
        f"| {pct(from_start, 0.5):.2f} / {pct(from_start, 0.99):.2f} / {max(from_start):.2f} s "
        f"| {pct(from_request, 0.5):.2f} / {pct(from_request, 0.99):.2f} s "
        f"| {cpu_ready:.1f} s | {cpu_done - cpu_ready:.1f} s ({cpu_settled - cpu_ready:.1f} s) "
        f"| {rejected} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doors", type=int, default=500)
    ap.add_argument("--people", type=int, default=20_000, help="people, one card each")
    ap.add_argument("--behind", type=int, default=5, help="small changes the doors missed")
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores")
    print(f"# Python {platform.python_version()}, load average before {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="edgegate-reconnect-") as d, Broker() as broker:
        tmp = Path(d)
        cfg = tmp / "central.toml"
        cfg.write_text(
            f'[central]\nsite = "{SITE}"\nkey_file = "{tmp}/central.key"\n'
            f'db = "{tmp}/central.db"\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        assert cli(["central", "keygen", "--config", str(cfg)]) == 0
        csv = tmp / "people.csv"
        with csv.open("w") as f:
            f.write("person,name,card,groups\n")
            for i in range(args.people):
                f.write(f"p{i:06d},Person {i},{0x4000000000 + i:010X},staff;floor{i % 9}\n")
        assert cli(["central", "import", str(csv), "--config", str(cfg)]) == 0
        for i in range(args.behind):  # what happened while the doors were away
            uid = f"{0x4000000000 + 7 * i:010X}"
            assert cli(["central", "cards", "disable", uid, "--config", str(cfg)]) == 0
        engine = make_engine(str(tmp / "central.db"))
        with engine.connect() as conn:
            target = current_version(conn)
        engine.dispose()
        pub = signing.public_text(signing.load_private(tmp / "central.key").public_key())
        have = target - args.behind
        print(
            f"# master: {args.people:,} people + {args.people:,} cards, version V={target}; "
            f"{args.doors} doors at V-{args.behind}"
        )
        print(
            "| mode | doors at V | office messages | office bytes | delivered to doors "
            "| office start -> subscribed | office start -> door at V p50 / p99 / max "
            "| request -> at V p50 / p99 | office CPU start-up | office CPU answering "
            "(settled) | rejected |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for mode in ("deltas", "snapshots"):
            print(run_mode(tmp, mode, args.doors, have, target, pub), flush=True)
    print(f"# load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
