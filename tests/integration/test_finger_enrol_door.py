"""The door's side of an office finger enrolment (``enrol_finger``), in a running door with
the fingerprint simulator on a pseudo-terminal: the steps as the person follows them (a poor
image included), the template sealed to the office's session key and bound to the
enrolment, one enrolment at a time, a failure when nobody touches the sensor, and door reads
paused while it captures. A door without a reader refuses the command over the real broker."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from edgegate.contract import enrol_seal
from edgegate.contract.messages import EnrolFingerArgs, EnrolProgress
from edgegate.daemon.finger_enrol import FingerEnrolment
from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import CaptureOutcome, FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import running_door
from tests.integration.fp_doors import fp_config
from tests.sync.central import command
from tests.sync.test_door_inbound import scenario_door
from tests.sync.test_door_sync import until


def test_door_captures_reports_steps_and_seals_for_the_office(tmp_path: Path):
    sent: list[EnrolProgress] = []
    key, public = enrol_seal.new_session()

    async def steps_seen(*wanted: str) -> None:
        await until(lambda: [p.step for p in sent][-len(wanted) :] == list(wanted), 10)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            cards = stack.enter_context(Rdm6300Simulator())
            sim = stack.enter_context(FingerprintSimulator())
            cfg = fp_config(tmp_path, cards.port, sim.port, door="lab")
            d = await stack.enter_async_context(running_door(tmp_path, sim=cards, config=cfg))
            reader = d.daemon.finger_library.reader
            await until(lambda: reader.healthy, 10)
            enrol = FingerEnrolment(reader, "r307", site="t", door="lab", publish=sent.append)
            args = EnrolFingerArgs(person="carol", session=public, timeout=10)
            enrol.start("c1", args)
            with pytest.raises(ValueError, match="already running"):
                enrol.start("c2", args)
            await steps_seen("started", "place")
            sim.script_captures(CaptureOutcome.MESSY)
            sim.place_finger("carol-thumb")
            await steps_seen("poor")
            sim.lift_finger()
            await asyncio.sleep(0.2)
            sim.place_finger("carol-thumb")
            await steps_seen("lift")
            sim.lift_finger()
            await steps_seen("again")
            sim.place_finger("carol-thumb")
            await until(lambda: sent[-1].step == "captured", 10)
            sim.lift_finger()
            assert not enrol.running and enrol.counters["captured"] == 1
            # The enrolment's touches never became door decisions.
            assert d.daemon.door.counters["denied"] == d.daemon.door.counters["granted"] == 0
            assert reader.unrecognised == 0
            assert sim.library == {}  # nothing stored on the sensor

            # Nobody comes: the door gives up and says why.
            enrol.start("c3", EnrolFingerArgs(person="dave", session=public, timeout=5))
            await until(lambda: sent[-1].step == "failed", 15)
            assert "no finger placed in time" in sent[-1].detail

    asyncio.run(asyncio.wait_for(scenario(), 60))
    done = next(p for p in sent if p.step == "captured")
    assert done.sealed is not None and done.model == "r307"
    aad = enrol_seal.bound_to("t", "lab", "c1", "carol", "r307")
    assert enrol_seal.open_sealed(key, done.sealed, aad) == finger_template("carol-thumb")
    with pytest.raises(enrol_seal.EnrolSealError):  # bound to carol, not someone else
        enrol_seal.open_sealed(key, done.sealed, enrol_seal.bound_to("t", "lab", "c1", "x", "r307"))


@pytest.mark.broker
def test_door_without_a_reader_refuses_the_command(tmp_path: Path, broker: Broker):
    _key, public = enrol_seal.new_session()

    async def body(d, central, sim):
        args = {"person": "carol", "session": public, "timeout": 30}
        await asyncio.to_thread(
            central.send, central.topics.cmd, command("enrol_finger", args=args)
        )
        await until(lambda: central.events_of("command_ack"))
        [ack] = central.events_of("command_ack")
        assert (ack["cmd"], ack["result"]) == ("enrol_finger", "refused")
        assert ack["reason"] == "this door has no fingerprint reader"

    scenario_door(tmp_path, broker, body)
