"""The site rules through a real door (issue 20): RDM6300 simulators on ptys, gpiozero mock
pins, the door's clock driven by the test. Postures by the clock (free access with first to
arrive, card+PIN, lockdown windows), the two-person rule, the offline policy and the interlock
refusing while its peer is unknown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import ALICE, BOB, CAROL, GREEN, RED, T0, enrol, make_config, run, running_door
from .conftest import decide_next as _decide

# T0 is Monday 10:00 UTC; the windows below run 08:00-18:00 on weekdays.
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _people(db: Path) -> None:
    enrol(db, "alice", ALICE, {"groups": ["staff"]})
    enrol(db, "bob", BOB, {"groups": ["staff"]})
    enrol(db, "carol", CAROL, {"groups": ["visitors"]})


def test_free_access_opens_on_the_first_staff_arrival_and_ends_with_its_window(tmp_path: Path):
    posture = {"posture": "free", "days": WEEKDAYS, "start": "08:00", "end": "18:00"}
    posture["first_to_arrive"] = ["staff"]

    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")], postures=[posture])
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                state = d.door.state()
                assert state["posture"] == "card" and state["first_to_arrive"] == ["staff"]
                assert d.locked
                # A visitor is granted as usual but opens nothing beyond their own pass.
                assert (await _decide(d, sim, CAROL)).type == "access_granted"
                await d.tick(3.1)
                assert d.locked and d.door.state()["posture"] == "card"
                # The first staff member opens the lobby for the rest of the window.
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                changed = await d.wait_for("posture_changed")
                assert changed.payload["posture"] == "free"
                assert changed.payload["source"] == "first_to_arrive"
                await d.tick(10)  # the grant's own release ran out long ago
                assert not d.locked and d.door.state()["posture"] == "free"
                # The window ends at 18:00: the door locks again.
                d.clock.t = T0 + 8 * 3600
                d.door.site.evaluate()
                ended = await d.wait_for("posture_changed")
                assert ended.payload["posture"] == "card" and ended.payload["from"] == "free"
                await d.tick(0)
                assert d.locked
                # Tuesday 10:00: a new occurrence, closed until someone of staff arrives.
                d.clock.t = T0 + 24 * 3600
                d.door.site.evaluate()
                assert (await d.wait_for("posture_changed")).payload.get("first_to_arrive")
                assert d.locked

    run(scenario())


def test_lockdown_window_and_card_pin_window(tmp_path: Path):
    postures = [
        {"posture": "lockdown", "days": WEEKDAYS, "start": "09:00", "end": "11:00"},
        {"posture": "card_pin", "days": WEEKDAYS, "start": "11:00", "end": "12:00"},
    ]

    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"lockdown_allowed_groups": ["staff"]},
                postures=postures,
                pin={"timeout_seconds": 0.2},
            )
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                assert d.door.state()["posture"] == "lockdown"
                denied = await _decide(d, sim, CAROL)
                assert denied.payload["reason"] == "lockdown"
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                # 11:00: a card now needs its holder's PIN; none comes, so it times out.
                d.clock.t = T0 + 3600
                d.door.site.evaluate()
                assert (await d.wait_for("posture_changed")).payload["posture"] == "card_pin"
                timed_out = await _decide(d, sim, BOB)
                assert timed_out.payload["reason"] == "pin_timeout"

    run(scenario())


def test_two_person_rule(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"two_person_seconds": 10, "lockout_attempts": 2},
            )
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                first = await _decide(d, sim, ALICE)
                assert first.payload["reason"] == "two_person" and d.locked
                # Amber (both LEDs) asks for the second person; the lock stays locked.
                assert d.factory.pin(GREEN).state and d.factory.pin(RED).state
                # The same person again is still one person (and no lockout after two).
                again = await _decide(d, sim, ALICE)
                assert again.payload["reason"] == "two_person"
                assert d.door.state()["lockouts"] == {}
                second = await _decide(d, sim, BOB)
                assert second.type == "access_granted" and second.payload["partner"] == "alice"
                await asyncio.sleep(0.05)
                assert not d.locked
                # A refused card never counts as one of the two.
                await d.tick(3.1)
                assert (await _decide(d, sim, "FFFFFFFFFF")).payload["reason"] == "unknown"
                assert (await _decide(d, sim, CAROL)).payload["reason"] == "two_person"

    run(scenario())


def test_offline_too_long_keeps_staff_and_refuses_visitors(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                offline={"after_minutes": 0.005, "allowed_groups": ["staff"]},
            )
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                # Standalone: the office was never heard since start; 0.3 s is "too long".
                assert d.door.state()["offline_too_long"] is False
                assert (await _decide(d, sim, CAROL)).type == "access_granted"
                await d.tick(3.4)
                assert d.door.state()["offline_too_long"] is True
                assert (await _decide(d, sim, CAROL)).payload["reason"] == "offline"
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                # The office comes back: visitors pass again.
                d.door.site.office_changed(True)
                await d.tick(3.1)
                assert d.door.state()["offline_too_long"] is False
                assert (await _decide(d, sim, CAROL)).type == "access_granted"

    run(scenario())


def test_interlock_refuses_while_the_peer_is_unknown(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")], interlock={"peer": "d2"})
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                # No broker at all: the other door's state is unknown, so no release.
                assert (await _decide(d, sim, ALICE)).payload["reason"] == "interlock"
                assert d.locked
                assert d.door.state()["interlock"] == {"peer": "d2", "allows": False}

    run(scenario())


def test_presence_is_reset_when_the_emergency_ends(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"passback": "hard"},
                area={"reset_after_emergency": True},
            )
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                await d.tick(3.1)
                # Everyone leaves through released doors; nobody badges out.
                d.door.set_mode("emergency", "test")
                await d.wait_for("emergency_on")
                d.door.set_mode("normal", "test")
                await d.wait_for("emergency_off")
                reset = await d.wait_for("presence_reset")
                assert reset.payload == {
                    "site": "test",
                    "door": "d1",
                    "area": "d1",
                    "people": 1,
                    "source": "emergency_reset",
                }
                # Back in without a passback refusal.
                assert (await _decide(d, sim, ALICE)).type == "access_granted"

    run(scenario())


def test_without_the_reset_the_same_evacuation_refuses_re_entry(tmp_path: Path):
    async def scenario() -> None:
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")], rules={"passback": "hard"})
            _people(cfg.storage.path)
            async with running_door(cfg, {"entry": sim}) as d:
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                await d.tick(3.1)
                d.door.set_mode("emergency", "test")
                d.door.set_mode("normal", "test")
                await d.wait_for("emergency_off")
                assert (await _decide(d, sim, ALICE)).payload["reason"] == "passback"
                # The office's signed reset_presence command (sync/commands.py) does it.
                d.door.reset_presence("command:test")
                assert (await d.wait_for("presence_reset")).payload["people"] == 1
                assert (await _decide(d, sim, ALICE)).type == "access_granted"

    run(scenario())
