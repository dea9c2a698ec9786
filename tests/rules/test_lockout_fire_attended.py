"""Reader lockout and its expiry; the fire input releasing the lock while a decision is in
flight; attended mode after a reader fault."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import (
    ALICE,
    BOB,
    CONTACT,
    FIRE,
    RESET,
    STAFF,
    ClosedContactPin,
    FakeClock,
    enrol,
    make_config,
    run,
    running_door,
    settle,
)
from .conftest import (
    decide_next as _decide,
)


def test_lockout_and_its_expiry(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"lockout_attempts": 3, "lockout_window_seconds": 10, "lockout_seconds": 60},
            )
            enrol(cfg.storage.path, "alice", ALICE)
            async with running_door(cfg, {"entry": sim}) as d:
                for i in range(3):
                    d.clock.advance(4.0)  # 3 denials within 8 s
                    ev = await _decide(d, sim, f"77001122{i:02d}")
                    assert ev.payload["reason"] == "unknown"
                ev = await d.wait_for("lockout")
                assert ev.payload["reader"] == "entry"
                assert "entry" in d.door.state()["lockouts"]
                # Even a valid card is refused while the reader is locked out.
                ev = await _decide(d, sim, ALICE)
                assert ev.payload["reason"] == "lockout" and ev.payload["person"] == "alice"
                assert d.locked
                ev = await _decide(d, sim, "7700112299")
                assert ev.payload["reason"] == "lockout"
                assert all(e.type != "lockout" for e in await d.quiet(0.1))  # once
                d.clock.advance(60)
                assert (await _decide(d, sim, ALICE)).type == "access_granted"
                assert d.door.state()["lockouts"] == {}

    run(scenario())


def test_slow_denials_do_not_lock_out(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"lockout_attempts": 3, "lockout_window_seconds": 10},
            )
            async with running_door(cfg, {"entry": sim}) as d:
                for i in range(6):
                    d.clock.advance(6.0)
                    ev = await _decide(d, sim, f"77001122{i:02d}")
                    assert ev.payload["reason"] == "unknown"
                assert all(e.type != "lockout" for e in await d.quiet(0.1))

    run(scenario())


def test_fire_releases_the_lock_while_a_decision_is_in_flight(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")])
            enrol(cfg.storage.path, "alice", ALICE)
            async with running_door(cfg, {"entry": sim}) as d:
                # Stall the store thread (an SD card in a checkpoint) so the decision hangs.
                gate = threading.Event()
                stall = asyncio.ensure_future(d.daemon.store.call(lambda _c: gate.wait(5)))
                sim.tap(ALICE)
                for _ in range(200):
                    if d.door._tasks:
                        break
                    await asyncio.sleep(0.005)
                assert d.door._tasks, "the read never reached the door"
                assert d.locked
                d.press(FIRE)
                await settle()
                # Released before the decision (or anything else) reached the disk.
                assert not d.locked
                assert d.door.state()["mode"] == "emergency"
                assert d.door._tasks  # the decision is still in flight
                gate.set()
                await stall
                await d.wait_for("access_granted")
                ev = await d.wait_for("emergency_on")
                assert ev.payload["source"] == "fire_alarm"
                await d.tick(100)  # the grant's unlock time runs out: still released
                assert not d.locked
                d.release(CONTACT)  # people leave: no forced or held-open alarms
                await d.tick(1000)
                assert not d.locked
                d.press(RESET)  # a reset while the alarm is still active is refused
                d.release(RESET)
                await d.wait_for("emergency_reset_refused")
                assert not d.locked
                d.release(FIRE)
                await d.wait_for("fire_alarm_cleared")
                assert not d.locked  # held until a reset
                d.door.set_mode("normal", "mqtt:ops")
                ev = await d.wait_for("emergency_off")
                assert ev.payload["source"] == "mqtt:ops"
                assert d.locked
                types = [e.type for e in d.seen + await d.quiet(0.1)]
                assert "door_forced" not in types and "door_held_open" not in types

    run(scenario())


def _fire_held_low(factory: MockFactory) -> None:
    factory.pin(FIRE, pin_class=ClosedContactPin)


def test_fire_input_active_at_start_releases_and_command_emergency(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")])
            async with running_door(cfg, {"entry": sim}) as d:
                d.door.set_mode("emergency", "mqtt:ops")
                assert not d.locked
                ev = await d.wait_for("emergency_on")
                assert ev.payload["source"] == "mqtt:ops"
                d.press(RESET)
                ev = await d.wait_for("emergency_off")
                assert ev.payload["source"] == "fire_reset" and d.locked
            # The fire alarm was already active when the daemon started.
            async with running_door(cfg, {"entry": sim}, before_start=_fire_held_low) as d:
                assert not d.locked
                assert (await d.wait_for("emergency_on")).payload["source"] == "fire_alarm"

    run(scenario())


def test_attended_mode_after_a_reader_fault(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in"), ("broken", str(tmp_path / "no-such-tty"), "in")],
                rules={"attended_on_fault": True},
            )
            enrol(cfg.storage.path, "alice", ALICE)
            enrol(cfg.storage.path, "bob", BOB)
            async with running_door(cfg, {"entry": sim}) as d:
                ev = await d.wait_for("mode_changed")
                assert ev.payload["mode"] == "attended"
                assert ev.payload["source"] == "reader_fault:broken"
                assert d.door.state()["mode"] == "attended"
                ev = await _decide(d, sim, ALICE)
                assert ev.type == "access_granted"
                ev = await d.wait_for("assist_requested")
                assert ev.payload["person"] == "alice"
                assert d.locked  # waits for staff
                d.press(STAFF)
                await settle()
                assert not d.locked
                d.release(STAFF)
                ev = await d.wait_for("staff_release")
                assert ev.payload["person"] == "alice" and ev.payload["source"] == "staff_release"
                await d.tick(3.0)
                assert d.locked
                # A command from the office, naming the staff member.
                await _decide(d, sim, BOB)
                await d.wait_for("assist_requested")
                d.door.staff_release("guard-7", "mqtt:reception")
                assert not d.locked
                ev = await d.wait_for("staff_release")
                assert ev.payload["staff"] == "guard-7" and ev.payload["person"] == "bob"

    run(scenario())


def test_lockout_survives_a_restart(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                rules={"lockout_attempts": 2, "lockout_window_seconds": 10, "lockout_seconds": 60},
            )
            enrol(cfg.storage.path, "alice", ALICE)
            clock = FakeClock()
            async with running_door(cfg, {"entry": sim}, clock=clock) as d:
                for i in range(2):
                    await _decide(d, sim, f"77001122{i:02d}")
                await d.wait_for("lockout")
            clock.advance(30)  # restarted half-way through the lockout
            async with running_door(cfg, {"entry": sim}, clock=clock) as d:
                assert "entry" in d.door.state()["lockouts"]
                ev = await _decide(d, sim, ALICE)
                assert ev.payload["reason"] == "lockout"
            clock.advance(31)  # past its end: a restart does not bring it back
            async with running_door(cfg, {"entry": sim}, clock=clock) as d:
                assert d.door.state()["lockouts"] == {}
                assert (await _decide(d, sim, ALICE)).type == "access_granted"

    run(scenario())
