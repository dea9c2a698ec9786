"""PN532 card presented -> lock pin high, through the real daemon, per poll interval.

The simulated chip (edgegate/sim/pn532.py) answers on a pty in its own thread; the daemon's
PN532 reader polls InListPassiveTarget every ``poll_interval_seconds``. Each sample presents
an enrolled card at a random moment of the poll cycle, times from ``present`` until gpiozero
drives the lock pin high, then removes the card and waits past the hold-off. The simulator
does not pace bytes at 115200 baud: one poll exchange is 37 bytes on the wire (command 9,
ACK 6, answer with a 4-byte UID 22), 3.2 ms at 115200 8N1, to add on real hardware.

    PYTHONPATH=. python bench/pn532_latency.py --samples 40
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from bench.card_latency import LOCK, TimedPin, pct
from edgegate.config import parse
from edgegate.daemon.app import Daemon
from edgegate.sim.pn532 import Pn532Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db

UID = "04A1B2C3"


async def measure(poll: float, samples: int, tmp: Path) -> list[float]:
    db = tmp / f"pn532-{poll}.db"
    conn = open_db(db, synchronous="NORMAL")
    creds.bulk_add_cards(conn, [("alice", "Alice", UID)])
    conn.close()
    factory = MockFactory(pin_class=TimedPin)
    hold_off = 0.05
    with Pn532Simulator() as sim:
        config = parse(
            {
                "door": {"site": "bench", "id": "d", "unlock_seconds": 0.005},
                "gpio": {"pin_factory": "mock", "lock": LOCK, "buzzer": None,
                         "green_led": None, "red_led": None},
                "readers": [{"type": "pn532", "port": sim.port, "hold_off_seconds": hold_off,
                             "poll_interval_seconds": poll}],
                "storage": {"path": str(db)},
                "logging": {"level": "warning"},
                "daemon": {"watchdog": False},
            },
            Path("bench.toml"),
        )  # fmt: skip
        daemon = Daemon(config, pin_factory=factory)
        changed = asyncio.Event()
        daemon.outputs.add_listener(lambda name, on: changed.set() if name == "lock" else None)
        await daemon.start()
        pin: TimedPin = factory.pin(LOCK)  # type: ignore[assignment]
        rng = random.Random(5)
        out: list[float] = []
        try:
            for _ in range(samples):
                # A random phase of the poll cycle, as a real card arrives.
                await asyncio.sleep(rng.uniform(0, poll))
                pin.changes = []
                changed.clear()
                t0 = time.perf_counter()
                sim.present(UID)
                while not any(on for _, on in pin.changes):
                    await asyncio.wait_for(changed.wait(), 5)
                    changed.clear()
                t_on = next(t for t, on in pin.changes if on)
                out.append((t_on - t0) * 1000)
                sim.remove()
                await asyncio.sleep(hold_off + 2 * poll + 0.02)
        finally:
            await daemon.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--polls", default="0.05,0.1,0.2")
    args = ap.parse_args()
    print(f"# {platform.platform()} python {sys.version.split()[0]}")
    print("| poll interval | median | p90 | max | mean |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for poll in (float(p) for p in args.polls.split(",")):
            ms = asyncio.run(measure(poll, args.samples, Path(tmp)))
            print(
                f"| {poll:.2f} s | {statistics.median(ms):.1f} ms | {pct(ms, 90):.1f} ms "
                f"| {max(ms):.1f} ms | {statistics.mean(ms):.1f} ms |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
