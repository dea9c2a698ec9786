"""PN532 end to end: the simulated chip on a real pty, the real driver and Daemon, mock pins."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edgegate.sim.pn532 import Pn532Simulator
from tests.readers.conftest import decision, door_config
from tests.rules.conftest import enrol, run, running_door

UID4 = "00A1B2C3"  # leading zero kept
UID7 = "04112233445566"  # NTAG
UID10 = "0A0B0C0D0E0F10111213"  # triple-size
UNKNOWN = "DEADBEEF"


def pn532_config(tmp_path: Path, port: str) -> Any:
    reader = {
        "type": "pn532",
        "port": port,
        "name": "nfc",
        "poll_interval_seconds": 0.02,
        "timeout_seconds": 0.2,
        "hold_off_seconds": 0.3,
    }
    return door_config(tmp_path, reader)


def test_cards_of_every_uid_length_grant_and_unknown_denies(tmp_path: Path):
    async def scenario():
        with Pn532Simulator() as sim:
            cfg = pn532_config(tmp_path, sim.port)
            for person, uid in (("four", UID4), ("seven", UID7), ("ten", UID10)):
                enrol(cfg.storage.path, person, uid)
            async with running_door(cfg, {}) as d:
                reader = d.daemon.readers[0]
                assert reader.healthy and reader.chip.firmware.ic == 0x32
                assert sim.sam_configured
                for person, uid in (("four", UID4), ("seven", UID7), ("ten", UID10)):
                    sim.present(uid)
                    ev = await decision(d)
                    assert ev.type == "access_granted", ev.payload
                    assert ev.payload["credential"] == uid and ev.payload["person"] == person
                    assert ev.payload["reader"] == "nfc" and ev.payload["kind"] == "card"
                    sim.remove()
                    await asyncio.sleep(0.35)  # past the hold-off
                sim.present(UNKNOWN)
                ev = await decision(d)
                assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
                assert ev.payload["credential"] == UNKNOWN

    run(scenario())


def test_card_left_on_reader_counts_once_and_again_after_removal(tmp_path: Path):
    async def scenario():
        with Pn532Simulator() as sim:
            cfg = pn532_config(tmp_path, sim.port)
            enrol(cfg.storage.path, "four", UID4)
            async with running_door(cfg, {}) as d:
                reader = d.daemon.readers[0]
                sim.present(UID4)
                assert (await decision(d)).type == "access_granted"
                polls = reader.polls
                await asyncio.sleep(0.6)  # about 25 polls see the same card
                assert reader.polls > polls + 10
                assert [e for e in await d.quiet(0.05) if e.type.startswith("access")] == []
                assert reader.counters.repeats_suppressed >= 10
                sim.remove()
                await asyncio.sleep(0.4)
                sim.present(UID4)
                assert (await decision(d)).type == "access_granted"
                assert reader.counters.reads == 2

    run(scenario())


def test_corrupt_answer_is_asked_again_with_nack_without_a_fault(tmp_path: Path):
    async def scenario():
        with Pn532Simulator() as sim:
            cfg = pn532_config(tmp_path, sim.port)
            enrol(cfg.storage.path, "seven", UID7)
            async with running_door(cfg, {}) as d:
                reader = d.daemon.readers[0]
                sim.present(UID7)
                sim.corrupt_next(1)
                ev = await decision(d)
                assert ev.type == "access_granted" and ev.payload["credential"] == UID7
                assert reader.counters.bad_checksum == 1
                assert sim.nacks_received == 1 and reader.chip.nacks_sent == 1
                assert reader.counters.faults == 0 and reader.healthy

    run(scenario())


def test_unplug_reports_fault_and_replug_recovers(tmp_path: Path):
    async def scenario():
        with Pn532Simulator() as sim:
            cfg = pn532_config(tmp_path, sim.port)
            enrol(cfg.storage.path, "ten", UID10)
            async with running_door(cfg, {}) as d:
                reader = d.daemon.readers[0]
                sim.unplug()
                ev = await d.wait_for("reader_fault")
                assert ev.payload["reader"] == "nfc"
                assert "no answer" in ev.payload["error"]
                assert not reader.healthy
                sim.present(UID10)  # nobody hears it while the chip is gone
                await asyncio.sleep(0.3)
                sim.replug()  # back asleep: the reader must wake it and handshake again
                ev = await d.wait_for("reader_recovered", timeout=5)
                assert ev.payload["reader"] == "nfc"
                assert reader.healthy and reader.counters.reopens == 1
                ev = await decision(d)
                assert ev.type == "access_granted" and ev.payload["person"] == "ten"
                assert [e.type for e in d.seen].count("reader_fault") == 1

    run(scenario())
