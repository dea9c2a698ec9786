"""The fingerprint reader at the door, plus enrolment and template sync on a sensor.

``serve`` polls GenImg every ``poll_interval`` seconds (the module has no push mode on the
UART; its touch-out pin could wake us instead, but polling keeps the wiring to four wires).
Each touch produces exactly one outcome, then the reader waits for the finger to lift:

* a match with score >= ``min_score`` -> ``sink.credential(CredentialRead(kind=FINGER,
  value=str(slot), score=score))``; the daemon maps the slot to a person;
* no match, or a match below ``min_score`` -> ``on_unrecognised(reason)``;
* a poor image (GenImg 0x03, Img2Tz 0x06/0x07/0x15) -> ``on_poor_capture(reason)``.

A sensor that stops answering raises ``OSError`` out of ``serve`` so the base class reports
reader_fault and reopens (VfyPwd + ReadSysPara again) with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog

from edgegate.hardware.base import CredentialKind, CredentialRead, Direction, Reader, ReaderSink
from edgegate.hardware.fingerprint.errors import (
    CommunicationError,
    ConfirmationError,
    FingerprintError,
    LibraryFull,
    NoFinger,
    NotFound,
    PoorCapture,
)
from edgegate.hardware.fingerprint.library_sync import SyncCounters, SyncPlan, sync_library
from edgegate.hardware.fingerprint.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    DEFAULT_PASSWORD,
)
from edgegate.hardware.fingerprint.sensor import FingerprintSensor

log = structlog.get_logger(__name__)

ReasonCallback = Callable[[str], None]
Prompt = Callable[[str], None]
# The enrolment prompts, named so an office enrolment can report them as steps.
PLACE = "Place your finger on the sensor."
LIFT = "Lift your finger."
AGAIN = "Place the same finger again."
CAPTURED = "Finger captured. Lift your finger."
POOR = "Poor image"


class SensorRejected(CommunicationError):
    """The sensor answered but refused to work with us (wrong password, not verified...)."""


class FingerprintReader(Reader):
    family = "fingerprint"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        port: str,
        *,
        direction: Direction = Direction.IN,
        baudrate: int = DEFAULT_BAUDRATE,
        address: int = DEFAULT_ADDRESS,
        password: int = DEFAULT_PASSWORD,
        min_score: int = 50,
        poll_interval: float = 0.15,
        timeout: float = 1.0,
        on_unrecognised: ReasonCallback | None = None,
        on_poor_capture: ReasonCallback | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, sink, direction, backoff_initial=backoff_initial, backoff_max=backoff_max
        )
        self.sensor = FingerprintSensor(
            port,
            baudrate=baudrate,
            address=address,
            password=password,
            timeout=timeout,
            counters=self.counters,
        )
        self.min_score = min_score
        self.poll_interval = poll_interval
        self.on_unrecognised = on_unrecognised
        self.on_poor_capture = on_poor_capture
        self.unrecognised = 0
        self.poor_captures = 0
        self._lock = asyncio.Lock()
        self._await_lift = False
        self.sync_counters = SyncCounters()

    async def open(self) -> None:
        await self.sensor.open()
        try:
            params = await self.sensor.handshake()
        except ConfirmationError as exc:
            raise SensorRejected(f"fingerprint sensor rejected handshake: {exc}") from exc
        log.info(
            "fingerprint_sensor_ready",
            reader=self.name,
            capacity=params.capacity,
            packet_size=params.packet_size,
            security_level=params.security_level,
        )

    def close(self) -> None:
        self.sensor.close()

    async def serve(self) -> None:
        while True:
            async with self._lock:
                try:
                    await self._poll_once()
                except ConfirmationError as exc:
                    # e.g. 0x21 after the module rebooted with a password: reopen = handshake.
                    raise SensorRejected(f"fingerprint sensor error: {exc}") from exc
            await asyncio.sleep(self.poll_interval)

    async def _poll_once(self) -> None:
        sensor = self.sensor
        try:
            await sensor.capture()
        except NoFinger:
            self._await_lift = False
            return
        except PoorCapture as exc:
            if not self._await_lift:
                self._poor(exc)
            return
        if self._await_lift:
            return  # the finger we already handled is still on the glass
        self._await_lift = True
        try:
            await sensor.image_to_template(1)
        except PoorCapture as exc:
            self._poor(exc)
            return
        try:
            slot, score = await sensor.search()
        except NotFound:
            self._unrecognised("not_found", None)
            return
        if score < self.min_score:
            self._unrecognised("low_score", score)
            return
        self.counters.reads += 1
        log.info("fingerprint_match", reader=self.name, slot=slot, score=score)
        self.sink.credential(
            CredentialRead(
                kind=CredentialKind.FINGER,
                value=str(slot),
                reader=self.name,
                direction=self.direction,
                score=float(score),
                t=sensor.last_rx_t or time.perf_counter(),
            )
        )

    def _poor(self, exc: PoorCapture) -> None:
        self.poor_captures += 1
        self._await_lift = True
        log.info("fingerprint_poor_capture", reader=self.name, reason=exc.reason, code=exc.code)
        _call(self.on_poor_capture, exc.reason, self.name)

    def _unrecognised(self, reason: str, score: int | None) -> None:
        self.unrecognised += 1
        log.info("fingerprint_unrecognised", reader=self.name, reason=reason, score=score)
        _call(self.on_unrecognised, reason, self.name)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[FingerprintSensor]:
        """Borrow the sensor between two polls for commands that use no finger (library sync).

        The lock is what keeps another user's commands out of the middle of a poll: GenImg,
        Img2Tz(1) and Search share char buffer 1 and the serial line with everything else.
        """
        async with self._lock:
            if not self.healthy:
                raise CommunicationError(f"fingerprint reader {self.name} is not available")
            yield self.sensor

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FingerprintSensor]:
        """Borrow the running reader's sensor (enrolment) between two polls.

        Door reads pause while the session is open; afterwards the finger used (if any) must
        lift before the next read, so an enrolment touch never becomes an access request.
        """
        async with self.exclusive() as sensor:
            try:
                yield sensor
            finally:
                await self._probe_finger()

    async def sync_library(self, store: Any, key: bytes, model: str) -> SyncPlan:
        """Reconcile this sensor's library with the store's finger credentials (one pass;
        see library_sync). Raises ``OSError`` when the sensor is unavailable."""
        return await sync_library(
            self.exclusive,
            store,
            key,
            model,
            self.sync_counters,
            reader=self.name,
            on_event=lambda type_, **f: self.sink.reader_event(self.name, type_, **f),
        )

    def status(self) -> dict[str, object]:
        return {**super().status(), "library_sync": self.sync_counters.as_dict()}

    async def _probe_finger(self) -> None:
        # A finger left on the glass after an enrolment must lift before the next read;
        # without this probe the next poll would search it and report an access request.
        try:
            await self.sensor.capture()
        except NoFinger:
            self._await_lift = False
            return
        except (FingerprintError, OSError):
            pass  # the serve loop will meet (and report) a real problem on its next poll
        self._await_lift = True


def _call(callback: ReasonCallback | None, reason: str, reader: str) -> None:
    if callback is None:
        return
    try:
        callback(reason)
    except Exception:
        # A broken LED/buzzer handler must not stop the door from reading fingers.
        log.exception("fingerprint_callback_failed", reader=reader, reason=reason)


# -- enrolment and template sync ---------------------------------------------------------------


class EnrollTimeout(FingerprintError):
    """Nobody placed (or lifted) a finger in time."""


class DuplicateFinger(FingerprintError):
    def __init__(self, slot: int, score: int) -> None:
        super().__init__(f"this finger is already enrolled in slot {slot} (score {score})")
        self.slot = slot
        self.score = score


async def _capture_into(
    sensor: FingerprintSensor, buffer: int, prompt: Prompt, poll: float, deadline: float
) -> None:
    while time.monotonic() < deadline:
        try:
            await sensor.capture()
            await sensor.image_to_template(buffer)
            return
        except NoFinger:
            await asyncio.sleep(poll)
        except PoorCapture as exc:
            prompt(f"{POOR} ({exc.meaning}). Lift your finger and place it again.")
            await _wait_lift(sensor, poll, deadline)
    raise EnrollTimeout("no finger placed in time")


async def _wait_lift(sensor: FingerprintSensor, poll: float, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            await sensor.capture()
        except NoFinger:
            return
        except PoorCapture:
            pass
        await asyncio.sleep(poll)
    raise EnrollTimeout("finger not lifted in time")


async def _merged_template(
    sensor: FingerprintSensor,
    prompt: Prompt,
    poll_interval: float,
    deadline: float,
    reject_duplicate: bool,
) -> None:
    """Two captures with a lift between, merged by RegModel into char buffers 1 and 2."""
    prompt(PLACE)
    await _capture_into(sensor, 1, prompt, poll_interval, deadline)
    if reject_duplicate:
        try:
            found, score = await sensor.search()
        except NotFound:
            pass
        else:
            raise DuplicateFinger(found, score)
    prompt(LIFT)
    await _wait_lift(sensor, poll_interval, deadline)
    prompt(AGAIN)
    await _capture_into(sensor, 2, prompt, poll_interval, deadline)
    await sensor.create_model()


async def enroll(
    sensor: FingerprintSensor,
    slot: int | None,
    prompt: Prompt = print,
    *,
    poll_interval: float = 0.1,
    timeout: float = 60.0,
    reject_duplicate: bool = True,
) -> int:
    """Enrol one finger: two captures with a lift between, RegModel, Store. Returns the slot.

    ``slot=None`` takes the first free slot. With ``reject_duplicate`` a finger already in the
    library raises ``DuplicateFinger`` (one finger mapped to two people would make the match
    ambiguous). Raises ``MergeFailed`` when the two captures are not the same finger.
    """
    deadline = time.monotonic() + timeout
    if slot is None:
        slot = await sensor.free_slot()
        if slot is None:
            raise LibraryFull(LibraryFull.code)
    await _merged_template(sensor, prompt, poll_interval, deadline, reject_duplicate)
    await sensor.store(slot, 1)
    prompt(f"Finger stored in slot {slot}. Lift your finger.")
    return slot


async def capture_template(
    sensor: FingerprintSensor,
    model: str,
    prompt: Prompt = print,
    *,
    poll_interval: float = 0.1,
    timeout: float = 60.0,
) -> tuple[bytes, str]:
    """Capture a finger on a desk sensor and return (template, sensor family) without
    storing it in the sensor: the central office enrols this way and sends the template to
    the doors (UpChar of the merged char buffer 1). ``model`` is the family of this sensor,
    from its config: the module cannot be asked reliably, and the tag decides which doors
    may use the template."""
    deadline = time.monotonic() + timeout
    await _merged_template(sensor, prompt, poll_interval, deadline, reject_duplicate=False)
    template = await sensor.upload_template(1)
    prompt(CAPTURED)
    return template, model


async def export_template(sensor: FingerprintSensor, slot: int) -> bytes:
    """The stored template of ``slot`` (LoadChar + UpChar), to send to other doors."""
    await sensor.load(slot, 1)
    return await sensor.upload_template(1)


async def sync_template(sensor: FingerprintSensor, slot: int, template: bytes) -> None:
    """Write a template exported elsewhere into ``slot`` (DownChar + Store)."""
    await sensor.download_template(1, template)
    await sensor.store(slot, 1)


async def remove_template(sensor: FingerprintSensor, slot: int) -> None:
    """Delete ``slot`` (person disabled or removed)."""
    await sensor.delete(slot, 1)
