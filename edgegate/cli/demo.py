"""``edgegate demo``: the whole door on this machine, simulated hardware, no setup.

A simulated RDM6300 and a simulated PN532 on pseudo-terminals, gpiozero mock pins, a store in
a temporary directory that is removed at the end. It taps a known card, an unknown card, a
corrupted frame, a lost card, an expired card, an NFC badge resting on the PN532 and a held
card, and prints every decision and every output change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edgegate import logging_setup
from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.daemon.app import Daemon
from edgegate.sim.pn532 import Pn532Simulator
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.journal import Event

CARDS = {
    "alice": ("Alice Martin", "0F00BC614E"),
    "bob": ("Bob Okafor", "1A2B3C4D5E"),
    "carol": ("Carol Jensen", "0E0E0E0E0E"),
    "dave": ("Dave Lost-Card", "4400DEAD01"),
    "erin": ("Erin Novak", "04A1B2C3D4E5F6"),  # NTAG badge on the PN532
}
UNKNOWN_CARD = "7700112233"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole door with simulated hardware, no setup")
    p.add_argument("--speed", type=float, default=1.0, help="time scale (2 = twice as fast)")
    p.add_argument("--keep", action="store_true", help="keep the temporary store and config")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--door", action="store_true", help="one door on its own (the default)")
    kind.add_argument(
        "--site",
        action="store_true",
        help="a whole site: mosquitto, the office with its console, three doors with traffic",
    )
    p.add_argument("--port", type=int, default=8080, help="with --site: the console's port")
    p.add_argument("--seconds", type=float, help="with --site: stop after this long")
    p.set_defaults(func=cmd_demo)


def demo_config(workdir: Path, port: str, nfc_port: str | None = None) -> Config:
    nfc = [{"type": "pn532", "port": nfc_port, "name": "nfc"}] if nfc_port else []
    return parse(
        {
            "door": {"site": "demo", "id": "front", "unlock_seconds": 2},
            "gpio": {
                "pin_factory": "mock",
                "lock": 17,
                "green_led": 27,
                "red_led": 22,
                "buzzer": 23,
            },
            "readers": [
                {"type": "rdm6300", "port": port, "name": "entry", "direction": "in"},
                *nfc,
            ],
            "storage": {"path": str(workdir / "edgegate.db")},
            "logging": {"level": "warning", "format": "console"},
        },
        workdir / "demo.toml",
    )


def enrol_demo_people(db: Path, now: float) -> None:
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        for pid, (name, uid) in CARDS.items():
            creds.upsert_person(conn, creds.Person(pid, name))
            valid_until = now - 86400 if pid == "carol" else None  # carol's pass ended
            creds.add_credential(conn, "card", uid, pid, valid_until=valid_until)
        creds.set_credential_enabled(conn, "card", CARDS["dave"][1], False)  # lost card
    conn.close()


class Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()

    def line(self, text: str) -> None:
        print(f"{time.monotonic() - self.t0:7.2f}s  {text}", file=self.out, flush=True)

    def on_output(self, name: str, on: bool) -> None:
        labels = {
            "lock": ("relay: UNLOCKED", "relay: locked"),
            "green_led": ("green LED on", "green LED off"),
            "red_led": ("red LED on", "red LED off"),
            "buzzer": ("buzzer on", "buzzer off"),
        }
        self.line("    " + labels[name][0 if on else 1])

    def on_event(self, event: Event) -> None:
        p = event.payload
        if event.type == "access_granted":
            self.line(f"ACCESS GRANTED  {p.get('person')} ({p.get('kind')} {p.get('credential')})")
        elif event.type == "access_denied":
            who = p.get("person") or "unknown person"
            self.line(
                f"ACCESS DENIED   {who} ({p.get('kind')} {p.get('credential')}) "
                f"reason={p.get('reason')}"
            )
        else:
            self.line(f"EVENT {event.type} {p}")


async def run_demo(workdir: Path, speed: float, out: TextIO) -> int:
    pr = Printer(out)
    with Rdm6300Simulator() as sim, Pn532Simulator() as nfc:
        config = demo_config(workdir, sim.port, nfc.port)
        enrol_demo_people(config.storage.path, time.time())
        pr.line(
            f"store {config.storage.path}: {len(CARDS)} people enrolled "
            "(carol's card expired yesterday, dave's card reported lost)"
        )
        pr.line(
            f"simulated RDM6300 on {sim.port}; gpiozero mock pins: lock=GPIO17 "
            "green=GPIO27 red=GPIO22 buzzer=GPIO23"
        )
        daemon = Daemon(config)
        daemon.outputs.add_listener(pr.on_output)
        daemon.door.add_listener(pr.on_event)
        await daemon.start()

        async def pause(seconds: float) -> None:
            await asyncio.sleep(seconds / speed)

        try:
            await pause(0.3)
            steps: list[tuple[str, Callable[[], object]]] = [
                ("alice taps her card", lambda: sim.tap(CARDS["alice"][1])),
                ("an unknown card is tapped", lambda: sim.tap(UNKNOWN_CARD)),
                (
                    "a corrupted frame arrives (bad checksum)",
                    lambda: sim.tap_bad_checksum(CARDS["alice"][1]),
                ),
                ("random serial noise arrives", lambda: sim.noise(24)),
                ("dave taps the card he reported lost", lambda: sim.tap(CARDS["dave"][1])),
                ("carol taps her expired card", lambda: sim.tap(CARDS["carol"][1])),
            ]
            for title, action in steps:
                pr.line(f"--- {title}")
                before = daemon.readers[0].counters.as_dict()
                action()
                await pause(2.6 if "alice" in title else 1.8)
                after = daemon.readers[0].counters.as_dict()
                changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
                if changed and "reads" not in changed:
                    pr.line(f"    reader counted {changed}: no decision, door stays locked")
            pr.line("--- erin rests her NFC badge (7-byte UID) on the PN532 for 1.5 s")
            nfc.present(CARDS["erin"][1])
            await pause(1.5)
            nfc.remove()
            await pause(1.0)
            pr.line("--- bob holds his card on the reader for 1.5 s (frames repeat)")
            frames = await sim.hold(CARDS["bob"][1], 1.5 / speed)
            await pause(2.6)
            await daemon.door.drain()
            reader = daemon.readers[0]
            c = reader.counters
            pr.line(
                f"reader: {c.reads} reads, {frames} frames from bob counted once "
                f"({c.repeats_suppressed} repeats suppressed), {c.bad_checksum} bad "
                f"checksum, {c.bad_frames} bad frames, {c.noise_bytes} noise bytes"
            )
            lat = sorted(daemon.door.latencies_ms)
            if lat:
                pr.line(
                    f"frame-to-relay latency: median {lat[len(lat) // 2]:.2f} ms, "
                    f"max {lat[-1]:.2f} ms over {len(lat)} decisions"
                )
        finally:
            await daemon.stop()
        final = daemon.outputs.final_state or {}
        pr.line(f"relay after stop: {'UNLOCKED' if final.get('unlocked') else 'locked'}")
    conn = open_db(config.storage.path, readonly=True, check=False)
    rows = conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()
    conn.close()
    pr.line(f"journal: {len(rows)} events")
    for seq, type_, payload in rows:
        print(f"           #{seq} {type_} {payload}", file=out)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.site:
        from edgegate.cli.demo_site import cmd_site

        return cmd_site(args)
    # Logs go to stdout too, so warnings appear in order with the demo's own lines.
    logging_setup.configure("warning", "console", to_stdout=True)
    workdir = Path(tempfile.mkdtemp(prefix="edgegate-demo-"))
    try:
        return asyncio.run(run_demo(workdir, max(args.speed, 0.01), sys.stdout))
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)
