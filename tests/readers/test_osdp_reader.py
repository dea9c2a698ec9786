"""The OSDP reader against libosdp's own Peripheral Device on a real pty pair: the Secure
Channel handshake, cards and keys in, LED/buzzer/text out, tamper, offline and recovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import osdp
import pytest

from edgegate.hardware.base import CredentialKind
from edgegate.hardware.osdp_codec import LED_GREEN, LED_RED
from edgegate.hardware.osdp_reader import OsdpReader
from edgegate.sim.osdp import OsdpReaderSimulator
from tests.fingerprint.fp_helpers import wait_until
from tests.readers.conftest import ReaderEventSink


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 40))


def make_reader(sim: OsdpReaderSimulator, sink: ReaderEventSink, **kw: Any) -> OsdpReader:
    kw.setdefault("connect_timeout", 3.0)
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.2)
    return OsdpReader("door-osdp", sink, sim.port, baudrate=115200, address=sim.address, **kw)


@contextlib.asynccontextmanager
async def connected(
    sim: OsdpReaderSimulator, sink: ReaderEventSink, *, healthy: bool = True, **kw: Any
) -> AsyncIterator[OsdpReader]:
    """A reader for ``sim`` running (``run``, as the daemon does) for the block; by default
    the block starts once the reader is online."""
    reader = make_reader(sim, sink, **kw)
    task = asyncio.create_task(reader.run())
    try:
        if healthy:
            await wait_until(lambda: reader.healthy, 5)
        yield reader
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_secure_channel_card_read(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(address=5, scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            assert reader.link is not None and reader.link.sc_active
            assert sim.secure
            assert reader.link.capabilities == {"led": True, "buzzer": True, "text": True}
            sim.present_card("DEADBEEF")
            sim.present_card("04A1B2C3D4E5F6")
            await wait_until(lambda: len(sink.reads) == 2)
        first, second = sink.reads
        assert (first.kind, first.value) == (CredentialKind.CARD, "DEADBEEF")
        assert first.reader == "door-osdp"
        assert second.value == "04A1B2C3D4E5F6"
        assert sink.of("fault") == []

    run(scenario())


def test_wrong_key_is_refused_and_reported(make_pd, sink, scbk, tmp_path: Path):
    sim = make_pd(scbk=scbk)
    wrong = tmp_path / "wrong.scbk"
    wrong.write_bytes(bytes(16))

    async def scenario():
        async with connected(sim, sink, scbk_file=wrong, healthy=False):
            start = time.monotonic()
            await wait_until(lambda: sink.of("fault"), 5)
            refused_after = time.monotonic() - start
            sim.present_card("DEADBEEF")
            await asyncio.sleep(0.3)
        return refused_after

    refused_after = run(scenario())
    (reason,) = sink.of("fault")[:1]
    assert "secure channel refused" in reason
    # Refused by the handshake itself, not by waiting out connect_timeout.
    assert refused_after < 2.5
    assert sink.reads == [] and not sim.secure


def test_keypad_digits_arrive_as_pins(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file, pin_timeout=0.4) as reader:
            sim.press("1234#")
            await wait_until(lambda: len(sink.reads) == 1)
            # '*' clears; keys may arrive one osdp_KEYPAD reply at a time.
            for key in "12*5678#":
                sim.press(key)
            await wait_until(lambda: len(sink.reads) == 2)
            sim.press("12#")  # too short: dropped, never submitted
            sim.press("9876")  # no '#': submitted once the keypad is silent for 0.4 s
            await wait_until(lambda: len(sink.reads) == 3)
        assert [(r.kind, r.value) for r in sink.reads] == [
            (CredentialKind.PIN, "1234"),
            (CredentialKind.PIN, "5678"),
            (CredentialKind.PIN, "9876"),
        ]
        assert reader.keypad.dropped == 1

    run(scenario())


def test_feedback_reaches_the_reader(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file, grant_seconds=2.5) as reader:
            reader.feedback(True)
            await wait_until(lambda: len(sim.received(osdp.Command.Text)) == 1)
            reader.feedback(False)
            await wait_until(lambda: len(sim.received(osdp.Command.Text)) == 2)

    run(scenario())
    green, red = sim.received(osdp.Command.LED)
    assert green["on_color"] == LED_GREEN and green["temporary"] and green["timer_count"] == 25
    assert red["on_color"] == LED_RED and red["off_count"] > 0  # flashing
    beep, beeps = sim.received(osdp.Command.Buzzer)
    assert beep["rep_count"] == 1 and beeps["rep_count"] == 3
    assert [t["data"] for t in sim.received(osdp.Command.Text)] == ["Welcome", "Access denied"]


def test_feedback_skips_what_the_reader_cannot_do(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk, text=False, buzzer=False)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            reader.feedback(True)
            await wait_until(lambda: len(sim.received(osdp.Command.LED)) == 1)
            await asyncio.sleep(0.2)

    run(scenario())
    assert sim.received(osdp.Command.Text) == [] and sim.received(osdp.Command.Buzzer) == []


def test_tamper_is_reported_once_per_change(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            sim.set_tamper(True)
            await wait_until(lambda: reader.tamper)
            sim.set_tamper(True)  # still open: no second event
            sim.set_tamper(False)
            await wait_until(lambda: not reader.tamper)

    run(scenario())
    assert sink.event_types() == ["reader_tamper", "reader_tamper_cleared"]


@pytest.mark.slow
def test_reader_gone_is_a_fault_and_back_is_a_recovery(make_pd, sink, scbk, key_file: Path):
    """The reader loses power: libosdp gives up after its poll retries (~8 s), the base class
    journals reader_fault, reopens with backoff and reports reader_recovered when it answers."""
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            sim.power_off()
            await wait_until(lambda: sink.of("fault"), 15)
            assert not reader.healthy
            sim.power_on()
            await wait_until(lambda: sink.of("recovered"), 10)
            sim.present_card("CAFEF00D")
            await wait_until(lambda: len(sink.reads) == 1)

    run(scenario())
    assert sink.of("fault") == ["reader offline: no answer to polls"]
    assert sink.of("recovered") == ["door-osdp"]
    assert sink.reads[0].value == "CAFEF00D"


def test_serial_port_gone_is_a_fault(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file):
            sim.close()  # the USB RS-485 adaptor unplugged: the pty hangs up
            await wait_until(lambda: sink.of("fault"), 5)

    run(scenario())
    assert "serial port failed" in sink.of("fault")[0]


def test_install_mode_gives_a_new_reader_its_key(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(install_mode=True)  # a reader fresh from the box: default key only

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file, install_mode=True) as reader:
            assert reader.link is not None and reader.link.sc_active
            await wait_until(lambda: "reader_key_set" in sink.event_types())
        # From now on the reader only talks with that key, also with install mode off.
        sim.power_off()
        sim.power_on()
        async with connected(sim, sink, scbk_file=key_file) as normal:
            assert normal.link is not None and normal.link.sc_active

    run(scenario())
    assert sim.scbk == scbk
    assert sim.received(osdp.Command.Keyset)[0]["data"] == scbk


def test_new_reader_on_default_key_is_refused_outside_install_mode(make_pd, sink, key_file):
    sim = make_pd(install_mode=True)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file, healthy=False):
            await wait_until(lambda: sink.of("fault"), 5)

    run(scenario())
    assert "secure channel refused" in sink.of("fault")[0]
    assert sim.received(osdp.Command.Keyset) == []


def test_plaintext_when_secure_channel_is_off(make_pd, sink):
    sim = make_pd()

    async def scenario():
        async with connected(sim, sink, secure_channel=False) as reader:
            assert reader.link is not None and not reader.link.sc_active
            sim.present_card("0102")
            await wait_until(lambda: len(sink.reads) == 1)

    run(scenario())
    assert sink.reads[0].value == "0102"


def test_key_from_systemd_credential(make_pd, sink, scbk, tmp_path: Path, monkeypatch):
    sim = make_pd(scbk=scbk)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "osdp-scbk-door-osdp").write_bytes(scbk)  # raw bytes, as LoadCredential= passes
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))

    async def scenario():
        async with connected(sim, sink) as reader:
            assert reader.link is not None and reader.link.sc_active

    run(scenario())


def test_missing_key_is_a_fault_naming_the_credential(make_pd, sink, scbk, monkeypatch):
    sim = make_pd(scbk=scbk)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)

    async def scenario():
        async with connected(sim, sink, healthy=False):
            await wait_until(lambda: sink.of("fault"), 3)

    run(scenario())
    assert "osdp-scbk-door-osdp" in sink.of("fault")[0]


def test_malformed_key_file_is_a_fault_naming_the_file(make_pd, sink, scbk, tmp_path: Path):
    sim = make_pd(scbk=scbk)
    bad = tmp_path / "short.scbk"
    bad.write_text("00112233")

    async def scenario():
        async with connected(sim, sink, scbk_file=bad, healthy=False):
            await wait_until(lambda: sink.of("fault"), 3)

    run(scenario())
    assert str(bad) in sink.of("fault")[0] and "32 hex digits" in sink.of("fault")[0]


def test_bad_card_data_is_counted_not_fatal(make_pd, sink, scbk, key_file: Path):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            sim.present_raw(b"\x00", 0)  # a read of zero bits
            sim.press("A")  # a function key: no meaning at this door, ignored
            sim.present_card("DEADBEEF")
            await wait_until(lambda: len(sink.reads) == 1)
            return reader.counters.bad_frames

    assert run(scenario()) == 1
    assert [r.value for r in sink.reads] == ["DEADBEEF"]


def test_a_command_libosdp_refuses_is_dropped_and_the_link_stays_up(make_pd, sink, scbk, key_file):
    sim = make_pd(scbk=scbk)

    async def scenario():
        async with connected(sim, sink, scbk_file=key_file) as reader:
            assert reader.link is not None
            reader.link.submit({"command": osdp.Command.LED, "reader": 0})  # fields missing
            reader.link.submit({"command": 99})  # no such command
            reader.feedback(True)
            await wait_until(lambda: len(sim.received(osdp.Command.Text)) == 1)
            assert reader.healthy and not reader.link.failed.is_set()

    run(scenario())
    assert len(sim.received(osdp.Command.LED)) == 1
