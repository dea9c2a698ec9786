"""FingerprintReader end to end: simulated module on a pty, pyserial, the reader's run loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fp_helpers import RecordingSink, wait_until

from edgegate.hardware.base import CredentialKind, Direction
from edgegate.hardware.fingerprint import errors
from edgegate.hardware.fingerprint.reader import (
    DuplicateFinger,
    FingerprintReader,
    enroll,
    export_template,
    remove_template,
    sync_template,
)
from edgegate.sim.fingerprint import CaptureOutcome, FingerprintSimulator, finger_template

POLL = 0.02


def make_reader(sim: FingerprintSimulator, sink: RecordingSink, **kwargs: Any) -> FingerprintReader:
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("timeout", 0.2)
    return FingerprintReader(
        "finger-in",
        sink,
        sim.port,
        on_unrecognised=sink.unrecognised,
        on_poor_capture=sink.poor_capture,
        backoff_initial=0.05,
        backoff_max=0.2,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(reader: FingerprintReader) -> AsyncIterator[FingerprintReader]:
    task = asyncio.create_task(reader.run())
    try:
        await wait_until(lambda: reader.healthy or task.done() or reader.last_error is not None)
        yield reader
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def polls(sim: FingerprintSimulator, n: int = 3) -> None:
    """Wait until the reader has sent ``n`` more GenImg commands."""
    start = sim.commands[0x01]
    await wait_until(lambda: sim.commands[0x01] >= start + n)


def test_enrolled_finger_gives_one_read_per_touch(
    sim: FingerprintSimulator, sink: RecordingSink
) -> None:
    sim.enroll(42, "alice")

    async def main() -> None:
        async with running(make_reader(sim, sink, direction=Direction.OUT)) as reader:
            sim.place_finger("alice")
            await wait_until(lambda: len(sink.reads) == 1)
            await polls(sim, 5)  # finger held: no second read
            assert len(sink.reads) == 1
            sim.lift_finger()
            await polls(sim)
            sim.place_finger("alice", quality=0.9)
            await wait_until(lambda: len(sink.reads) == 2)
            assert reader.counters.reads == 2

    asyncio.run(main())
    first, second = sink.reads
    assert (first.kind, first.value, first.score) == (CredentialKind.FINGER, "42", 200.0)
    assert (first.reader, first.direction) == ("finger-in", Direction.OUT)
    assert second.value == "42" and 175 <= (second.score or 0) <= 185
    assert sink.of("unrecognised") == [] and sink.of("poor_capture") == []


def test_unknown_and_weak_matches_are_unrecognised(
    sim: FingerprintSimulator, sink: RecordingSink
) -> None:
    sim.enroll(1, "bob")

    async def main() -> None:
        async with running(make_reader(sim, sink, min_score=150)):
            sim.place_finger("mallory")
            await wait_until(lambda: len(sink.of("unrecognised")) == 1)
            sim.lift_finger()
            await polls(sim)
            sim.place_finger("bob", quality=0.6)  # found by the module, score ~120 < 150
            await wait_until(lambda: len(sink.of("unrecognised")) == 2)

    asyncio.run(main())
    assert sink.of("unrecognised") == ["not_found", "low_score"]
    assert sink.reads == []


def test_poor_captures_give_guidance_once_per_touch(
    sim: FingerprintSimulator, sink: RecordingSink
) -> None:
    sim.enroll(3, "carol")
    outcomes = [CaptureOutcome.IMAGE_FAIL, CaptureOutcome.MESSY, CaptureOutcome.FEW_FEATURES]

    async def main() -> None:
        async with running(make_reader(sim, sink)):
            for n, outcome in enumerate(outcomes, 1):
                sim.script_captures(outcome)
                sim.place_finger("carol")
                await wait_until(lambda n=n: len(sink.of("poor_capture")) == n)
                await polls(sim, 3)
                sim.lift_finger()
                await polls(sim)
            sim.place_finger("carol")  # a good touch after the retries
            await wait_until(lambda: len(sink.reads) == 1)

    asyncio.run(main())
    assert sink.of("poor_capture") == ["image_failed", "messy_image", "too_few_features"]
    assert sink.reads[0].value == "3"


def test_broken_callback_does_not_stop_the_reader(
    sim: FingerprintSimulator, sink: RecordingSink
) -> None:
    sim.enroll(0, "dave")

    def explode(reason: str) -> None:
        raise RuntimeError("buzzer on fire")

    async def main() -> None:
        reader = make_reader(sim, sink)
        reader.on_unrecognised = explode
        async with running(reader):
            sim.place_finger("eve")
            await wait_until(lambda: reader.unrecognised == 1)
            sim.lift_finger()
            await polls(sim)
            sim.place_finger("dave")
            await wait_until(lambda: len(sink.reads) == 1)

    asyncio.run(main())
    assert sink.of("fault") == []


def test_wrong_password_is_a_reported_fault(
    make_sim: Callable[..., FingerprintSimulator], sink: RecordingSink
) -> None:
    sim = make_sim(password=0x0BADC0DE)

    async def main() -> None:
        reader = make_reader(sim, sink, password=0x1)
        async with running(reader):
            await wait_until(lambda: sim.commands[0x13] >= 3)  # retried with backoff
            assert not reader.healthy

    asyncio.run(main())
    [reason] = sink.of("fault")  # reported once, not on every retry
    assert "wrong sensor password" in reason
    assert sink.of("recovered") == []


def test_unplug_then_replug(
    make_sim: Callable[..., FingerprintSimulator], sink: RecordingSink
) -> None:
    sim = make_sim(password=77)
    sim.enroll(9, "frank")

    async def main() -> None:
        reader = make_reader(sim, sink, password=77)
        async with running(reader):
            sim.unplug()
            await wait_until(lambda: len(sink.of("fault")) == 1)
            assert not reader.healthy
            sim.replug()  # power-on reset: the password must be verified again
            await wait_until(lambda: len(sink.of("recovered")) == 1)
            sim.place_finger("frank")
            await wait_until(lambda: len(sink.reads) == 1)
            # A quick power blip between two polls: the module answers 0x21 (not verified).
            sim.lift_finger()
            sim.unplug()
            sim.replug()
            await wait_until(lambda: len(sink.of("recovered")) == 2)
            assert reader.counters.faults == 2 and reader.counters.reopens == 2

    asyncio.run(main())
    kinds = [k for k, _ in sink.calls]
    assert kinds == ["fault", "recovered", "credential", "fault", "recovered"]
    assert "no answer" in sink.of("fault")[0]
    assert "password must be verified" in sink.of("fault")[1]


def test_enrol_at_the_running_door(sim: FingerprintSimulator, sink: RecordingSink) -> None:
    prompts: list[str] = []

    async def place_twice() -> None:
        await wait_until(lambda: any("Place your finger" in p for p in prompts))
        sim.place_finger("grace")
        await wait_until(lambda: any("Lift" in p for p in prompts))
        sim.lift_finger()
        await wait_until(lambda: any("same finger" in p for p in prompts))
        sim.script_captures(CaptureOutcome.MESSY)  # one bad image on the second touch
        sim.place_finger("grace")
        await wait_until(lambda: any("Poor image" in p for p in prompts))
        sim.lift_finger()
        await asyncio.sleep(0.05)
        sim.place_finger("grace")

    async def main() -> None:
        reader = make_reader(sim, sink)
        async with running(reader):
            async with reader.session() as sensor:
                finger = asyncio.create_task(place_twice())
                slot = await enroll(sensor, None, prompts.append, poll_interval=POLL, timeout=5)
                await finger
            assert slot == 0
            await polls(sim, 3)
            assert sink.reads == []  # the enrolment touch is not an access request
            sim.lift_finger()
            await polls(sim)
            sim.place_finger("grace")
            await wait_until(lambda: len(sink.reads) == 1)
            async with reader.session() as sensor:
                with pytest.raises(DuplicateFinger, match="slot 0"):
                    await enroll(sensor, 5, prompts.append, poll_interval=POLL, timeout=5)

    asyncio.run(main())
    assert sink.reads[0].value == "0"
    assert sim.library[0] == finger_template("grace")


def test_template_export_and_import_into_two_other_doors(
    make_sim: Callable[..., FingerprintSimulator], sink: RecordingSink
) -> None:
    office, door_a, door_b = make_sim(), make_sim(packet_size=32), make_sim(packet_size=256)
    door_a.enroll(4, "someone-else")

    async def main() -> None:
        from edgegate.hardware.fingerprint.sensor import FingerprintSensor

        sensor = FingerprintSensor(office.port, timeout=0.3)
        await sensor.open()
        await sensor.handshake()
        office.place_finger("heidi")
        task = asyncio.create_task(enroll(sensor, 17, lambda _: None, poll_interval=POLL))
        await wait_until(lambda: office.commands[0x02] >= 1)
        office.lift_finger()
        await wait_until(lambda: office.commands[0x01] >= 3)
        office.place_finger("heidi")
        assert await task == 17
        template = await export_template(sensor, 17)
        sensor.close()

        for door in (door_a, door_b):
            reader = make_reader(door, sink)
            async with running(reader):
                async with reader.session() as s:
                    await sync_template(s, 23, template)
                door.place_finger("heidi", quality=0.95)
                before = len(sink.reads)
                await wait_until(lambda before=before: len(sink.reads) == before + 1)
                async with reader.session() as s:
                    await remove_template(s, 23)
                    assert 23 not in await s.used_slots()

    asyncio.run(main())
    # quality 0.95 alters 26 of 512 bytes: score 200 * 486 // 512 = 189 on both doors.
    assert [(r.value, r.score) for r in sink.reads] == [("23", 189.0), ("23", 189.0)]
    assert 4 in door_a.library and 23 not in door_b.library


def test_session_refused_while_faulted(
    make_sim: Callable[..., FingerprintSimulator], sink: RecordingSink
) -> None:
    sim = make_sim()
    sim.unplug()

    async def main() -> None:
        reader = make_reader(sim, sink)
        async with running(reader):
            await wait_until(lambda: len(sink.of("fault")) == 1)
            with pytest.raises(errors.CommunicationError, match="not available"):
                async with reader.session():
                    pass

    asyncio.run(main())


def test_vanished_port_is_a_fault_without_waiting_for_the_timeout(
    make_sim: Callable[..., FingerprintSimulator], sink: RecordingSink
) -> None:
    sim = make_sim()

    async def main() -> None:
        # A 30 s answer timeout: only the hang-up itself can report the fault within 5 s.
        reader = make_reader(sim, sink, timeout=30.0)
        async with running(reader):
            await polls(sim)
            sim.stop()  # the pty goes away, like a USB adaptor pulled out
            await wait_until(lambda: len(sink.of("fault")) == 1, timeout=5)
            assert not reader.healthy

    asyncio.run(main())
    assert "is not open" not in sink.of("fault")[0]  # the hang-up itself is reported
