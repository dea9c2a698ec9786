"""The alarm output (siren relay on a mock pin) following the journal's alarms; the staff
release button naming the staff card tapped just before it; the live doctor's report."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edgegate.daemon.siren import SOUNDING
from edgegate.sim.rdm6300 import Rdm6300Simulator

from .conftest import (
    ALICE,
    BOB,
    CONTACT,
    STAFF,
    enrol,
    make_config,
    run,
    running_door,
    settle,
)

SIREN = 16


def _siren_door(tmp_path: Path, sim: Rdm6300Simulator, seconds: float = 30.0):
    return make_config(
        tmp_path,
        [("entry", sim.port, "in")],
        door={"held_open_seconds": 20, "prealarm_seconds": 0},
        gpio={"siren": SIREN, "siren_seconds": seconds},
    )


def test_siren_sounds_on_forced_door_and_the_office_silences_it(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            async with running_door(_siren_door(tmp_path, sim), {"entry": sim}) as d:
                siren = d.factory.pin(SIREN)
                assert not siren.state
                d.release(CONTACT)  # forced: opened while locked
                await d.wait_for("door_forced")
                ev = await d.wait_for("siren_on")
                assert siren.state
                assert ev.payload["cause"] == "door_forced"
                assert d.daemon.siren is not None and d.daemon.siren.silence("alice@office")
                assert not siren.state
                ev = await d.wait_for("siren_off")
                assert {k: ev.payload[k] for k in ("reason", "cause", "by")} == {
                    "reason": "silenced",
                    "cause": "door_forced",
                    "by": "alice@office",
                }
                # Silencing a quiet output says so (the command is then acked as refused).
                assert not d.daemon.siren.silence("alice@office")
                # Held open: sounds again, and stops when the door closes.
                await d.tick(20)
                await d.wait_for("door_held_open")
                await d.wait_for("siren_on")
                assert siren.state
                d.press(CONTACT)
                await d.wait_for("door_closed")
                ev = await d.wait_for("siren_off")
                assert ev.payload["reason"] == "door_closed"
                assert not siren.state

    run(scenario())


def test_siren_stops_after_siren_seconds(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = _siren_door(tmp_path, sim, seconds=0.3)
            async with running_door(cfg, {"entry": sim}) as d:
                d.release(CONTACT)
                await d.wait_for("siren_on")
                assert d.factory.pin(SIREN).state
                ev = await d.wait_for("siren_off", timeout=3)
                assert ev.payload["reason"] == "timeout"
                assert not d.factory.pin(SIREN).state

    run(scenario())


@given(
    st.lists(
        st.sampled_from(
            sorted(
                SOUNDING
                | {
                    "duress",
                    "door_closed",
                    "access_denied",
                    "assist_requested",
                    "emergency_on",
                    "lockout",
                    "reader_fault",
                }
            )
        )
    )
)
def test_siren_sounds_exactly_on_sounding_alarms(types: list[str]):
    """Whatever the sequence, the output is on only after a sounding alarm: a duress (or any
    other event) never sounds it, and the last event decides (held-open ends on close)."""
    from gpiozero.pins.mock import MockFactory

    from edgegate.config.models import GpioConfig
    from edgegate.daemon.siren import SirenOutput
    from edgegate.store.journal import Event

    class Journal:
        """Collects what the siren journals (the door's journal path is tested above)."""

        def __init__(self) -> None:
            self.types: list[str] = []

        async def record(self, type_: str, **fields: object) -> None:
            self.types.append(type_)

        def spawn(self, coro) -> None:
            asyncio.get_running_loop().create_task(coro)

    async def scenario() -> None:
        journal = Journal()
        siren = SirenOutput(GpioConfig(pin_factory="mock", siren=SIREN), MockFactory(), journal)
        cause = None
        for seq, type_ in enumerate(types):
            siren.on_event(Event(seq, "x", 0.0, type_, {}))
            if type_ in SOUNDING:
                cause = type_
            elif type_ == "door_closed" and cause == "door_held_open":
                cause = None
            assert siren.sounding == (cause is not None)
            assert siren.cause == cause
        await settle()
        assert journal.types.count("siren_on") == sum(t in SOUNDING for t in types)
        siren.close()

    asyncio.run(scenario())


def test_staff_release_button_names_the_staff_card_tapped_before(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path, [("entry", sim.port, "in")], rules={"staff_card_seconds": 5}
            )
            enrol(cfg.storage.path, "alice", ALICE)
            enrol(cfg.storage.path, "guard", BOB, attrs={"groups": ["staff"]})
            async with running_door(cfg, {"entry": sim}) as d:
                d.door.set_mode("attended", "test")
                sim.tap(ALICE)
                await d.wait_for("assist_requested")
                # A card that is not staff names nobody.
                d.press(STAFF)
                await settle()
                d.release(STAFF)
                ev = await d.wait_for("staff_release")
                assert "staff" not in ev.payload
                await d.tick(5)
                # The guard taps, then presses the button: the release names the guard.
                sim.tap(BOB)
                await d.wait_for("access_granted")
                await d.quiet(0.2)  # the group lookup
                await d.tick(2)
                d.press(STAFF)
                await settle()
                d.release(STAFF)
                ev = await d.wait_for("staff_release")
                assert ev.payload["staff"] == "guard"
                assert ev.payload["source"] == "staff_release"
                # One tap, one release; and a tap older than staff_card_seconds counts not.
                await d.tick(5)
                sim.tap(BOB)
                await d.wait_for("access_granted")
                await d.quiet(0.2)
                await d.tick(6)
                d.press(STAFF)
                await settle()
                d.release(STAFF)
                ev = await d.wait_for("staff_release")
                assert "staff" not in ev.payload

    run(scenario())


def test_live_doctor_journals_a_report(tmp_path: Path):
    async def scenario():
        with Rdm6300Simulator() as sim:
            cfg = make_config(
                tmp_path,
                [("entry", sim.port, "in"), ("broken", str(tmp_path / "no-such-tty"), "in")],
            )
            async with running_door(cfg, {"entry": sim}) as d:
                d.daemon.doctor.request("test")
                ev = await d.wait_for("doctor_report", timeout=15)
                checks = {c["part"]: c for c in ev.payload["checks"]}
                assert checks["reader entry"]["status"] == "ok"
                assert checks["reader broken"]["status"] == "fail"
                assert "no-such-tty" in checks["reader broken"]["message"]
                assert checks["store"]["status"] == "ok"  # read-only, beside the daemon
                assert ev.payload["result"] == "fail"
                assert ev.payload["trigger"] == "test"
                assert ev.payload["counts"]["fail"] >= 1

    run(scenario())
