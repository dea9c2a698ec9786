"""A 100,000-person credential snapshot applied by a running door, and its decisions meanwhile.

The real daemon runs in-process (mock pins, RDM6300 reader on a pty, SQLite store with
``synchronous=FULL``, the MQTT sync service) on a local mosquitto, holding an old set of N
people with one card each. The central office (a paho client in this process) sends a new set
of N people in signed chunks (signed beforehand: the office's CPU is not the door's). Measured:
time from the first chunk sent to the new set live, the swap step itself, and the decision
latency (``Door.handle_read`` -> decision journaled) of a card decided every 20 ms, before and
while the snapshot is applied.

    python bench/snapshot_apply.py --people 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.config import parse
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.daemon.app import Daemon
from edgegate.hardware.base import CredentialKind, CredentialRead
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credential_sync as cs
from edgegate.store import credentials as creds
from edgegate.store.db import open_db

PROBE = "0F00BC614E"


def chunks(n: int, per: int, version: int) -> list[dict]:
    sid = uuid.uuid4().hex[:12]
    total = -(-n // per)
    issued = m.rfc3339(datetime.now(UTC))
    out = []
    for c in range(total):
        ids = range(c * per, min(n, (c + 1) * per))
        people = [{"id": f"n{i}", "name": f"New {i}", "attrs": {"groups": ["staff"]}} for i in ids]
        cards = [
            {"kind": "card", "value": f"{0x20_0000_0000 + i:010X}", "person": f"n{i}"} for i in ids
        ]
        if c == 0:  # the probe card stays valid across the swap
            people.append({"id": "probe"})
            cards.append({"kind": "card", "value": PROBE, "person": "probe"})
        out.append(
            {
                "type": "snapshot",
                "site": "bench",
                "door": "d1",
                "snapshot": sid,
                "version": version,
                "chunk": c,
                "chunks": total,
                "issued": issued,
                "people": people,
                "credentials": cards,
                # The door's enrolled set counts as settled by this office (docs/central.md).
                "replace_local": True,
            }
        )
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def probe_until(door, stop) -> list[float]:
    lat = []
    while not stop():
        t = time.perf_counter()
        await door.handle_read(CredentialRead(CredentialKind.CARD, PROBE, "probe"))
        lat.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.02)
    return lat


async def run(n: int, per: int) -> None:
    key = signing.generate()
    signer = signing.Signer(key)
    with tempfile.TemporaryDirectory() as tmp, Broker(persistent=False) as broker:
        sim = Rdm6300Simulator()
        db = Path(tmp) / "door.db"
        conn = open_db(db)
        creds.bulk_add_cards(
            conn,
            [(f"o{i}", f"Old {i}", f"{0x30_0000_0000 + i:010X}") for i in range(n)]
            + [("probe", "Probe", PROBE)],
        )
        conn.close()
        cfg = parse(
            {
                "door": {"site": "bench", "id": "d1"},
                "gpio": {"pin_factory": "mock"},
                "readers": [{"type": "rdm6300", "port": sim.port}],
                "storage": {"path": str(db)},
                "daemon": {"watchdog": False},
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "central_public_keys": [signing.public_text(key.public_key())],
                },
            },
            Path(tmp) / "bench.toml",
        )
        t = time.perf_counter()
        payloads = [signer.sign(c) for c in chunks(n, per, version=1)]
        sign_s = time.perf_counter() - t
        daemon = Daemon(cfg, pin_factory=MockFactory())
        swap_ms: list[float] = []
        real_swap = cs.swap

        def timed_swap(*a, **kw):
            t0 = time.perf_counter()
            try:
                return real_swap(*a, **kw)
            finally:
                swap_ms.append((time.perf_counter() - t0) * 1000)

        cs.swap = timed_swap
        await daemon.start()
        sync = daemon.sync
        await asyncio.wait_for(sync.link.connected.wait(), 10)
        await asyncio.sleep(0.5)
        base_end = time.monotonic() + 3
        baseline = await probe_until(daemon.door, lambda: time.monotonic() > base_end)

        central = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-central")
        central.connect(broker.host, broker.port)
        central.loop_start()

        def send() -> None:
            for p in payloads:
                central.publish("edgegate/bench/d1/credentials/snapshot", p, qos=1)

        t0 = time.perf_counter()
        threading.Thread(target=send, daemon=True).start()
        during = await probe_until(daemon.door, lambda: sync.version == 1)
        apply_s = time.perf_counter() - t0
        count = await daemon.store.call(creds.count_credentials)
        t1 = time.perf_counter()
        while sync._cleaning is not None and not sync._cleaning.done():
            await asyncio.sleep(0.05)
        clean_s = time.perf_counter() - t1
        central.loop_stop()
        central.disconnect()
        await daemon.stop()
        sim.close()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"snapshot: {n:,} people + {n:,} cards in {len(payloads)} chunks of {per:,} "
        f"({sum(map(len, payloads)) / 1e6:.1f} MB signed; signing took {sign_s:.1f} s at the "
        f"'office'), replacing {n:,} old ones"
    )
    print(
        f"applied (first chunk sent -> new set live): {apply_s:.1f} s; swap step "
        f"{swap_ms[-1]:.1f} ms; old set cleaned in {clean_s:.1f} s after; {count:,} credentials"
    )
    print(
        f"decision latency idle:   n={len(baseline)} p50 {statistics.median(baseline):.1f} ms "
        f"p99 {pct(baseline, 0.99):.1f} ms max {max(baseline):.1f} ms"
    )
    print(
        f"decision latency during: n={len(during)} p50 {statistics.median(during):.1f} ms "
        f"p99 {pct(during, 0.99):.1f} ms max {max(during):.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=5000)
    args = ap.parse_args()
    asyncio.run(run(args.people, args.chunk))


if __name__ == "__main__":
    main()
