"""Fail-safe wiring and latched modes: a normally-closed fire input whose wire is cut releases
the door; a normally-closed obstruction sensor whose wire is cut holds the gate; the emergency
latch and lockdown survive a restart and are restored before the lock is driven."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import (
    ALICE,
    FIRE,
    LOCK,
    OBSTRUCTION,
    PASSAGE,
    RESET,
    ClosedContactPin,
    enrol,
    make_config,
    run,
    running_door,
    settle,
)


def _closed(*pins: int):
    def before(factory: MockFactory) -> None:
        for pin in pins:
            factory.pin(pin, pin_class=ClosedContactPin)

    return before


def test_cut_wire_on_a_normally_closed_fire_input_releases_the_door(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path, [("entry", sim.port, "in")], gpio={"normally_closed": ["fire_alarm"]}
            )
            # The contact is closed (no alarm): the door starts locked.
            async with running_door(cfg, {"entry": sim}, before_start=_closed(FIRE)) as d:
                assert d.locked and d.door.state()["mode"] == "normal"
                assert d.daemon.inputs.is_active("fire_alarm") is False
                d.release(FIRE)  # the wire is cut: the pull-up takes the pin high
                await settle()
                assert not d.locked
                assert (await d.wait_for("emergency_on")).payload["source"] == "fire_alarm"
                d.press(FIRE)  # repaired: the alarm clears, the latch holds until a reset
                await d.wait_for("fire_alarm_cleared")
                assert not d.locked
                d.press(RESET)
                await d.wait_for("emergency_off")
                assert d.locked

    run(scenario())


def test_unplugged_normally_closed_fire_input_at_start_releases(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path, [("entry", sim.port, "in")], gpio={"normally_closed": ["fire_alarm"]}
            )
            async with running_door(cfg, {"entry": sim}) as d:  # nothing holds the pin low
                assert not d.locked
                assert (await d.wait_for("emergency_on")).payload["source"] == "fire_alarm"

    run(scenario())


def test_cut_wire_on_a_normally_closed_obstruction_sensor_holds_the_gate(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in")],
                door={"mode": "turnstile"},
                gpio={"normally_closed": ["obstruction"]},
            )
            enrol(cfg.storage.path, "alice", ALICE)
            async with running_door(cfg, {"entry": sim}, before_start=_closed(OBSTRUCTION)) as d:
                sim.tap(ALICE)
                await d.wait_for("access_granted")
                d.release(OBSTRUCTION)  # the sensor's wire is cut mid-passage
                ev = await d.wait_for("obstruction")
                assert (ev.payload["state"], ev.payload["holding"]) == ("on", True)
                d.press(PASSAGE)
                d.release(PASSAGE)
                await d.wait_for("passage")
                await d.tick(10)
                assert not d.locked  # the gate does not close on whoever may be in it

    run(scenario())


def test_emergency_latch_survives_a_restart_until_a_reset(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")])
            async with running_door(cfg, {"entry": sim}) as d:
                d.press(FIRE)
                await d.wait_for("emergency_on")
                d.release(FIRE)  # the input clears, the latch holds
                await d.wait_for("fire_alarm_cleared")
                assert not d.locked
            # A watchdog restart: the fire input is clear now, but nobody reset the emergency.
            states: list[bool] = []
            async with running_door(cfg, {"entry": sim}) as d:
                assert not d.locked
                assert d.door.state()["mode"] == "emergency"
                ev = await d.wait_for("modes_restored")
                assert ev.payload["emergency"] is True and ev.payload["source"] == "fire_alarm"
                d.press(RESET)
                await d.wait_for("emergency_off")
                assert d.locked
                states.append(d.locked)
            async with running_door(cfg, {"entry": sim}) as d:  # reset survives a restart too
                assert d.locked and d.door.state()["mode"] == "normal"
            assert states == [True]

    run(scenario())


def test_lock_is_released_at_start_with_no_relock_after_it(tmp_path: Path):
    """The lock pin's history at start with a restored latch: the constructor's locked
    level, then released, and never driven locked again (no relock pulse)."""

    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")])
            async with running_door(cfg, {"entry": sim}) as d:
                d.door.set_mode("emergency", "mqtt:ops")
                await d.wait_for("emergency_on")
            async with running_door(cfg, {"entry": sim}) as d:
                await d.tick(100)
                levels = [s.state for s in d.factory.pin(LOCK).states]
                assert levels[-1] is True and levels.count(True) == 1, levels

    run(scenario())


def test_lockdown_survives_a_restart(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(tmp_path, [("entry", sim.port, "in")])
            enrol(cfg.storage.path, "alice", ALICE)
            async with running_door(cfg, {"entry": sim}) as d:
                d.door.set_mode("lockdown", "mqtt:ops")
                await d.wait_for("mode_changed")
            async with running_door(cfg, {"entry": sim}) as d:
                assert d.door.state()["mode"] == "lockdown"
                sim.tap(ALICE)
                ev = await d.wait_for("access_denied")
                assert ev.payload["reason"] == "lockdown"
                d.door.set_mode("normal", "mqtt:ops")
                await d.wait_for("mode_changed")
            async with running_door(cfg, {"entry": sim}) as d:
                assert d.door.state()["mode"] == "normal"

    run(scenario())
