"""Visitor passes (validity window, host, zones), weekly schedules, holidays, per-door
groups, the exit hold (settlement_required) and lockdown, through the simulated reader."""

from __future__ import annotations

from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import ALICE, BOB, CAROL, DAVE, EVE, T0, enrol, make_config, run, running_door
from .conftest import decide_next as _decide

HOUR = 3600.0


def test_visitor_outside_its_window_and_zone(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")], door={"zone": "lobby"})
            db = cfg.storage.path
            window = {"valid_from": T0 - HOUR, "valid_until": T0 + HOUR}
            enrol(db, "vera", ALICE, {"host": "alice", "zones": ["lobby", "canteen"]}, **window)
            enrol(db, "victor", BOB, {"host": "alice", "zones": ["lab"]}, **window)
            async with running_door(cfg, {"entry": sim}) as d:
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                ev = await _decide(d, sim, BOB)
                assert ev.payload["reason"] == "zone" and ev.payload["person"] == "victor"
                d.clock.advance(HOUR)  # the pass ran out
                ev = await _decide(d, sim, ALICE)
                assert ev.payload["reason"] == "expired"
                d.clock.t = T0 - 2 * HOUR  # before it started
                ev = await _decide(d, sim, ALICE)
                assert ev.payload["reason"] == "not_yet_valid"
                # The clock stepped back past the first grant: that release ends at once.
                await d.tick(0)
                assert d.locked

    run(scenario())


def test_weekly_schedule_holidays_and_door_groups(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                door={"groups": ["staff", "security"]},
                schedules=[
                    {
                        "group": "staff",
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "08:00",
                        "end": "18:00",
                    },
                    {
                        "group": "security",
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": "00:00",
                        "end": "24:00",
                        "holidays": True,
                    },
                ],
                holidays=["2027-01-05"],
            )
            db = cfg.storage.path
            enrol(db, "sam", ALICE, {"groups": ["staff"]})
            enrol(db, "sue", BOB, {"groups": ["security"]})
            enrol(db, "cleo", CAROL, {"groups": ["cleaning"]})
            async with running_door(cfg, {"entry": sim}) as d:
                # Monday 10:00 UTC
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                assert (await _decide(d, sim, CAROL)).payload["reason"] == "group"
                d.clock.t = T0 + 9 * HOUR  # Monday 19:00
                assert (await _decide(d, sim, ALICE)).payload["reason"] == "schedule"
                assert (await _decide(d, sim, BOB)).type == "access_granted"
                d.clock.t = T0 + 24 * HOUR  # Tuesday 10:00, a holiday
                assert (await _decide(d, sim, ALICE)).payload["reason"] == "schedule"
                assert (await _decide(d, sim, BOB)).type == "access_granted"
                d.clock.t = T0 + 48 * HOUR  # Wednesday 10:00
                assert (await _decide(d, sim, ALICE)).type == "access_granted"

    run(scenario())


def test_exit_hold_and_lockdown(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as entry, Rdm6300Simulator() as exit_:
            cfg = make_config(
                tmp_path,
                [("entry", entry.port, "in"), ("exit", exit_.port, "out")],
                rules={"lockdown_allowed_groups": ["security"]},
            )
            db = cfg.storage.path
            enrol(db, "guest", DAVE, {"settled": False})
            enrol(db, "alice", ALICE)
            enrol(db, "sue", EVE, {"groups": ["security"]})
            async with running_door(cfg, {"entry": entry, "exit": exit_}) as d:
                assert (await _decide(d, entry, DAVE)).type == "access_granted"
                ev = await _decide(d, exit_, DAVE)
                assert ev.payload["reason"] == "settlement_required"
                d.door.set_mode("lockdown", "test")
                ev = await d.wait_for("mode_changed")
                assert ev.payload["mode"] == "lockdown" and ev.payload["source"] == "test"
                assert d.door.state()["mode"] == "lockdown"
                assert (await _decide(d, entry, ALICE)).payload["reason"] == "lockdown"
                assert (await _decide(d, entry, EVE)).type == "access_granted"
                d.door.set_mode("normal", "test")
                assert (await _decide(d, entry, ALICE)).type == "access_granted"

    run(scenario())
