"""The PN532 driver against the simulated chip on a pty: wake-up, error frames, bad answers."""

from __future__ import annotations

import asyncio

import pytest

from edgegate.hardware.pn532.driver import (
    IN_LIST_PASSIVE_TARGET,
    Pn532,
    Pn532Error,
    Pn532Timeout,
    parse_target,
)
from edgegate.sim.pn532 import Pn532Simulator


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_asleep_chip_ignores_commands_until_woken():
    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port, timeout=0.1, retries=0)
            chip.open()
            try:
                with pytest.raises(Pn532Timeout):
                    await chip.sam_configuration()  # no wake-up burst first
                assert not sim.awake
                firmware = await chip.handshake()
                assert (firmware.ic, firmware.version, firmware.revision) == (0x32, 1, 6)
                assert sim.awake and sim.sam_configured
                assert await chip.list_passive_target() is None
                with pytest.raises(ValueError):
                    sim.present("0102")  # not an ISO 14443-A UID length
            finally:
                chip.close()

    run(scenario())


def test_unknown_command_gets_an_error_frame():
    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port, timeout=0.2)
            chip.open()
            try:
                await chip.handshake()
                with pytest.raises(Pn532Error, match="error frame"):
                    await chip.call(0x7E)
                # The chip still answers afterwards.
                sim.present("00000001")
                target = await chip.list_passive_target()
                assert target is not None and target.uid_hex == "00000001"
                assert sim.commands[IN_LIST_PASSIVE_TARGET] == 1
            finally:
                chip.close()

    run(scenario())


def test_parse_target():
    assert parse_target(b"\x00") is None
    target = parse_target(bytes.fromhex("0101004408") + b"\x07" + bytes.fromhex("04112233445566"))
    assert target is not None and target.uid_hex == "04112233445566"
    assert target.sens_res == b"\x00\x44"
    for bad in (
        b"\x01\x01\x00",
        bytes.fromhex("010100440805") + bytes(5),
        bytes.fromhex("0101004408070411"),
    ):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_garbled_ack_waits_for_the_answer_half_duplex():
    """A garbled ACK while the chip works 50 ms: the driver waits for the answer and never
    sends over the running command (before: a re-send ~1 ms later broke the dialog)."""

    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port, timeout=0.5, retries=1)
            chip.open()
            try:
                await chip.handshake()
                sim.present("04A1B2C3D4E5F6")
                sim.work_seconds = 0.05
                sim.garble_ack_next()
                target = await chip.list_passive_target()
                assert target is not None and target.uid_hex == "04A1B2C3D4E5F6"
                assert sim.commands[IN_LIST_PASSIVE_TARGET] == 1  # sent once
                assert sim.overruns == 0 and chip.garbled_acks == 1
            finally:
                chip.close()

    run(scenario())


def test_no_answer_is_aborted_with_an_ack_before_sending_again():
    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port, timeout=0.1, retries=1)
            chip.open()
            try:
                await chip.handshake()
                sim.work_seconds = 0.3  # longer than the timeout: the first try gets nothing
                loop = asyncio.get_running_loop()
                loop.call_later(0.05, setattr, sim, "work_seconds", 0.0)  # then it is quick
                assert await chip.list_passive_target() is None  # the second try's answer
                assert sim.commands[IN_LIST_PASSIVE_TARGET] == 2
                assert sim.aborts == 1 and sim.overruns == 0 and chip.aborts_sent == 1
            finally:
                sim.work_seconds = 0.0
                chip.close()

    run(scenario())


def test_reopen_wakes_the_chip_before_every_sam_configuration():
    """A chip that went back to sleep (power dip) while the first SAMConfiguration was lost:
    the second attempt gets a fresh 0x55 burst and succeeds."""

    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port, timeout=0.1, retries=1)
            chip.open()
            try:
                sim.unplug()
                task = asyncio.ensure_future(chip.handshake())
                await asyncio.sleep(0.05)  # the first wake-up and SAMConfiguration are lost
                sim.replug()  # back, asleep
                firmware = await task
                assert firmware.ic == 0x32 and sim.sam_configured
            finally:
                chip.close()

    run(scenario())


def test_one_passive_activation_attempt_as_documented():
    async def scenario():
        with Pn532Simulator() as sim:
            chip = Pn532(sim.port)
            chip.open()
            try:
                await chip.handshake()
                assert sim.max_passive_retries == 0x00  # one attempt, no retry
            finally:
                chip.close()

    run(scenario())
