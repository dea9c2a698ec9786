"""Journal drain to the broker at QoS 1, side by side with a bare paho QoS 1 publisher.

Both run in the same process against the same local mosquitto, one after the other:

* raw: a bare paho 2.x client (``loop_start``), publishing the same number of messages of the
  same size at QoS 1 with the same in-flight window, timed until the last PUBACK;
* drain: the door's own code (``AsyncStore`` with ``synchronous=FULL``, ``MqttLink``,
  ``Drainer``) draining a journal of N unsent events filled with ``journal.append``, timed
  until every event is acknowledged and marked sent in the store.

    python bench/mqtt_drain.py --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.config.models import MqttConfig
from edgegate.sim.broker import Broker
from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from edgegate.store.store import AsyncStore
from edgegate.sync.drain import Drainer
from edgegate.sync.link import MqttLink

TOPIC = "edgegate/bench/d1/events"


def fill(db: Path, n: int) -> tuple[float, int]:
    conn = open_db(db, synchronous="NORMAL")
    t0 = time.perf_counter()
    now = time.time()
    batch = 100_000
    for start in range(0, n, batch):
        with transaction(conn):
            for i in range(start, min(n, start + batch)):
                journal.append(
                    conn,
                    "access_granted",
                    {
                        "kind": "card",
                        "credential": "0F00BC614E",
                        "person": f"p{i % 5000}",
                        "direction": "in",
                        "reader": "entry",
                    },
                    site="bench",
                    door="d1",
                    now=now,
                )
    size = len(journal.unsent_wire(conn, 0, 1)[0][1])
    conn.close()
    return time.perf_counter() - t0, size


def raw_paho(broker: Broker, n: int, size: int, window: int) -> float:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw")
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    done = threading.Event()
    acked = [0]
    # The publisher keeps at most `window` messages outstanding, as the door does: handing
    # paho a million at once makes every PUBACK scan its whole queue (quadratic).
    slots = threading.Semaphore(window)

    def on_publish(_c, _u, _mid, _rc, _p) -> None:
        slots.release()
        acked[0] += 1
        if acked[0] == n:
            done.set()

    c.on_publish = on_publish
    c.connect(broker.host, broker.port)
    c.loop_start()
    payload = b"x" * size
    t0 = time.perf_counter()
    for _ in range(n):
        slots.acquire()
        c.publish(TOPIC, payload, qos=1)
    done.wait()
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return elapsed


async def drain(broker: Broker, db: Path, n: int, window: int) -> tuple[float, float]:
    store = AsyncStore(db, synchronous="FULL")
    await store.open()
    cfg = MqttConfig(host=broker.host, port=broker.port, max_inflight=window)
    link = MqttLink(cfg, "bench-door")
    link.start()
    await link.connected.wait()
    drainer = Drainer(store, link, TOPIC, window=window)
    t0 = time.perf_counter()
    task = asyncio.create_task(drainer.run())
    while drainer.acked < n:
        await asyncio.sleep(0.05)
    acked_at = time.perf_counter() - t0
    while await store.call(journal.unsent_count):
        await asyncio.sleep(0.05)
    marked_at = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await link.stop()
    await store.close()
    return acked_at, marked_at


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--window", type=int, default=256, help="QoS 1 messages in flight")
    args = ap.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp, Broker(persistent=False) as broker:
        db = Path(tmp) / "door.db"
        fill_s, size = fill(db, n)
        print(f"journal of {n:,} unsent events filled in {fill_s:.1f} s; message {size} bytes")
        raw_s = raw_paho(broker, n, size, args.window)
        acked_s, marked_s = asyncio.run(drain(broker, db, n, args.window))
        conn = open_db(db, readonly=True, check=False)
        unsent = journal.unsent_count(conn)
        conn.close()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(f"raw paho QoS 1: {n:,} in {raw_s:.1f} s = {n / raw_s:,.0f} msg/s")
    print(
        f"door drain:     {n:,} acked in {acked_s:.1f} s = {n / acked_s:,.0f} msg/s; "
        f"all marked sent after {marked_s:.1f} s = {n / marked_s:,.0f} events/s "
        f"({n / marked_s / (n / raw_s):.0%} of raw); unsent left {unsent}"
    )


if __name__ == "__main__":
    main()
