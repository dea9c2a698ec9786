"""Fire input to lock relay released: latency through gpiozero MockFactory pins.

The fire pin is driven low from a separate thread, as gpiozero's callback thread does on a
Pi; the time is taken from just before the pin changes to the moment the lock output is
switched (DoorOutputs listener, on the loop). Two scenarios: an idle door, and a door whose
store thread is stalled (a decision in flight, as during a WAL checkpoint on an SD card).

    python bench/fire_release.py [--n 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import structlog
from gpiozero.pins.mock import MockFactory

from edgegate.config import parse
from edgegate.daemon.app import Daemon

FIRE, LOCK = 13, 17


def _config(tmp: Path):
    return parse(
        {
            "door": {"site": "bench", "id": "d1"},
            "gpio": {"pin_factory": "mock", "lock": LOCK, "fire_alarm": FIRE},
            "storage": {"path": str(tmp / "bench.db")},
            "daemon": {"watchdog": False},
        },
        tmp / "bench.toml",
    )


async def _measure(daemon: Daemon, factory: MockFactory, n: int, stall: bool) -> list[float]:
    loop = asyncio.get_running_loop()
    released = asyncio.Event()
    t_release = [0.0]

    def on_output(name: str, on: bool) -> None:
        if name == "lock" and on:
            t_release[0] = time.perf_counter()
            released.set()

    daemon.outputs.add_listener(on_output)
    pin = factory.pin(FIRE)
    samples: list[float] = []
    for _ in range(n):
        gate = threading.Event()
        stalled = daemon.store.call(lambda _c, g=gate: g.wait(5)) if stall else None
        stall_task = asyncio.ensure_future(stalled) if stalled else None
        released.clear()
        t0 = [0.0]

        def drive(t0: list[float] = t0) -> None:
            t0[0] = time.perf_counter()
            pin.drive_low()

        thread = threading.Thread(target=drive)
        thread.start()
        await asyncio.wait_for(released.wait(), 5)
        samples.append((t_release[0] - t0[0]) * 1000)
        thread.join()
        gate.set()
        if stall_task:
            await stall_task
        await loop.run_in_executor(None, pin.drive_high)
        await asyncio.sleep(0.002)
        daemon.door.set_mode("normal", "bench")
        await daemon.door.drain()
        assert not daemon.outputs.unlocked
    return samples


def _report(name: str, s: list[float]) -> None:
    s = sorted(s)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    print(
        f"{name:<28} n={len(s)}  median={statistics.median(s):.3f} ms  p95={p(0.95):.3f} ms  "
        f"p99={p(0.99):.3f} ms  max={s[-1]:.3f} ms"
    )


async def main(n: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        factory = MockFactory()
        daemon = Daemon(_config(Path(tmp)), pin_factory=factory)
        await daemon.start()
        try:
            _report("idle door", await _measure(daemon, factory, n, stall=False))
            _report("store stalled (in flight)", await _measure(daemon, factory, n, stall=True))
        finally:
            await daemon.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    asyncio.run(main(ap.parse_args().n))
