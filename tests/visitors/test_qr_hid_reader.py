"""The USB HID QR scanner reader on a simulated scanner (the kernel's ``struct input_event``
records on a pty behind a by-id link), on a real uinput device where the machine allows it,
and at a real door daemon with a pass signed by the office key."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from edgegate.config import parse
from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.core.reads import CredentialKind
from edgegate.hardware.qr_hid import QrHidReader
from edgegate.sim.broker import free_port
from edgegate.sim.hid_scanner import HidScannerSimulator, UinputScanner
from tests.conftest import all_logs, make_config, running_door, until
from tests.fingerprint.fp_helpers import RecordingSink

NO_UINPUT = "no /dev/uinput (needs the uinput module and privileges)"


def test_reads_a_scan_without_grab_and_comes_back_after_a_replug(tmp_path: Path):
    sink = RecordingSink()

    async def scenario() -> None:
        with HidScannerSimulator(tmp_path) as sim:
            reader = QrHidReader(
                "desk", sink, sim.path, hold_off=0, backoff_initial=0.05, backoff_max=0.2
            )
            with all_logs() as logs:
                task = asyncio.create_task(reader.run())
                await until(lambda: reader.healthy)
                sim.scan("EG1.first")
                await until(lambda: len(sink.reads) == 1)
                read = sink.reads[0]
                assert (read.kind, read.value, read.reader) == (
                    CredentialKind.QR,
                    "EG1.first",
                    "desk",
                )

                sim.unplug()
                await until(lambda: len(sink.of("fault")) == 1)
                assert not reader.healthy
                sim.replug()
                await until(lambda: len(sink.of("recovered")) == 1)
                sim.scan("EG1.second")
                await until(lambda: len(sink.reads) == 2)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert sink.reads[1].value == "EG1.second"
            assert reader.counters.reopens == 1 and reader.counters.faults == 1
            # A pty is no input device: the grab fails, logged once across the reopen.
            grab = [e for e in logs if e["event"] == "hid_grab_unsupported"]
            assert len(grab) == 1 and grab[0]["device"] == sim.path
            opened = [e for e in logs if e["event"] == "reader_opened"]
            assert [e["grabbed"] for e in opened] == [False, False]

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_missing_device_is_a_fault_until_it_appears(tmp_path: Path):
    sink = RecordingSink()

    async def scenario() -> None:
        link = tmp_path / "usb-Barcode_Scanner-event-kbd"
        reader = QrHidReader("desk", sink, str(link), backoff_initial=0.05, backoff_max=0.2)
        task = asyncio.create_task(reader.run())
        await until(lambda: len(sink.of("fault")) == 1)
        assert "No such file" in sink.of("fault")[0]
        with HidScannerSimulator(tmp_path) as sim:
            await until(lambda: reader.healthy)
            sim.scan("EG1.late")
            await until(lambda: len(sink.reads) == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.skipif(not os.path.exists("/dev/uinput"), reason=NO_UINPUT)
def test_a_real_uinput_keyboard_is_grabbed_and_read():
    sink = RecordingSink()

    async def scenario() -> None:
        try:
            scanner = UinputScanner()
        except PermissionError:
            pytest.skip(NO_UINPUT)
        with scanner:
            reader = QrHidReader("desk", sink, scanner.path, hold_off=0)
            task = asyncio.create_task(reader.run())
            await until(lambda: reader.healthy)
            assert reader._evdev.grabbed
            scanner.scan("EG1.Real-uinput_9")
            await until(lambda: len(sink.reads) == 1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert sink.reads[0].value == "EG1.Real-uinput_9"

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_pass_typed_by_the_hid_scanner_opens_the_door(tmp_path: Path):
    key = signing.generate()
    now = int(time.time())
    good = encode_pass(
        signing.Signer(key), PassToken("P1", "V1", ("lobby",), now - 60, now + 600, False)
    )
    forged = encode_pass(
        signing.Signer(signing.generate()),
        PassToken("P1", "V1", ("lobby",), now - 60, now + 600, False),
    )

    async def scenario() -> None:
        with HidScannerSimulator(tmp_path, "usb-Door_Scanner-event-kbd") as sim:
            raw = make_config(tmp_path, "/dev/null", zone="lobby").model_dump(
                mode="json", exclude_none=True
            )
            raw["readers"] = [{"type": "qr_hid", "device": sim.path, "name": "hid"}]
            # No broker: the office's public key is all a door needs to verify a pass.
            raw["mqtt"] = {
                "port": free_port(),
                "central_public_keys": [signing.public_text(key.public_key())],
            }
            cfg = parse(raw, tmp_path / "door.toml")
            async with running_door(tmp_path, config=cfg) as door:
                await until(lambda: all(r.healthy for r in door.daemon.readers))
                sim.scan(forged)
                ev = await decision(door)
                assert (ev.type, ev.payload["reason"]) == ("access_denied", "forged")
                assert not door.lock_high
                sim.scan(good)
                ev = await decision(door)
                assert ev.type == "access_granted", ev.payload
                p = ev.payload
                assert (p["kind"], p["credential"], p["visit"], p["reader"]) == (
                    "qr",
                    "P1",
                    "V1",
                    "hid",
                )
                assert door.lock_high

    asyncio.run(asyncio.wait_for(scenario(), 60))


async def decision(door):
    while True:
        ev = await door.next_event(10)
        if ev.type in ("access_granted", "access_denied"):
            return ev


def test_doctor_reads_a_scan_and_says_the_grab_failed(tmp_path: Path):
    from edgegate.config.readers import QrHidConfig
    from edgegate.doctor import Status
    from edgegate.doctor.hid import check_qr_hid

    missing = QrHidConfig(type="qr_hid", device=str(tmp_path / "nothing-event-kbd"))
    check = asyncio.run(check_qr_hid("desk", missing, 0.1))
    assert check.status == Status.FAIL and "does not exist" in check.message

    async def listen(sim: HidScannerSimulator) -> object:
        cfg = QrHidConfig(type="qr_hid", device=sim.path)
        job = asyncio.create_task(check_qr_hid("desk", cfg, 1.0))
        await asyncio.sleep(0.2)
        sim.scan("EG1.doctor")
        return await job

    with HidScannerSimulator(tmp_path) as sim:
        check = asyncio.run(listen(sim))
    assert check.status == Status.WARN, check
    assert "1 code(s)" in check.message and "not grabbed" in check.message
