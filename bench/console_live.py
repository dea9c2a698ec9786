"""Console latency through the real parts: a real mosquitto, ``central serve`` with its console
(a process), a door (daemon in this process on mock pins, RDM6300 simulated on a pty).

1. Door event -> visible in the console's live view: a door client publishes N events on its
   ``events`` topic (QoS 1, as a door does, stamped with the send time); a client reads the
   console's server-sent-event stream ``/live/events`` and takes each event's arrival: p50/p99.
2. Lost card disabled in the console -> the door denies it: ``POST /api/v1/cards/UID/disable``
   (what the page's form calls), then the card is tapped every 20 ms until the door journals
   ``access_denied``; from the request to that decision, over ``--cycles`` (the card is
   enabled again and granted between cycles).

    python bench/console_live.py [--events 1000] [--cycles 30]
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
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory

from edgegate.central.config import load_central
from edgegate.central.services import Actor, credentials, open_office, tokens
from edgegate.cli.demo_site import office_config
from edgegate.config import parse
from edgegate.contract import signing
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


def setup(work: Path, broker: Broker) -> tuple[Path, str, str, subprocess.Popen[bytes]]:
    path = office_config(work, broker, free_port(), site="hq")
    key = signing.generate()
    (work / "central.key").write_bytes(signing.private_pem(key))
    os.chmod(work / "central.key", 0o600)
    office = open_office(load_central(path))
    actor = Actor("bench", "cli")
    token = tokens.create(office.engine, actor, "bench", "admin")
    credentials.save_person(office, actor, "alice", name="Alice", cards=[CARD])
    office.engine.dispose()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegate", "central", "serve", "--config", str(path)],
        stdout=(work / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{load_central(path).http.port}"  # type: ignore[union-attr]
    for _ in range(600):
        try:
            if httpx.get(url + "/signin", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return path, url, token, proc, signing.public_text(key.public_key())  # type: ignore[return-value]


def live_view(broker: Broker, url: str, token: str, n: int) -> list[float]:
    arrivals: dict[str, float] = {}
    ready = threading.Event()

    def read() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", url + "/live/events", headers=headers, timeout=None) as r:
            for line in r.iter_lines():
                ready.set()
                m = re.search(r'data-id="(b\d+-\d+)"', line)
                if m:
                    arrivals[m.group(1)] = time.time()
                    if len(arrivals) >= n:
                        return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert ready.wait(30)
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
    t.join(60)
    door.loop_stop()
    door.disconnect()
    return [(arrivals[k] - sent[k]) * 1000 for k in sent if k in arrivals]


async def lost_card(
    work: Path, broker: Broker, url: str, token: str, public: str, cycles: int
) -> list[float]:
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
    await daemon.start()
    headers = {"Authorization": f"Bearer {token}"}
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:

        async def until(kind: str) -> float:
            while True:
                sim.tap(CARD)
                try:
                    got, at = await asyncio.wait_for(decisions.get(), 0.02)
                except TimeoutError:
                    continue
                if got == kind:
                    return at

        await asyncio.wait_for(until("access_granted"), 60)  # snapshot in
        for _ in range(cycles):
            while not decisions.empty():
                decisions.get_nowait()
            t0 = time.monotonic()
            r = await http.post(f"/api/v1/cards/{CARD}/disable", json={"reason": "lost"})
            r.raise_for_status()
            out.append((await asyncio.wait_for(until("access_denied"), 30) - t0) * 1000)
            (await http.post(f"/api/v1/cards/{CARD}/enable")).raise_for_status()
            await asyncio.wait_for(until("access_granted"), 30)
    await daemon.stop()
    sim.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgegate-bench-console-"))
    (work / "broker").mkdir()
    broker = Broker(workdir=work / "broker")
    broker.start()
    proc = None
    try:
        _path, url, token, proc, public = setup(work, broker)  # type: ignore[misc]
        lat = live_view(broker, url, token, args.events)
        print(
            f"event -> live view: {len(lat)}/{args.events} seen, p50 {statistics.median(lat):.1f}"
            f" ms, p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms",
            flush=True,
        )
        lost = asyncio.run(lost_card(work, broker, url, token, public, args.cycles))
        print(
            f"lost card disabled (API) -> door denies: {len(lost)} cycles, p50 "
            f"{statistics.median(lost):.0f} ms, p99 {pct(lost, 99):.0f} ms, max "
            f"{max(lost):.0f} ms",
            flush=True,
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
