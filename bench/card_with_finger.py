"""Card tap to relay while the same daemon reads fingers (issue 5: "card decisions must not
slow down while a finger is being read").

One in-process daemon, as on a door: an RDM6300 simulator and a fingerprint simulator (paced
at 57600 baud, its own thread) on ptys, gpiozero MockFactory pins, the SQLite store with
``synchronous=FULL``. Card taps are timed from the frame's last byte written to the pty to the
lock pin going high (as bench/card_latency.py). Scenarios, one after the other on one daemon:

* ``no_sensor``: a daemon without [fingerprint] (baseline);
* ``sensor_idle``: the fingerprint reader polls (GenImg every poll interval), no finger;
* ``finger_reading``: a finger that is not enrolled is placed and lifted over and over from
  another thread, so the reader captures, extracts and searches continuously and every touch
  is a journaled access_denied (plus assist_requested): loop, serial and store all busy;
* ``library_sync``: the sensor lost its library and the daemon is writing every template
  back (DownChar + Store at 57600 baud) while cards are tapped (notes: templates written
  during the taps of each round).

    PYTHONPATH=. python bench/card_with_finger.py [--taps 500] [--cards 10000] [--templates 100]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from card_latency import TimedPin, door_config, pct, uid_of
from gpiozero.pins.mock import MockFactory

from edgegate import logging_setup
from edgegate.config import Config
from edgegate.daemon.app import Daemon
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.finger_slots import put_finger
from edgegate.store.sealed import load_key

LOCK = 17  # as in card_latency.door_config
BAUD = 57600


def config(tmp: Path, card_port: str, fp_port: str | None) -> Config:
    extra = {} if fp_port is None else {"fingerprint": {"port": fp_port, "baudrate": BAUD}}
    return door_config(tmp / "bench.db", card_port, **extra)


def fill_store(db: Path, cards: int, templates: int, sim: FingerprintSimulator) -> None:
    conn = open_db(db, synchronous="NORMAL")
    creds.bulk_add_cards(conn, [(f"p{i}", "", uid_of(i)) for i in range(cards)])
    key = load_key(db)
    with transaction(conn):
        for i in range(templates):
            creds.upsert_person(conn, creds.Person(f"f{i}"))
            put_finger(conn, key, f"f{i}", f"f{i}.v", "r307", finger_template(f"f{i}"), slot=i)
            sim.enroll(i, f"f{i}")
    conn.close()


async def tap_series(
    daemon: Daemon, factory: MockFactory, sim: Rdm6300Simulator, cards: int, taps: int
) -> list[float]:
    changed = asyncio.Event()
    daemon.outputs.add_listener(lambda name, on: changed.set() if name == "lock" else None)
    pin: TimedPin = factory.pin(LOCK)  # type: ignore[assignment]
    rng = random.Random(11)
    out: list[float] = []
    for _ in range(taps):
        pin.changes = []
        changed.clear()
        sim.tap(uid_of(rng.randrange(cards)))
        t_written = time.perf_counter()
        await asyncio.wait_for(changed.wait(), 5)
        out.append((next(t for t, on in pin.changes if on) - t_written) * 1000)
        while pin.state:  # the relock, before the next tap
            changed.clear()
            if pin.state:
                await asyncio.wait_for(changed.wait(), 5)
        # Random gaps, so taps land at every phase of the finger polling cycle.
        await asyncio.sleep(rng.uniform(0.002, 0.02))
    return out


def toucher(sim: FingerprintSimulator, stop: threading.Event) -> None:
    while not stop.is_set():
        sim.place_finger("stranger")
        time.sleep(0.25)
        sim.lift_finger()
        time.sleep(0.1)


async def with_daemon(cfg, fn) -> None:
    factory = MockFactory(pin_class=TimedPin)
    daemon = Daemon(cfg, pin_factory=factory)
    await daemon.start()
    try:
        await fn(daemon, factory)
    finally:
        await daemon.stop()


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[list[float], list[str]]]:
    """``args.rounds`` rounds of every scenario in turn, so that a change of load on the
    machine during the run hits every scenario alike."""
    results: dict[str, tuple[list[float], list[str]]] = {
        name: ([], []) for name in ("no_sensor", "sensor_idle", "finger_reading", "library_sync")
    }
    n = max(1, args.taps // args.rounds)
    with Rdm6300Simulator() as cards, FingerprintSimulator(paced=True, baudrate=BAUD) as fp:
        fill_store(tmp / "bench.db", args.cards, args.templates, fp)

        async def taps(daemon: Daemon, factory: MockFactory, name: str) -> None:
            results[name][0].extend(await tap_series(daemon, factory, cards, args.cards, n))

        async def with_sensor(daemon: Daemon, factory: MockFactory) -> None:
            service, reader = daemon.finger_library, daemon.readers[-1]
            await service.wait_idle(120)
            assert len(fp.library) == args.templates, "start-up sync changed the library"
            await taps(daemon, factory, "sensor_idle")

            stop = threading.Event()
            thread = threading.Thread(target=toucher, args=(fp, stop))
            denied0, polls0 = daemon.door.counters["denied"], fp.commands[0x01]
            thread.start()
            try:
                await taps(daemon, factory, "finger_reading")
            finally:
                stop.set()
                thread.join()
                fp.lift_finger()
            results["finger_reading"][1].append(
                f"{daemon.door.counters['denied'] - denied0} touches/"
                f"{fp.commands[0x01] - polls0} GenImg"
            )

            written0 = reader.sync_counters.written
            fp.library.clear()  # the sensor lost its library: every template is written back
            service.request()
            await taps(daemon, factory, "library_sync")
            results["library_sync"][1].append(f"{reader.sync_counters.written - written0}")
            await service.wait_idle(300)

        for _ in range(args.rounds):
            await with_daemon(config(tmp, cards.port, None), lambda d, f: taps(d, f, "no_sensor"))
            await with_daemon(config(tmp, cards.port, fp.port), with_sensor)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--taps", type=int, default=500)
    ap.add_argument("--cards", type=int, default=10_000)
    ap.add_argument("--templates", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logging_setup.configure("error", "console")
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    print(f"# card tap to relay with a fingerprint reader on the same daemon, {args.taps} taps")
    print(f"machine: {platform.machine()}, {platform.platform()}, Python {sys.version.split()[0]}")
    print(f"{args.cards:,} cards, {args.templates} templates, fingerprint at {BAUD} baud (paced)")
    print(f"{args.rounds} rounds of every scenario in turn; notes per round")
    print("| scenario | taps | p50 ms | p90 ms | p99 ms | max ms | notes |")
    print("|---|---|---|---|---|---|---|")
    for name, (lat, notes) in results.items():
        print(
            f"| {name} | {len(lat)} | {pct(lat, 50):.2f} | {pct(lat, 90):.2f} "
            f"| {pct(lat, 99):.2f} | {max(lat):.2f} | {', '.join(notes)} |"
        )


if __name__ == "__main__":
    main()
