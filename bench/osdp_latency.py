"""OSDP reader timings: Secure Channel handshake, card to relay, offline detection.

Runs libosdp's own PD (the simulator) on a pty against the real daemon in-process, with the
Secure Channel on: gpiozero MockFactory pins (timestamping), SQLite store, decision, journal.

* handshake: reader task started -> reader healthy (ID, CAP, CHLNG/SCRYPT done), N times;
* card to relay: the PD's ``submit_event`` call returned -> lock pin high. This includes waiting for
  the next poll (the PD can only answer a poll, every 50 ms), the CP's refresh period and the
  decision. ``--burst`` also presents cards 10-30 ms after the previous decision, while its
  LED/buzzer/text commands are still on the line (each holds the next poll back);
* offline: PD powered off -> reader_fault.

A pty has no baud rate: bytes cross at once, so wire time at the configured baud rate is not
included (an SC poll + card reply is about 60 bytes: ~60 ms at 9600 baud, ~5 ms at 115200).

    PYTHONPATH=. python bench/osdp_latency.py --taps 200 --handshakes 20 --offline 2 --burst
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from card_latency import LOCK, TimedPin, pct, time_to_open
from gpiozero.pins.mock import MockFactory

from edgegate.config import parse
from edgegate.daemon.app import Daemon
from edgegate.hardware.osdp_reader import OsdpReader
from edgegate.sim.osdp import OsdpReaderSimulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction


class NullSink:
    def __init__(self) -> None:
        self.faults: list[float] = []

    def credential(self, read: object) -> None: ...

    def fault(self, reader: str, reason: str) -> None:
        self.faults.append(time.perf_counter())

    def recovered(self, reader: str) -> None: ...

    def reader_event(self, reader: str, type_: str, **fields: object) -> None: ...


def summary(values: list[float], unit: str = "ms") -> str:
    return (
        f"p50 {pct(values, 50):.1f} {unit}, p99 {pct(values, 99):.1f} {unit}, "
        f"max {max(values):.1f} {unit}, mean {statistics.mean(values):.1f} {unit} (n={len(values)})"
    )


async def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.001)


async def handshakes(key_file: Path, scbk: bytes, n: int) -> list[float]:
    out = []
    with OsdpReaderSimulator(scbk=scbk) as sim:
        for _ in range(n):
            reader = OsdpReader("bench", NullSink(), sim.port, scbk_file=key_file)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            task = asyncio.create_task(reader.run())
            await wait_for(lambda r=reader: r.healthy, 10)
            out.append((time.perf_counter() - t0) * 1000)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            # A fresh PD session for the next round, as after a reader power cycle.
            sim.power_off()
            sim.power_on()
    return out


async def offline(key_file: Path, scbk: bytes, n: int) -> list[float]:
    out = []
    for _ in range(n):
        with OsdpReaderSimulator(scbk=scbk) as sim:
            sink = NullSink()
            reader = OsdpReader("bench", sink, sim.port, scbk_file=key_file)  # type: ignore[arg-type]
            task = asyncio.create_task(reader.run())
            await wait_for(lambda r=reader: r.healthy, 10)
            t0 = time.perf_counter()
            sim.power_off()
            await wait_for(lambda s=sink: s.faults, 30)
            out.append(sink.faults[0] - t0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return out


async def taps(tmp: Path, key_file: Path, scbk: bytes, count: int, gap: float) -> list[float]:
    db = tmp / "bench.db"
    conn = open_db(db, synchronous="NORMAL")
    uids = [secrets.token_hex(4).upper() for _ in range(100)]
    with transaction(conn):
        for i, uid in enumerate(uids):
            creds.upsert_person(conn, creds.Person(f"p{i}", ""))
            creds.add_credential(conn, "card", uid, f"p{i}")
    conn.close()
    factory = MockFactory(pin_class=TimedPin)
    rng = random.Random(5)
    results: list[float] = []
    with OsdpReaderSimulator(scbk=scbk) as sim:
        config = parse(
            {
                "door": {"site": "bench", "id": "d", "unlock_seconds": 0.005},
                "gpio": {"pin_factory": "mock", "lock": LOCK, "buzzer": None},
                "readers": [{"type": "osdp", "port": sim.port, "scbk_file": str(key_file)}],
                "storage": {"path": str(db)},
                "logging": {"level": "warning"},
            },
            Path("bench.toml"),
        )
        daemon = Daemon(config, pin_factory=factory)
        changed = asyncio.Event()
        daemon.outputs.add_listener(lambda name, on: changed.set() if name == "lock" else None)
        await daemon.start()
        await wait_for(lambda: daemon.readers[0].healthy, 10)
        pin: TimedPin = factory.pin(LOCK)  # type: ignore[assignment]
        try:
            for i in range(count):
                uid = uids[i % len(uids)]
                results.append(await time_to_open(pin, changed, lambda u=uid: sim.present_card(u)))
                # A random pause: a fixed one would lock the cards to one phase of the poll
                # cycle (about 70 ms idle) and measure that phase only.
                await asyncio.sleep(gap * (0.5 + rng.random()))
        finally:
            await daemon.stop()
    return results


async def main_async(args: argparse.Namespace) -> None:
    scbk = secrets.token_bytes(16)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        key_file = tmp / "bench.scbk"
        key_file.write_text(scbk.hex())
        hs = await handshakes(key_file, scbk, args.handshakes)
        lat = await taps(tmp, key_file, scbk, args.taps, args.gap)
        burst = await taps(tmp, key_file, scbk, args.taps, 0.02) if args.burst else []
        off = await offline(key_file, scbk, args.offline) if args.offline else []
    print("# OSDP reader (libosdp 3.2, Secure Channel on, PD simulator on a pty)")
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"SC handshake, reader started -> healthy: {summary(hs)}")
    print(f"card (PD submit_event) -> lock pin high, ~{args.gap:g} s apart: {summary(lat)}")
    if burst:
        print(f"the same, 10-30 ms after the previous decision: {summary(burst)}")
    if off:
        print(f"PD powered off -> reader_fault: {summary(off, 's')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--taps", type=int, default=200)
    ap.add_argument("--handshakes", type=int, default=20)
    ap.add_argument("--offline", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.3, help="mean seconds between two cards")
    ap.add_argument(
        "--burst", action="store_true", help="also cards 10 ms after the previous decision"
    )
    args = ap.parse_args()
    from edgegate import logging_setup

    logging_setup.configure("warning", "console")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
