"""Finger placed -> credential read delivered to the sink, with the module paced at its baud rate.

The simulated module (edgegate.sim.fingerprint) writes its answers at the real byte rate of
57600 baud 8N1 (5.76 bytes/ms) and holds each command for its wire time before acting, so the
figures include the time the bytes spend on the wire. The module's own compute time (image
capture, feature extraction, search) is NOT modelled unless given with --genimg-ms etc.

For each touch: lift, let the reader see "no finger", wait a random fraction of the poll
interval (the finger lands at a random point of the polling cycle), place the finger, and time
until ``sink.credential`` is called. Wire time = bytes exchanged in that window * 10 / baud.

    python bench/fingerprint_latency.py [--touches 40] [--polls 0.1,0.15,0.2] [--library 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import statistics
import time

import structlog

from edgegate.hardware.base import CredentialRead
from edgegate.hardware.fingerprint.protocol import Instruction, wire_seconds
from edgegate.hardware.fingerprint.reader import FingerprintReader
from edgegate.sim.fingerprint import FingerprintSimulator

BAUD = 57600
# The GenImg command that finds the finger is on the wire before the module executes it, so it
# belongs to the poll wait, not to the "after poll" part.
GENIMG_COMMAND_WIRE = wire_seconds(12, BAUD)


class TimingSink:
    def __init__(self, sim: FingerprintSimulator) -> None:
        self.sim = sim
        self.event = asyncio.Event()
        self.t = 0.0
        self.wire_bytes = 0
        self.faults: list[str] = []

    def credential(self, read: CredentialRead) -> None:
        self.t = time.perf_counter()
        self.wire_bytes = self.sim.bytes_in + self.sim.bytes_out
        self.event.set()

    def fault(self, reader: str, reason: str) -> None:
        self.faults.append(reason)

    def recovered(self, reader: str) -> None:
        pass


async def measure(poll: float, touches: int, library: int, delays: dict[int, float]) -> dict:
    sim = FingerprintSimulator(paced=True, baudrate=BAUD, capacity=1000, op_delays=delays)
    sim.start()
    for slot in range(library):
        sim.enroll(slot, f"person-{slot}")
    sink = TimingSink(sim)
    reader = FingerprintReader("bench", sink, sim.port, baudrate=BAUD, poll_interval=poll)
    task = asyncio.create_task(reader.run())
    sim.trace = []
    lat, wire, wait = [], [], []
    try:
        while not reader.healthy:
            await asyncio.sleep(0.01)
        for i in range(touches):
            sim.lift_finger()
            n = sim.commands[Instruction.GEN_IMG]
            while sim.commands[Instruction.GEN_IMG] < n + 2:  # reader has seen the lift
                await asyncio.sleep(0.005)
            await asyncio.sleep(random.uniform(0, poll))
            sink.event.clear()
            sim.trace.clear()
            bytes0 = sim.bytes_in + sim.bytes_out
            t0 = time.perf_counter()
            sim.place_finger(f"person-{(i * 37) % library}")
            await asyncio.wait_for(sink.event.wait(), 10)
            lat.append(sink.t - t0)
            wire.append(wire_seconds(sink.wire_bytes - bytes0, BAUD))
            # The GenImg that saw the finger (executed by the module after the placement).
            first = next(t for t, ins, code in sim.trace if ins == Instruction.GEN_IMG and not code)
            wait.append(first - t0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sim.stop()
    return {"lat": lat, "wire": wire, "wait": wait, "faults": sink.faults}


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--touches", type=int, default=40)
    ap.add_argument("--polls", default="0.1,0.15,0.2", help="poll intervals in seconds")
    ap.add_argument("--library", type=int, default=100, help="templates in the sensor")
    ap.add_argument("--genimg-ms", type=float, default=0.0, help="module compute per GenImg")
    ap.add_argument("--img2tz-ms", type=float, default=0.0, help="module compute per Img2Tz")
    ap.add_argument("--search-ms", type=float, default=0.0, help="module compute per Search")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    delays = {
        Instruction.GEN_IMG: args.genimg_ms / 1000,
        Instruction.IMG2TZ: args.img2tz_ms / 1000,
        Instruction.SEARCH: args.search_ms / 1000,
    }
    # The bytes of one recognised touch: GenImg 12+12, Img2Tz 13+12, Search 17+16.
    exchange = 12 + 12 + 13 + 12 + 17 + 16
    print(f"one recognised touch exchanges {exchange} bytes = {ms(wire_seconds(exchange))} ms")
    print(f"touches={args.touches} library={args.library} baud={BAUD} module compute (ms): "
          f"GenImg {args.genimg_ms} Img2Tz {args.img2tz_ms} Search {args.search_ms}")  # fmt: skip
    header = (
        "| poll s | median ms | p90 ms | max ms | poll wait ms | after poll ms | wire ms "
        "| wire share of total | wire share after poll |"
    )
    print(header)
    print("|" + "---|" * 9)
    for poll in (float(p) for p in args.polls.split(",")):
        r = asyncio.run(measure(poll, args.touches, args.library, delays))
        lat, wire, wait = r["lat"], r["wire"], r["wait"]
        # "after poll": from the GenImg that sees the finger to the read (wire + software).
        active = [latency - w for latency, w in zip(lat, wait, strict=True)]
        mean_wire = statistics.mean(wire)
        p90 = statistics.quantiles(lat, n=10)[-1]
        print(
            f"| {poll} | {ms(statistics.median(lat))} | {ms(p90)} | {ms(max(lat))} "
            f"| {ms(statistics.mean(wait))} | {ms(statistics.mean(active))} | {ms(mean_wire)} "
            f"| {mean_wire / statistics.mean(lat):.0%} "
            f"| {(mean_wire - GENIMG_COMMAND_WIRE) / statistics.mean(active):.0%} |"
        )
        if r["faults"]:
            print("faults:", r["faults"])


if __name__ == "__main__":
    main()
