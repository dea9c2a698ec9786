"""Wiegand end to end: edge timelines through the reader's event-to-decoder path into the
real Daemon and its decisions (mock pins, SQLite).

The edges come from ``edgegate.sim.wiegand`` (a pipe standing in for the GPIO character
device): this kernel has no gpio-sim/configfs, so real D0/D1 lines cannot exist here. The
libgpiod adapter itself is exercised by ``test_gpiod_adapter_on_gpio_sim`` when gpio-sim is
available, and skipped (missing real hardware) when it is not.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from edgegate.hardware.wiegand.decoder import Edge
from edgegate.hardware.wiegand.formats import card_value, encode_card
from edgegate.sim.wiegand import SimulatedWiegand, frame_edges
from tests.readers.conftest import decision, door_config, wiegand
from tests.rules.conftest import enrol, run, running_door

CARD = (26, 123, 45678)
CARD34 = (34, 4660, 22136)


def wiegand_config(tmp_path: Path, name: str) -> Any:
    return door_config(tmp_path, wiegand(name, hold_off_seconds=0.2, frame_gap_ms=20))


def test_cards_from_timelines_decide_and_bad_frames_are_dropped(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("wg") as wires:
            cfg = wiegand_config(tmp_path, "wg")
            enrol(cfg.storage.path, "alice", card_value(*CARD))
            enrol(cfg.storage.path, "bob", card_value(*CARD34))
            async with running_door(cfg, {}, edge_sources={"wg": wires}) as d:
                reader = d.daemon.readers[0]
                wires.card(*CARD)
                ev = await decision(d)
                assert ev.type == "access_granted" and ev.payload["person"] == "alice"
                assert ev.payload["credential"] == "7BB26E" and ev.payload["reader"] == "wg"
                wires.card(*CARD34)
                ev = await decision(d)
                assert ev.type == "access_granted" and ev.payload["person"] == "bob"
                wires.card(26, 1, 2)
                ev = await decision(d)
                assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
                # Bad parity and a wrong length: counted, dropped, no decision.
                bad = encode_card(*CARD)
                bad[5] ^= 1
                wires.send(frame_edges(bad))
                await asyncio.sleep(0.1)
                wires.send(frame_edges(encode_card(*CARD)[:-3]))
                assert await d.quiet(0.2) == []
                assert reader.counters.bad_checksum == 1 and reader.counters.bad_frames == 1
                # 3 us spikes on the wires between bits do not spoil a good frame.
                edges = frame_edges(encode_card(*CARD))
                for i, line in ((3, 0), (10, 1), (20, 0)):
                    at = i * 2_000_000 + 700_000
                    edges += [Edge(at, line, False), Edge(at + 3_000, line, True)]
                await asyncio.sleep(0.25)  # past the hold-off of alice's first read
                wires.send(sorted(edges))
                ev = await decision(d)
                assert ev.payload["person"] == "alice"
                assert reader.status()["wiegand_short_pulses"] == 3
                assert reader.counters.reads == 4

    run(scenario())


def test_wires_gone_is_a_fault_and_back_is_recovery(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("wg2") as wires:
            cfg = wiegand_config(tmp_path, "wg2")
            enrol(cfg.storage.path, "alice", card_value(*CARD))
            async with running_door(cfg, {}, edge_sources={"wg2": wires}) as d:
                wires.unplug()
                ev = await d.wait_for("reader_fault")
                assert ev.payload["reader"] == "wg2"
                wires.replug()
                await d.wait_for("reader_recovered", timeout=5)
                wires.card(*CARD)
                assert (await decision(d)).type == "access_granted"

    run(scenario())


GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


@pytest.mark.skipif(
    not GPIO_SIM.is_dir(),
    reason="missing real hardware: no GPIO lines and no gpio-sim (configfs) in this kernel",
)
def test_gpiod_adapter_on_gpio_sim(tmp_path: Path):
    """On a kernel with gpio-sim: two simulated lines, pulled low and high by the test, read
    by the real libgpiod adapter with kernel timestamps."""
    import time

    from edgegate.hardware.wiegand.decoder import Timing, WiegandDecoder
    from edgegate.hardware.wiegand.formats import decode
    from edgegate.hardware.wiegand.gpio import GpiodEdgeSource

    dev = GPIO_SIM / f"edgegate{os.getpid()}"
    (dev / "bank0").mkdir(parents=True)
    try:
        (dev / "bank0" / "num_lines").write_text("2")
        (dev / "live").write_text("1")
        chip = "/dev/" + (dev / "bank0" / "chip_name").read_text().strip()
        sysfs = Path("/sys/devices/platform") / (dev / "dev_name").read_text().strip()
        pulls = [next(sysfs.glob(f"*/sim_gpio{i}")) / "pull" for i in (0, 1)]
        for p in pulls:
            p.write_text("pull-up")
        source = GpiodEdgeSource(chip, 0, 1)
        source.open()
        try:
            for bit in encode_card(26, 7, 99):
                pulls[bit].write_text("pull-down")
                pulls[bit].write_text("pull-up")
                time.sleep(0.002)
            time.sleep(0.05)
            # Two sysfs writes make a pulse of some microseconds, not a reader's 50 us.
            dec = WiegandDecoder(Timing(min_pulse_ns=0, max_pulse_ns=50_000_000))
            frames = [f for e in source.read() for f in dec.feed(e)]
            last = dec.flush()
            frames += [last] if last else []
            assert [decode(f) for f in frames] == [decode(encode_card(26, 7, 99))]
        finally:
            source.close()
    finally:
        (dev / "live").write_text("0")
        (dev / "bank0").rmdir()
        dev.rmdir()
