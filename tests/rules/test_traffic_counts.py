"""Every journaled decision is counted in traffic, once, whatever path it took (one journal
seam, edgegate/daemon/door_journal.py): the denials that once bypassed the counter (an
unmatched finger or face, a PIN with no card, a card+face door's time-out) and the exit button
that once counted as an exit AND a passage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edgegate.core.reads import CredentialKind, CredentialRead
from edgegate.face.cardface import CardFaceGate
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.journal import Event

from .conftest import ALICE, CONTACT, EXIT, DoorUnderTest, enrol, make_config, run, running_door

ZERO = {"granted": 0, "denied": 0, "passages": 0, "exits": 0}


def _door(tmp_path: Path, sim: Rdm6300Simulator, **top):
    cfg = make_config(tmp_path, [("entry", sim.port, "in")], **top)
    enrol(cfg.storage.path, "alice", ALICE)
    return cfg


async def _denied(d: DoorUnderTest) -> Event:
    ev = await d.wait_for("access_denied")
    await d.door.drain()
    return ev


def test_unmatched_finger_and_face_are_counted_as_denials(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                # What the fingerprint and camera readers report for someone they cannot match.
                d.door.attempt_failed("finger", "finger", "no_match", poor=False)
                assert (await _denied(d)).payload["kind"] == "finger"
                d.door.attempt_failed("camera", "face", "no_match", poor=False)
                assert (await _denied(d)).payload["kind"] == "face"
                # A poor capture only asks for another try: neither journaled nor counted.
                d.door.attempt_failed("finger", "finger", "poor_image", poor=True)
                await d.door.drain()
                assert await d.door.today_counts() == {**ZERO, "denied": 2}
                assert d.door.counters["denied"] == 2

    run(scenario())


def test_pin_without_card_is_counted_as_a_denial(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                d.door.credential(CredentialRead(CredentialKind.PIN, "1234", "entry"))
                ev = await _denied(d)
                assert ev.payload["detail"] == "pin_without_card"
                assert await d.door.today_counts() == {**ZERO, "denied": 1}

    run(scenario())


def test_card_face_timeout_is_counted_as_a_denial(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                # The gate a card+face door puts in front of its readers, with a short window.
                d.door.gates.insert(0, CardFaceGate(d.door, "camera", 0.05))
                sim.tap(ALICE)
                ev = await _denied(d)
                assert ev.payload["reason"] == "face_required"
                await asyncio.sleep(0.05)
                assert await d.door.today_counts() == {**ZERO, "denied": 1}

    run(scenario())


def test_exit_button_opening_counts_once(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                d.press(EXIT)
                d.release(EXIT)
                await d.wait_for("exit_request")
                d.release(CONTACT)
                await d.wait_for("door_opened")
                d.press(CONTACT)
                await d.wait_for("door_closed")
                assert await d.door.today_counts() == {**ZERO, "exits": 1}
                # A pass's opening is that pass's passage, counted once.
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                d.release(CONTACT)
                await d.wait_for("door_opened")
                d.press(CONTACT)
                await d.wait_for("door_closed")
                counts = await d.door.today_counts()
                assert counts == {**ZERO, "exits": 1, "granted": 1, "passages": 1}

    run(scenario())
