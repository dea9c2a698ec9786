"""Turnstile: one passage per grant, a second passage is tailgating, and the obstruction
input keeps the gate from closing on a person (anti-pinch)."""

from __future__ import annotations

from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import ALICE, OBSTRUCTION, PASSAGE, enrol, make_config, run, running_door, settle


def _config(tmp_path: Path, sim: Rdm6300Simulator):
    cfg = make_config(tmp_path, [("entry", sim.port, "in")], door={"mode": "turnstile"})
    enrol(cfg.storage.path, "alice", ALICE)
    return cfg


async def _pulse(d, pin: int) -> None:
    d.press(pin)
    await settle()
    d.release(pin)
    await settle()


def test_one_passage_per_grant_second_is_tailgating(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_config(tmp_path, sim), {"entry": sim}) as d:
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                assert not d.locked
                await _pulse(d, PASSAGE)
                assert d.locked  # the gate closes behind the one person the grant was for
                ev = await d.next_event()
                assert ev.type == "passage" and ev.payload["person"] == "alice"
                await _pulse(d, PASSAGE)  # someone follows on the same grant
                ev = await d.next_event()
                assert ev.type == "passage" and "person" not in ev.payload
                ev = await d.next_event()
                assert ev.type == "tailgating" and ev.payload["person"] == "alice"
                assert d.locked
                counts = await d.door.today_counts()
                assert counts == {"granted": 1, "denied": 0, "passages": 2, "exits": 0}

    run(scenario())


def test_obstruction_keeps_the_gate_open_and_is_journaled(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_config(tmp_path, sim), {"entry": sim}) as d:
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                d.press(OBSTRUCTION)  # someone is in the gate
                await settle()
                ev = await d.next_event()
                assert ev.type == "obstruction" and ev.payload["state"] == "on"
                assert ev.payload["holding"] is True
                await _pulse(d, PASSAGE)
                assert not d.locked  # passage done, but the gate must not close on a person
                await d.tick(10)  # the grant's unlock time runs out too: still open
                assert not d.locked
                assert d.door.state()["alarms"] == ["obstruction"]
                d.release(OBSTRUCTION)
                await settle()
                assert d.locked  # closes as soon as the way is clear
                types = [e.type for e in await d.quiet(0.15)]
                assert "obstruction" in types

    run(scenario())


def test_obstruction_never_opens_a_closed_gate(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_config(tmp_path, sim), {"entry": sim}) as d:
                d.press(OBSTRUCTION)
                await settle()
                ev = await d.next_event()
                assert ev.type == "obstruction" and ev.payload["holding"] is False
                assert d.locked

    run(scenario())
