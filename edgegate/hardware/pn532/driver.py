"""Async PN532 driver over HSU (UART, 115200 8N1) on ``AsyncSerial``.

Every command is one exchange: the host writes an information frame, the chip answers with an
ACK within a millisecond or so, then the response frame (command code + 1). The dialog is half
duplex (user manual §6.2): while the chip works on a command, the host must not send another.
So a garbled ACK is not a reason to send again: the chip may well be working, and its answer is
waited for until the timeout. A response that fails its checksums is asked for again with a
NACK (the chip re-sends its last response). When nothing clean came by the timeout, the host
aborts the command with an ACK frame (§6.2.1.3) and only then sends it again, once; after that
``Pn532Timeout`` (an ``OSError``) makes the reader base class report reader_fault and reopen.

Bring-up (``handshake``): the wake-up burst 0x55 0x55 + zeros takes the chip out of low-VBAT
mode, SAMConfiguration (normal mode, no SAM) must be the first command after it (so every
attempt at it gets a fresh wake-up burst first), then GetFirmwareVersion proves we are talking
to a PN532, and RFConfiguration item 5 sets MxRtyPassiveActivation to 0x00: one activation
attempt and no retry (0x01 would be two attempts), so a poll with no card answers "0 targets"
at once instead of blocking until a card comes. That keeps every poll a liveness check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from edgegate.errors import EdgegateError
from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.pn532.frame import (
    ACK,
    NACK,
    TFI_CHIP,
    WAKEUP,
    Frame,
    FrameParser,
    Kind,
    command,
)
from edgegate.hardware.serial_port import CORRUPT, FrameLink

log = structlog.get_logger(__name__)

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52
BAUDRATE = 115200
UID_LENGTHS = (4, 7, 10)


class Pn532Error(EdgegateError, OSError):
    """The chip refused a command, answered nonsense, or cannot be talked to."""


class Pn532Timeout(Pn532Error):
    """No ACK or no response in time: unplugged, unpowered, or not in HSU mode."""


class _Corrupt(EdgegateError):
    """Internal: the ACK never came through clean; send the command again."""


@dataclass(frozen=True, slots=True)
class Firmware:
    ic: int
    version: int
    revision: int
    support: int


@dataclass(frozen=True, slots=True)
class Target:
    """One ISO 14443-A target from InListPassiveTarget (106 kbps type A)."""

    uid: bytes
    sens_res: bytes
    sel_res: int

    @property
    def uid_hex(self) -> str:
        # Leading zeros are part of the UID: hex of the bytes, never of an integer.
        return self.uid.hex().upper()


def parse_target(data: bytes) -> Target | None:
    """The first target of an InListPassiveTarget answer (after its 0x4B code byte), None for
    no target. Raises ``ValueError`` on a malformed answer."""
    if not data or data[0] == 0:
        return None
    if len(data) < 6:
        raise ValueError(f"InListPassiveTarget answer too short: {data.hex()}")
    sens_res, sel_res, n = data[2:4], data[4], data[5]
    uid = data[6 : 6 + n]
    if n not in UID_LENGTHS or len(uid) != n:
        raise ValueError(f"InListPassiveTarget answer with a {n}-byte UID: {data.hex()}")
    return Target(bytes(uid), bytes(sens_res), sel_res)


# SAMConfiguration: normal mode (no SAM), virtual card timeout 1 s (20 * 50 ms), IRQ pin used.
SAM_NORMAL = b"\x01\x14\x01"


class Pn532:
    """One chip on one serial port. Commands are serialised by the caller (one reader)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = BAUDRATE,
        timeout: float = 0.5,
        retries: int = 1,
        counters: ReaderCounters | None = None,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.counters = counters if counters is not None else ReaderCounters()
        self.parser = FrameParser(self.counters, tfi=TFI_CHIP)
        self.link: FrameLink[Frame] = FrameLink(
            port,
            baudrate,
            self.parser,
            self.counters,
            error=Pn532Error,
            timeout_error=Pn532Timeout,
            timeout_message=f"no answer from PN532 on {port} (unplugged or not HSU?)",
        )
        self.firmware: Firmware | None = None
        self.nacks_sent = 0
        self.garbled_acks = 0
        self.aborts_sent = 0

    @property
    def last_rx_t(self) -> float:
        return self.link.last_rx_t

    # -- port ---------------------------------------------------------------------------------
    def open(self) -> None:
        self.link.open()

    def close(self) -> None:
        self.link.close()

    # -- exchanges ----------------------------------------------------------------------------
    async def call(
        self,
        code: int,
        params: bytes = b"",
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> bytes:
        """Send command ``code``; return the response data after its code byte."""
        request = command(code, params)
        limit = timeout if timeout is not None else self.timeout
        last: Exception | None = None
        for attempt in range((self.retries if retries is None else retries) + 1):
            if attempt:
                # Half duplex: abort whatever the chip may still be working on before sending
                # again, so the new command is not lost in (or does not break) the old one.
                self.link.write(ACK)
                self.aborts_sent += 1
            self.link.drop_stale()  # a late answer to an abandoned command
            self.link.write(request)
            deadline = time.monotonic() + limit
            try:
                return await self._exchange(code, deadline)
            except (Pn532Timeout, _Corrupt) as exc:
                last = exc
                log.info("pn532_retry", port=self.port, command=code, attempt=attempt + 1)
        if isinstance(last, Pn532Timeout):
            raise last
        raise Pn532Error(f"no clean answer to PN532 command 0x{code:02X} on {self.port}")

    async def _exchange(self, code: int, deadline: float) -> bytes:
        frame = await self.link.next(deadline)
        if isinstance(frame, Frame) and frame.kind is Kind.NACK:
            raise _Corrupt  # the chip saw our frame damaged: nothing runs, send again
        if frame is CORRUPT or (isinstance(frame, Frame) and frame.kind is not Kind.ACK):
            # A garbled ACK: the chip most likely got the command and is working on it.
            # Half duplex: wait for its answer (until the deadline), never send over it.
            self.counters.bad_frames += 1
            self.garbled_acks += 1
            if (
                isinstance(frame, Frame)
                and frame.kind is Kind.DATA
                and frame.data[:1] == bytes([code + 1])
            ):
                return frame.data[1:]  # the ACK was lost entirely; this is the answer
        nacks = 0
        while True:
            frame = await self.link.next(deadline)
            if frame is CORRUPT:
                if nacks >= 3:
                    raise _Corrupt
                # Ask for the same response again rather than running the command twice.
                nacks += 1
                self.nacks_sent += 1
                self.link.write(NACK)
                continue
            assert isinstance(frame, Frame)
            if frame.kind is Kind.ERROR:
                raise Pn532Error(f"PN532 answered 0x{code:02X} with an error frame")
            if frame.kind is Kind.DATA and frame.data[:1] == bytes([code + 1]):
                return frame.data[1:]
            self.counters.bad_frames += 1  # a stray ACK or an answer to something else

    # -- commands -----------------------------------------------------------------------------
    async def wake(self) -> None:
        self.link.write(WAKEUP)

    async def sam_configuration(self) -> None:
        await self.call(SAM_CONFIGURATION, SAM_NORMAL)

    async def get_firmware_version(self) -> Firmware:
        data = await self.call(GET_FIRMWARE_VERSION)
        if len(data) < 4 or data[0] != 0x32:
            raise Pn532Error(f"not a PN532 on {self.port}: firmware answer {data.hex()}")
        self.firmware = Firmware(data[0], data[1], data[2], data[3])
        return self.firmware

    async def set_passive_retries(self, retries: int = 0) -> None:
        # RFConfiguration item 5: MxRtyATR, MxRtyPSL, MxRtyPassiveActivation. The last is the
        # number of RETRIES after the first attempt: 0x00 = one attempt (0xFF = for ever).
        await self.call(RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, retries & 0xFF]))

    async def handshake(self) -> Firmware:
        # SAMConfiguration must be the first command after a wake-up: each attempt at it gets
        # a fresh burst, never a bare re-send to a chip that may have gone back to sleep.
        for attempt in range(self.retries + 1):
            await self.wake()
            try:
                await self.call(SAM_CONFIGURATION, SAM_NORMAL, retries=0)
                break
            except (Pn532Timeout, Pn532Error):
                if attempt == self.retries:
                    raise
                self.link.write(ACK)  # abort, in case it was working after all
                self.aborts_sent += 1
        firmware = await self.get_firmware_version()
        await self.set_passive_retries(0)
        return firmware

    async def list_passive_target(self) -> Target | None:
        """One poll for a 106 kbps type A card (MIFARE, NTAG); None when none is there."""
        data = await self.call(IN_LIST_PASSIVE_TARGET, b"\x01\x00")
        try:
            return parse_target(data)
        except ValueError as exc:
            self.counters.bad_frames += 1
            log.warning("pn532_bad_target", port=self.port, error=str(exc))
            return None
