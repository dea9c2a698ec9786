"""A PN532 in HSU mode simulated on a pseudo-terminal, speaking the real frame protocol.

The daemon opens the pty's slave end with pyserial exactly as it would /dev/ttyUSB0. The chip
starts asleep (as after power-on): it ignores frames until it sees the 0x55 wake-up burst.
Each command frame is answered with an ACK and then the response; a NACK from the host gets
the last response again. Cards are virtual ISO 14443-A targets: ``present`` one with a 4-, 7-
or 10-byte UID and it answers every InListPassiveTarget until ``remove``. ``corrupt_next``
breaks the DCS of the next responses, ``unplug`` makes the chip go silent (input swallowed)
and ``replug`` brings it back asleep, as a power cycle would.

Half duplex (user manual §6.2): with ``work_seconds`` set the chip answers that long after its
ACK, as a real command takes time. A command frame arriving while it is still working breaks
the dialog: the running command's answer is lost (counted in ``overruns``). An ACK frame from
the host aborts the running command (``aborts``). ``garble_ack_next`` damages the next ACKs
on the wire while the chip goes on working, as line noise would.

Like the fingerprint simulator it runs in its own thread (``ThreadedPtyDevice``): the chip
is a separate processor, so it answers while the loop under test is busy.
"""

from __future__ import annotations

import threading
from collections import Counter

from edgegate.hardware.pn532.driver import (
    GET_FIRMWARE_VERSION,
    IN_LIST_PASSIVE_TARGET,
    IN_RELEASE,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    UID_LENGTHS,
)
from edgegate.hardware.pn532.frame import (
    ACK,
    ERROR,
    TFI_HOST,
    Frame,
    FrameParser,
    Kind,
    response,
)
from edgegate.sim.pty_device import ThreadedPtyDevice

FIRMWARE = bytes([0x32, 0x01, 0x06, 0x07])  # PN532, v1.6, supports ISO A, ISO B, ISO 18092
# SENS_RES (ATQA) by UID size: bits 7-6 of its first byte say single/double/triple size.
_SENS_RES = {4: b"\x00\x04", 7: b"\x00\x44", 10: b"\x00\x84"}
_SEL_RES = {4: 0x08, 7: 0x00, 10: 0x20}  # MIFARE Classic 1K, NTAG/Ultralight, DESFire-like


class Pn532Simulator(ThreadedPtyDevice):
    thread_name = "pn532-sim"

    def __init__(self) -> None:
        super().__init__()
        self.commands: Counter[int] = Counter()
        self.nacks_received = 0
        self.awake = False
        self.sam_configured = False
        self._card: bytes | None = None
        self._last_response: bytes | None = None
        self._parser = FrameParser(tfi=TFI_HOST)
        self.work_seconds = 0.0
        self.overruns = 0
        self.aborts = 0
        self.max_passive_retries: int | None = None  # RFConfiguration item 5, as last set
        self._garble_ack = 0
        self._working: threading.Timer | None = None

    close = ThreadedPtyDevice.stop

    # -- what a test or demo does to the device -----------------------------------------------
    def present(self, uid: str) -> None:
        raw = bytes.fromhex(uid)
        if len(raw) not in UID_LENGTHS:
            raise ValueError(f"an ISO 14443-A UID is 4, 7 or 10 bytes, not {len(raw)}")
        with self._lock:
            self._card = raw

    def garble_ack_next(self, n: int = 1) -> None:
        """Damage the next ``n`` ACK frames on the wire (the command still runs)."""
        with self._lock:
            self._garble_ack += n

    def remove(self) -> None:
        with self._lock:
            self._card = None

    def replug(self) -> None:
        """Power comes back: the chip is asleep and unconfigured until woken again."""
        with self._lock:
            self._unplugged = False
            self.awake = False
            self.sam_configured = False
            self._last_response = None
            self._parser.reset()

    # -- device thread ------------------------------------------------------------------------
    def _received(self, data: bytes, t: float) -> None:
        with self._lock:
            if self._unplugged:
                return
            if not self.awake:
                at = data.find(0x55)
                if at < 0:
                    return  # asleep: frames without a wake-up are lost
                self.awake = True
                data = data[at:]
            for frame in self._parser.feed(data):
                self._handle(frame)

    def _handle(self, frame: Frame) -> None:
        working, self._working = self._working, None
        if working is not None:
            working.cancel()
            if frame.kind is Kind.ACK:
                self.aborts += 1  # the host's ACK aborts the running command
                return
            self.overruns += 1  # half duplex broken: the running command's answer is lost
        if frame.kind is Kind.NACK:
            self.nacks_received += 1
            if self._last_response is not None:
                self._write(self._last_response)
            return
        if frame.kind is not Kind.DATA or not frame.data:
            return  # an ACK from the host aborts; nothing is running here to abort
        code, params = frame.data[0], frame.data[1:]
        self.commands[code] += 1
        if self._garble_ack:
            self._garble_ack -= 1
            self._write(ACK[:4] + b"\x5a" + ACK[5:])  # LCS wrong: LEN + LCS != 0
        else:
            self._write(ACK)
        if self.work_seconds > 0:
            timer = threading.Timer(self.work_seconds, self._finish, (code, params))
            timer.daemon = True
            self._working = timer
            timer.start()
            return
        self._answer(code, params)

    def _finish(self, code: int, params: bytes) -> None:
        with self._lock:
            if self._working is None or self._stop:
                return  # aborted or overrun meanwhile
            self._working = None
            self._answer(code, params)

    def _answer(self, code: int, params: bytes) -> None:
        answer = self._execute(code, params)
        if answer is None:
            self._last_response = ERROR
        else:
            self._last_response = response(code + 1, answer)
        out = bytearray(self._last_response)
        if self._corrupt_next and answer is not None:
            self._corrupt_next -= 1
            out[-2] ^= 0x5A  # the DCS
        self._write(bytes(out))

    def _execute(self, code: int, params: bytes) -> bytes | None:
        if code == SAM_CONFIGURATION:
            self.sam_configured = True
            return b""
        if not self.sam_configured:
            return None  # still in low-VBAT mode: SAMConfiguration must come first
        if code == GET_FIRMWARE_VERSION:
            return FIRMWARE
        if code == RF_CONFIGURATION:
            if params[:1] == b"\x05" and len(params) >= 4:
                self.max_passive_retries = params[3]
            return b""
        if code == IN_RELEASE:
            return b"\x00"
        if code == IN_LIST_PASSIVE_TARGET:
            if len(params) < 2 or params[1] != 0x00 or self._card is None:
                return b"\x00"
            uid = self._card
            return b"\x01\x01" + _SENS_RES[len(uid)] + bytes([_SEL_RES[len(uid)], len(uid)]) + uid
        return None  # unknown command: the chip answers with an error frame
