"""The whole door with an OSDP reader: libosdp's PD on a pty as the reader, the real Daemon
(store, decision core, journal) and gpiozero mock pins for the relay and LEDs."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import osdp

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.hardware.osdp_codec import LED_GREEN, LED_RED
from edgegate.sim.osdp import OsdpReaderSimulator
from tests.conftest import GREEN, RED, enrol, make_config, running_door
from tests.fingerprint.fp_helpers import wait_until

ALICE = "04A1B2C3D4E5F6"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def osdp_config(tmp_path: Path, sim: OsdpReaderSimulator, key_file: Path) -> Config:
    raw = make_config(tmp_path, "unused").model_dump(mode="json", exclude_none=True)
    raw["readers"] = [
        {
            "type": "osdp",
            "name": "lobby",
            "port": sim.port,
            "baudrate": 115200,
            "address": sim.address,
            "scbk_file": str(key_file),
            "connect_timeout_seconds": 3,
        }
    ]
    return parse(raw, tmp_path / "osdp.toml")


def setup(config: Config) -> None:
    enrol(config.storage.path, "alice", ALICE)


def test_card_on_osdp_reader_opens_the_door_and_lights_the_reader(tmp_path: Path):
    scbk = secrets.token_bytes(16)
    key_file = tmp_path / "lobby.scbk"
    key_file.write_bytes(scbk.hex().encode())
    sim = OsdpReaderSimulator(address=3, scbk=scbk)

    async def scenario():
        config = osdp_config(tmp_path, sim, key_file)
        async with running_door(tmp_path, sim=sim, config=config, setup=setup) as d:  # type: ignore[arg-type]
            reader = d.daemon.readers[0]
            assert reader.healthy and sim.secure
            sim.present_card(ALICE)
            ev = await d.next_event()
            assert ev.type == "access_granted"
            assert ev.payload["person"] == "alice" and ev.payload["credential"] == ALICE
            assert ev.payload["reader"] == "lobby" and ev.payload["kind"] == "card"
            assert d.lock_high and d.factory.pin(GREEN).state
            await wait_until(lambda: len(sim.received(osdp.Command.LED)) == 1)

            sim.present_card("DEADBEEF")
            ev = await d.next_event()
            assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
            assert d.factory.pin(RED).state
            await wait_until(lambda: len(sim.received(osdp.Command.LED)) == 2)

            # A keypad entry is decided like any credential (the card+PIN rules consume it);
            # the PIN itself never goes into the journal.
            sim.press("4711#")
            ev = await d.next_event()
            assert ev.type == "access_denied" and ev.payload["kind"] == "pin"
            assert "4711" not in str(ev.as_message())

            sim.set_tamper(True)
            ev = await d.next_event()
            assert ev.type == "reader_tamper" and ev.payload["reader"] == "lobby"
            assert d.daemon.status()["readers"][0]["tamper"] is True
            sim.set_tamper(False)
            assert (await d.next_event()).type == "reader_tamper_cleared"

    try:
        run(scenario())
    finally:
        sim.close()
    green, red, *_ = sim.received(osdp.Command.LED)
    assert green["on_color"] == LED_GREEN and red["on_color"] == LED_RED


def test_wrong_key_is_journaled_as_reader_fault(tmp_path: Path):
    sim = OsdpReaderSimulator(scbk=secrets.token_bytes(16))
    key_file = tmp_path / "lobby.scbk"
    key_file.write_bytes(secrets.token_bytes(16))

    async def scenario():
        config = osdp_config(tmp_path, sim, key_file)
        async with running_door(tmp_path, sim=sim, config=config, setup=setup) as d:  # type: ignore[arg-type]
            ev = await d.next_event()
            assert ev.type == "reader_fault" and ev.payload["reader"] == "lobby"
            assert "secure channel refused" in ev.payload["error"]
            sim.present_card(ALICE)
            await asyncio.sleep(0.3)
            assert not d.lock_high
            assert d.events.empty()

    try:
        run(scenario())
    finally:
        sim.close()


def test_the_reader_says_why_in_the_door_language_without_telling_lost_from_unknown(
    tmp_path: Path,
):
    """Telling people why (docs/rules.md): an expired pass reads "see reception" in the
    configured language with its own LED and beeps; a lost card and an unknown card read the
    same "access denied"."""
    scbk = secrets.token_bytes(16)
    key_file = tmp_path / "lobby.scbk"
    key_file.write_bytes(scbk.hex().encode())
    sim = OsdpReaderSimulator(address=3, scbk=scbk)
    lost, expired = "04000000000001", "04000000000002"

    def people(config: Config) -> None:
        enrol(config.storage.path, "alice", ALICE)
        enrol(config.storage.path, "bob", lost, enabled=False)
        enrol(config.storage.path, "carol", expired, valid_until=1.0)

    async def scenario() -> list[str]:
        raw = osdp_config(tmp_path, sim, key_file).model_dump(mode="json", exclude_none=True)
        raw["feedback"] = {"language": "fr"}
        config = parse(raw, tmp_path / "osdp-fr.toml")
        async with running_door(tmp_path, sim=sim, config=config, setup=people) as d:  # type: ignore[arg-type]
            for card, reason in ((expired, "expired"), (lost, "revoked"), ("DEADBEEF", "unknown")):
                sim.present_card(card)
                ev = await d.next_event()
                assert ev.payload["reason"] == reason
            await wait_until(lambda: len(sim.received(osdp.Command.Text)) == 3)
            return [t["data"] for t in sim.received(osdp.Command.Text)]

    try:
        texts = run(scenario())
    finally:
        sim.close()
    assert texts == ["Voir accueil", "Acces refuse", "Acces refuse"]
    see_reception, lost_led, unknown_led = sim.received(osdp.Command.LED)
    assert see_reception["on_color"] == LED_RED and lost_led == unknown_led
    beeps = [b["rep_count"] for b in sim.received(osdp.Command.Buzzer)]
    assert beeps == [1, 3, 3]
