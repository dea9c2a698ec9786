"""The driver against the simulated module on a real pty, through pyserial."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from edgegate.hardware.fingerprint import errors
from edgegate.hardware.fingerprint.protocol import Instruction
from edgegate.hardware.fingerprint.sensor import FingerprintSensor
from edgegate.sim.fingerprint import (
    CaptureOutcome,
    FingerprintSimulator,
    degrade,
    finger_template,
)

Session = Callable[[FingerprintSensor], Coroutine[Any, Any, Any]]


def with_sensor(sim: FingerprintSimulator, body: Session, **kwargs: Any) -> Any:
    async def main() -> Any:
        kwargs.setdefault("timeout", 0.3)
        sensor = FingerprintSensor(sim.port, **kwargs)
        await sensor.open()
        try:
            return await body(sensor)
        finally:
            sensor.close()

    return asyncio.run(main())


def test_handshake_reads_parameters(make_sim: Callable[..., FingerprintSimulator]) -> None:
    sim = make_sim(capacity=300, packet_size=64)

    async def body(s: FingerprintSensor) -> None:
        params = await s.handshake()
        assert (params.capacity, params.packet_size, params.baudrate) == (300, 64, 57600)
        assert params.address == 0xFFFFFFFF
        assert s.packet_size == 64

    with_sensor(sim, body)


def test_enrol_search_delete_empty(sim: FingerprintSimulator) -> None:
    sim.enroll(7, "bob")

    async def body(s: FingerprintSensor) -> None:
        await s.handshake()
        sim.place_finger("alice")
        await s.capture()
        await s.image_to_template(1)
        await s.capture()
        await s.image_to_template(2)
        assert await s.match() == 200
        await s.create_model()
        await s.store(3)
        assert await s.template_count() == 2
        assert await s.used_slots() == {3, 7}
        assert await s.free_slot() == 0
        await s.capture()
        await s.image_to_template(1)
        assert await s.search() == (3, 200)
        sim.place_finger("bob", quality=0.6)  # 40 % of the template bytes differ
        await s.capture()
        await s.image_to_template(1)
        slot, score = await s.search()
        assert slot == 7 and 115 <= score <= 125
        with pytest.raises(errors.NotFound):
            await s.search(start=0, count=7)  # bob's slot outside the range searched
        await s.delete(7)
        with pytest.raises(errors.NotFound):
            await s.search()
        with pytest.raises(errors.BadPageId):
            await s.store(200)
        await s.empty()
        assert await s.template_count() == 0

    with_sensor(sim, body)
    assert sim.library == {}


def test_capture_states_map_to_errors(sim: FingerprintSimulator) -> None:
    async def body(s: FingerprintSensor) -> None:
        await s.handshake()
        with pytest.raises(errors.NoFinger):
            await s.capture()
        with pytest.raises(errors.NoValidImage):
            await s.image_to_template(1)
        sim.place_finger("carol")
        sim.script_captures(
            CaptureOutcome.IMAGE_FAIL, CaptureOutcome.MESSY, CaptureOutcome.FEW_FEATURES
        )
        with pytest.raises(errors.ImageFail):
            await s.capture()
        await s.capture()
        with pytest.raises(errors.MessyImage):
            await s.image_to_template(1)
        await s.capture()
        with pytest.raises(errors.TooFewFeatures) as info:
            await s.image_to_template(1)
        assert isinstance(info.value, errors.PoorCapture)
        await s.capture()
        await s.image_to_template(1)
        sim.place_finger("dave")
        await s.capture()
        await s.image_to_template(2)
        with pytest.raises(errors.MergeFailed):
            await s.create_model()
        with pytest.raises(errors.NoMatch):
            await s.match()

    with_sensor(sim, body)


@pytest.mark.parametrize("packet_size", [32, 64, 128, 256])
def test_template_upload_download_round_trip(
    make_sim: Callable[..., FingerprintSimulator], packet_size: int
) -> None:
    sim = make_sim(packet_size=packet_size)
    template = degrade(finger_template("erin"), 0.9)
    sim.enroll(11, template)

    async def body(s: FingerprintSensor) -> None:
        await s.handshake()
        await s.load(11, 1)
        up = await s.upload_template(1)
        assert up == template
        await s.download_template(2, up[::-1])
        await s.store(12, 2)
        await s.load(12, 1)
        assert await s.upload_template(1) == template[::-1]
        with pytest.raises(errors.TemplateReadError):
            await s.load(13, 1)

    with_sensor(sim, body)
    assert sim.library[12] == template[::-1]
    # 512 bytes in packet_size chunks each way, plus commands and acks.
    assert sim.commands[Instruction.UP_CHAR] == 2


def test_password(make_sim: Callable[..., FingerprintSimulator]) -> None:
    sim = make_sim(password=0xC0FFEE)

    async def wrong(s: FingerprintSensor) -> None:
        with pytest.raises(errors.WrongPassword, match="wrong sensor password"):
            await s.handshake()
        with pytest.raises(errors.PasswordNotVerified):
            await s.template_count()

    with_sensor(sim, wrong, password=0x1234)

    async def right(s: FingerprintSensor) -> None:
        await s.handshake()
        await s.set_password(0xBEEF)

    with_sensor(sim, right, password=0xC0FFEE)
    assert sim.password == 0xBEEF


def test_address(make_sim: Callable[..., FingerprintSimulator]) -> None:
    sim = make_sim(address=0x12345678)

    async def wrong(s: FingerprintSensor) -> None:
        with pytest.raises(errors.SensorTimeout, match="no answer"):
            await s.handshake()

    with_sensor(sim, wrong, timeout=0.1)
    assert sim.ignored_packets == 2  # the command and its retry, both ignored

    async def right(s: FingerprintSensor) -> None:
        await s.handshake()
        await s.set_address(0xAABBCCDD)
        assert await s.template_count() == 0

    with_sensor(sim, right, address=0x12345678)
    assert sim.address == 0xAABBCCDD


def test_corrupt_answer_is_retried_and_counted(sim: FingerprintSimulator) -> None:
    sim.enroll(5, "frank")

    async def body(s: FingerprintSensor) -> None:
        await s.handshake()
        sim.corrupt_next(1)
        assert await s.template_count() == 1
        assert s.counters.bad_checksum == 1
        await s.load(5, 1)
        sim.corrupt_next(2)  # the UpChar ack and its first data packet
        assert await s.upload_template(1) == finger_template("frank")

    with_sensor(sim, body, retries=2)
    # Two corrupt packets arriving in one read cost one retry, in separate reads two.
    assert 2 <= sim.commands[Instruction.UP_CHAR] <= 3


def test_always_corrupt_is_a_communication_error(sim: FingerprintSimulator) -> None:
    async def body(s: FingerprintSensor) -> None:
        sim.corrupt_always = True
        with pytest.raises(errors.CorruptResponse) as info:
            await s.template_count()
        assert isinstance(info.value, OSError)
        assert s.counters.bad_checksum == 2  # first try and one retry
        sim.corrupt_always = False
        await s.verify_password()

    with_sensor(sim, body)


def test_unplugged_sensor_times_out(sim: FingerprintSimulator) -> None:
    async def body(s: FingerprintSensor) -> None:
        await s.handshake()
        sim.unplug()
        with pytest.raises(errors.SensorTimeout):
            await s.capture()
        sim.replug()
        await s.verify_password()

    with_sensor(sim, body, timeout=0.1)


def test_malformed_command_answered_not_crashing_the_module(sim: FingerprintSimulator) -> None:
    async def body(s: FingerprintSensor) -> None:
        # Search needs 5 parameter bytes; the module answers 0x01 (receive error), the driver
        # resends once, then gives up with a communication error.
        with pytest.raises(errors.CorruptResponse):
            await s._call(Instruction.SEARCH, b"\x01")
        await s.handshake()

    with_sensor(sim, body)
    assert sim.commands[Instruction.SEARCH] == 2
