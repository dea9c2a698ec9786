"""Door contact (opened, closed, forced, held open with pre-alarm, relock on close) and the
exit button, end to end through mock pins and a simulated reader."""

from __future__ import annotations

from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import ALICE, CONTACT, EXIT, enrol, make_config, run, running_door, settle


def _door(tmp_path: Path, sim: Rdm6300Simulator, **door):
    cfg = make_config(
        tmp_path,
        [("entry", sim.port, "in")],
        door={"held_open_seconds": 20, "prealarm_seconds": 5, **door},
    )
    enrol(cfg.storage.path, "alice", ALICE)
    return cfg


def test_forced_then_prealarm_then_held_open(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                d.release(CONTACT)  # opened with no grant and no exit request
                assert (await d.next_event()).type == "door_opened"
                assert (await d.next_event()).type == "door_forced"
                assert d.locked
                assert d.door.state()["contact"] == "open"
                await d.tick(14.9)
                assert await d.quiet(0.1) == []
                await d.tick(0.1)  # 15 s: held_open_seconds - prealarm_seconds
                ev = await d.next_event()
                assert ev.type == "door_held_prealarm"
                assert d.door.state()["alarms"] == ["door_held_prealarm"]
                await d.tick(5)
                ev = await d.next_event()
                assert ev.type == "door_held_open" and ev.payload["open_seconds"] == 20
                assert d.door.state()["alarms"] == ["door_held_open"]
                await d.tick(100)
                assert await d.quiet(0.1) == []  # once per opening
                d.press(CONTACT)
                ev = await d.next_event()
                assert ev.type == "door_closed" and ev.payload["open_seconds"] == 120
                assert d.door.state()["alarms"] == []

    run(scenario())


def test_grant_open_close_relocks_at_once_without_alarm(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                sim.tap(ALICE)
                assert (await d.next_event()).type == "access_granted"
                assert not d.locked
                await d.tick(1.0)
                d.release(CONTACT)
                ev = await d.next_event()
                assert ev.type == "door_opened" and ev.payload["person"] == "alice"
                assert not d.locked
                d.press(CONTACT)
                await settle()
                # Relocked on close, well before unlock_seconds (3 s) ran out.
                assert d.locked
                assert (await d.next_event()).type == "door_closed"
                assert await d.quiet(0.1) == []  # no door_forced anywhere
                assert all(e.type != "door_forced" for e in d.seen)

    run(scenario())


def test_grant_not_used_relocks_after_unlock_seconds_then_open_is_forced(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                assert not d.locked
                await d.tick(2.9)
                assert not d.locked
                await d.tick(0.1)
                assert d.locked
                d.release(CONTACT)
                await d.wait_for("door_forced")

    run(scenario())


def test_no_relock_on_close_keeps_the_full_unlock_time(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = _door(tmp_path, sim, relock_on_close=False)
            async with running_door(cfg, {"entry": sim}) as d:
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                d.release(CONTACT)
                d.press(CONTACT)
                await d.wait_for("door_closed")
                assert not d.locked
                await d.tick(3.0)
                assert d.locked

    run(scenario())


def test_exit_button_opens_without_credential_and_is_journaled(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_door(tmp_path, sim), {"entry": sim}) as d:
                d.press(EXIT)
                await settle()
                assert not d.locked
                d.release(EXIT)
                ev = await d.next_event()
                assert ev.type == "exit_request" and ev.payload["source"] == "exit_button"
                d.release(CONTACT)
                ev = await d.next_event()
                assert ev.type == "door_opened"
                d.press(CONTACT)
                assert (await d.next_event()).type == "door_closed"
                assert d.locked
                assert all(e.type != "door_forced" for e in d.seen)
                counts = await d.door.today_counts()
                assert counts["exits"] == 1 and counts["granted"] == 0

    run(scenario())


def test_door_open_at_start_is_journaled_and_timed_not_forced(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                door={"held_open_seconds": 20, "prealarm_seconds": 0},
            )
            async with running_door(cfg, {"entry": sim}, close_door=False) as d:
                ev = await d.wait_for("door_opened")
                assert ev.payload.get("at_start") is True
                assert d.door.state()["contact"] == "open" and d.locked
                await d.tick(19)
                assert all(e.type != "door_held_open" for e in await d.quiet(0.1))
                await d.tick(2)
                ev = await d.wait_for("door_held_open")
                assert ev.payload["open_seconds"] >= 20
                assert all(e.type != "door_forced" for e in d.seen)
                d.press(CONTACT)
                await d.wait_for("door_closed")

    run(scenario())
