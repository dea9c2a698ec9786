"""Rules across doors (issue 20): how fast a passage at one door is known at a peer door of
the same area, and whether a door with area peers still decides a card as fast as alone.

1. Propagation: two real daemons (A and B, one area, each the other's peer) on one real
   mosquitto on 127.0.0.1. A person is tapped at A; timed from the lock pin going high at A
   (the decision is on disk by then) until B has merged the passage into its presence.
2. Card tap -> relay at B while a peer publishes 50 grants a second into B's area, against
   the same door with no broker and no peers (bench/card_latency.py's method: last byte on
   the pty -> lock pin high).

    python bench/area_peers.py --passages 300 --taps 300
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from card_latency import LOCK, TimedPin, enrol, pct, taps, time_to_open, uid_of
from gpiozero.pins.mock import MockFactory

from edgegate.config import parse
from edgegate.daemon.app import Daemon
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.journal import rfc3339

PEOPLE = 1000


def door(tmp: Path, name: str, port: str, broker: Broker, peer: str) -> Any:
    return parse(
        {
            "door": {"site": "bench", "id": name, "unlock_seconds": 0.005, "area": "hall"},
            "gpio": {
                "pin_factory": "mock",
                "lock": LOCK,
                "buzzer": None,
                "green_led": None,
                "red_led": None,
            },
            "readers": [{"type": "rdm6300", "port": port, "hold_off_seconds": 0}],
            "storage": {"path": str(tmp / f"{name}.db")},
            "logging": {"level": "warning"},
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "client_id": f"bench-{name}",
                "receipts": False,
            },
            "area": {"peers": [peer]},
        },
        Path(f"{name}.toml"),
    )


async def propagation(tmp: Path, broker: Broker, count: int) -> list[float]:
    for name in ("a", "b"):
        enrol(tmp / f"{name}.db", PEOPLE)
    with Rdm6300Simulator() as sim_a, Rdm6300Simulator() as sim_b:
        fa = MockFactory(pin_class=TimedPin)
        a = Daemon(door(tmp, "a", sim_a.port, broker, "b"), pin_factory=fa)
        b = Daemon(door(tmp, "b", sim_b.port, broker, "a"), pin_factory=MockFactory())
        changed = asyncio.Event()
        a.outputs.add_listener(lambda name, on: changed.set() if name == "lock" else None)
        await a.start()
        await b.start()
        assert a.sync is not None and b.sync is not None
        while not (a.sync.link.connected.is_set() and b.sync.link.connected.is_set()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # both subscribed
        pin: TimedPin = fa.pin(LOCK)  # type: ignore[assignment]
        peers = b.sync.peers
        out = []
        try:
            for i in range(count):
                before = peers.counters["applied"]
                await time_to_open(pin, changed, functools.partial(sim_a.tap, uid_of(i % PEOPLE)))
                t_open = next(t for t, on in pin.changes if on)
                while peers.counters["applied"] == before:
                    await asyncio.sleep(0.0005)
                out.append((time.perf_counter() - t_open) * 1000)
                await asyncio.sleep(0.01)
        finally:
            await b.stop()
            await a.stop()
    return out


def peer_traffic(broker: Broker, stop: threading.Event, rate: float) -> None:
    """A peer door 'p' publishing grants into the area at ``rate`` per second."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-peer")
    client.connect(broker.host, broker.port)
    client.loop_start()
    seq = 0
    while not stop.is_set():
        seq += 1
        event = {"id": uuid.uuid4().hex, "seq": seq, "ts": rfc3339(time.time()), "site": "bench",
                 "door": "p", "type": "access_granted", "person": f"p{seq % PEOPLE}",
                 "direction": "in" if seq % 2 else "out", "area": "hall"}  # fmt: skip
        client.publish("edgegate/bench/p/events", json.dumps(event), qos=1)
        time.sleep(1 / rate)
    client.loop_stop()
    client.disconnect()


def summary(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values):.2f} | {pct(values, 99):.2f} "
        f"| {max(values):.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=300)
    ap.add_argument("--taps", type=int, default=300)
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    with tempfile.TemporaryDirectory() as d, Broker() as broker:
        tmp = Path(d)
        prop = asyncio.run(propagation(tmp, broker, args.passages))
        alone_db, peers_db = tmp / "alone.db", tmp / "peers.db"
        enrol(alone_db, PEOPLE)
        enrol(peers_db, PEOPLE)
        alone, _ = asyncio.run(taps(alone_db, PEOPLE, args.taps))
        stop = threading.Event()
        feeder = threading.Thread(target=peer_traffic, args=(broker, stop, 50.0), daemon=True)
        feeder.start()
        with_peers = {
            "door": {"site": "bench", "id": "d", "unlock_seconds": 0.005, "area": "hall"},
            "mqtt": {"host": broker.host, "port": broker.port, "receipts": False},
            "area": {"peers": ["p"]},
        }
        try:
            peered, _ = asyncio.run(taps(peers_db, PEOPLE, args.taps, extra=with_peers))
        finally:
            stop.set()
            feeder.join()
    print("| what | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    print(summary("passage at A (relay) -> merged at peer B", prop))
    print(summary("card tap -> relay, door alone", alone))
    print(summary("card tap -> relay, area peer publishing 50 grants/s", peered))


if __name__ == "__main__":
    main()
