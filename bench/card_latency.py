"""Card tap to relay: last byte of an RDM6300 frame on the pty -> lock pin high.

Runs the real daemon in-process (pyserial on a pty, gpiozero MockFactory pins, SQLite store)
with N cards enrolled, taps random enrolled cards and times each tap from the moment the last
byte is written to the pty master until gpiozero drives the lock pin high. Also times bare
credential lookups on the same store, the bulk enrolment of N cards and the process RSS.

    python bench/card_latency.py --cards 1000000 --taps 1000
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from edgegate.config import Config, parse
from edgegate.daemon.app import Daemon
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db

LOCK = 17


class TimedPin(MockPin):
    """A gpiozero mock pin that timestamps every change (perf_counter)."""

    changes: list[tuple[float, bool]]

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed:
            self.changes = getattr(self, "changes", [])
            self.changes.append((time.perf_counter(), bool(value)))
        return changed


async def time_to_open(pin: TimedPin, changed: asyncio.Event, act: Callable[[], None]) -> float:
    """Milliseconds from the end of ``act()`` (a card presented) to the lock pin going high;
    returns after the relock, ready for the next card. ``changed`` is set by the outputs'
    listener on every lock change."""
    pin.changes = []
    changed.clear()
    act()
    t_done = time.perf_counter()
    await asyncio.wait_for(changed.wait(), 5)
    t_high = next(t for t, on in pin.changes if on)
    while pin.state:  # the relock, before the next card
        changed.clear()
        if pin.state:
            await asyncio.wait_for(changed.wait(), 5)
    return (t_high - t_done) * 1000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def uid_of(i: int) -> str:
    return f"{(i * 2654435761) & 0xFFFFFFFFFF:010X}"


def enrol(db: Path, n: int) -> float:
    conn = open_db(db, synchronous="NORMAL")
    t0 = time.perf_counter()
    batch = 100_000
    for start in range(0, n, batch):
        rows = [(f"p{i}", "", uid_of(i)) for i in range(start, min(n, start + batch))]
        creds.bulk_add_cards(conn, rows)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def lookups(db: Path, n: int, count: int) -> list[float]:
    conn = open_db(db, check=False)
    rng = random.Random(7)
    out = []
    for _ in range(count):
        uid = uid_of(rng.randrange(n))
        t0 = time.perf_counter()
        rec = creds.lookup(conn, "card", uid)
        out.append((time.perf_counter() - t0) * 1000)
        assert rec is not None
    conn.close()
    return out


def door_config(db: Path, card_port: str, **sections: Any) -> Config:
    """The benchmark door: one RDM6300 reader, only the lock pin, warnings only."""
    return parse(
        {
            "door": {"site": "bench", "id": "d", "unlock_seconds": 0.005},
            "gpio": {
                "pin_factory": "mock",
                "lock": LOCK,
                "buzzer": None,
                "green_led": None,
                "red_led": None,
            },
            "readers": [{"type": "rdm6300", "port": card_port, "hold_off_seconds": 0}],
            "storage": {"path": str(db)},
            "logging": {"level": "warning"},
            **sections,
        },
        Path("bench.toml"),
    )


async def taps(
    db: Path,
    n: int,
    count: int,
    *,
    extra: dict[str, Any] | None = None,
    started: Callable[[Daemon], Awaitable[None]] | None = None,
    finished: Callable[[Daemon], None] | None = None,
) -> tuple[list[float], float]:
    """Tap ``count`` random enrolled cards. ``extra`` adds config sections (e.g. a camera);
    ``started``/``finished`` run after the daemon is up and before it stops (other benches)."""
    factory = MockFactory(pin_class=TimedPin)
    with Rdm6300Simulator() as sim:
        config = door_config(db, sim.port, **(extra or {}))
        daemon = Daemon(config, pin_factory=factory)
        # Wait on the outputs' own change notifications rather than polling: a polling
        # coroutine would share the loop with the daemon and add its own jitter.
        changed = asyncio.Event()
        daemon.outputs.add_listener(lambda name, on: changed.set() if name == "lock" else None)
        await daemon.start()
        if started is not None:
            await started(daemon)
        pin: TimedPin = factory.pin(LOCK)  # type: ignore[assignment]
        rng = random.Random(11)
        results: list[float] = []
        try:
            for _ in range(count):
                uid = uid_of(rng.randrange(n))
                results.append(await time_to_open(pin, changed, lambda u=uid: sim.tap(u)))
                await asyncio.sleep(0.002)
            memory = rss_mb()
            if finished is not None:
                finished(daemon)
        finally:
            await daemon.stop()
    return results, memory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cards", type=int, default=1_000_000)
    ap.add_argument("--taps", type=int, default=1000)
    args = ap.parse_args()
    from edgegate import logging_setup

    logging_setup.configure("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        enrol_s = enrol(db, args.cards)
        size_mb = db.stat().st_size / 1e6
        look = lookups(db, args.cards, 10_000)
        lat, memory = asyncio.run(taps(db, args.cards, args.taps))
    print(f"# card tap to relay, {args.cards:,} cards, {args.taps} taps")
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"enrolment of {args.cards:,} cards: {enrol_s:.1f} s "
        f"({args.cards / enrol_s:,.0f}/s), store {size_mb:.0f} MB"
    )
    print(f"lookup (10,000 random): p50 {pct(look, 50):.3f} ms, p99 {pct(look, 99):.3f} ms")
    print(
        f"frame last byte -> lock pin high: p50 {pct(lat, 50):.2f} ms, "
        f"p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms, mean {statistics.mean(lat):.2f} ms"
    )
    print(f"daemon process RSS after the taps: {memory:.0f} MB")


if __name__ == "__main__":
    main()
