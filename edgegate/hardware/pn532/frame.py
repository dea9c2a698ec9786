"""The PN532 host-controller frame format (UM0701-02 section 6.2), both directions.

    information frame: 00 00 FF LEN LCS TFI PD0..PDn DCS 00
    extended frame:    00 00 FF FF FF LENM LENL LCS TFI PD0..PDn DCS 00
    ACK:               00 00 FF 00 FF 00
    NACK:              00 00 FF FF 00 00
    error frame:       00 00 FF 01 FF 7F 81 00

LEN counts TFI plus data; LCS makes LEN + LCS == 0 (mod 256) and DCS makes TFI + data + DCS
== 0 (mod 256). TFI is D4 host -> chip and D5 chip -> host. The parser keys on the start code
00 FF only: the preamble and postamble are optional on the wire and a wake-up burst (0x55...)
before a command is just noise to skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import structlog

from edgegate.hardware.base import ReaderCounters

log = structlog.get_logger(__name__)

START = b"\x00\xff"
PREAMBLE = b"\x00\x00\xff"
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
TFI_HOST = 0xD4
TFI_CHIP = 0xD5
TFI_ERROR = 0x7F
# The PN532's own buffer is 265 bytes; anything announced longer is noise that happened to
# look like a header, and waiting for it would stall the parser.
MAX_LEN = 265
# What the host sends to wake the chip from power-down / low-VBAT in HSU mode: 0x55 pulses the
# line long enough, then a long preamble of zeros before the first command (UM0701 7.2.11).
WAKEUP = b"\x55\x55" + bytes(14)


class Kind(Enum):
    ACK = "ack"
    NACK = "nack"
    ERROR = "error"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    tfi: int = 0
    data: bytes = b""

    @property
    def command(self) -> int | None:
        """The command code (first data byte) of an information frame."""
        return self.data[0] if self.kind is Kind.DATA and self.data else None


def encode(tfi: int, data: bytes) -> bytes:
    """An information frame (an extended one when TFI + data exceed 255 bytes)."""
    body = bytes([tfi]) + data
    n = len(body)
    if n > MAX_LEN:
        raise ValueError(f"a PN532 frame carries at most {MAX_LEN} bytes, not {n}")
    dcs = (-sum(body)) & 0xFF
    if n <= 0xFF:
        head = bytes([n, (-n) & 0xFF])
    else:
        hi, lo = n >> 8, n & 0xFF
        head = bytes([0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF])
    return PREAMBLE + head + body + bytes([dcs, 0x00])


def command(code: int, params: bytes = b"") -> bytes:
    """A host-to-chip command frame."""
    return encode(TFI_HOST, bytes([code]) + params)


def response(code: int, data: bytes = b"") -> bytes:
    """A chip-to-host response frame: its command code is the request's plus one."""
    return encode(TFI_CHIP, bytes([code]) + data)


def to_bytes(frame: Frame) -> bytes:
    if frame.kind is Kind.ACK:
        return ACK
    if frame.kind is Kind.NACK:
        return NACK
    if frame.kind is Kind.ERROR:
        return ERROR
    return encode(frame.tfi, frame.data)


class FrameParser:
    """Incremental parser: feed any bytes, get the frames that are whole and valid.

    Never raises on input. Bad LCS or DCS counts ``bad_checksum``; a wrong TFI, an impossible
    length or an empty frame counts ``bad_frames``; bytes outside any frame that are not
    preamble zeros count ``noise_bytes``. After a rejected header the parser resyncs one byte
    past the start code it rejected, so a real frame hidden behind a false start is found.
    """

    def __init__(self, counters: ReaderCounters | None = None, *, tfi: int | None = None) -> None:
        self.counters = counters if counters is not None else ReaderCounters()
        self.tfi = tfi  # the direction this side receives: D5 on the host, D4 on the chip
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def _skip(self, n: int) -> None:
        self.counters.noise_bytes += sum(1 for b in self._buf[:n] if b != 0)
        del self._buf[:n]

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        out: list[Frame] = []
        while True:
            start = buf.find(START)
            if start < 0:
                # Keep a trailing 00: it may be the first half of the next start code.
                self._skip(len(buf) - 1 if buf.endswith(b"\x00") else len(buf))
                return out
            self._skip(start)
            frame, used = self._one()
            if used == 0:
                return out  # incomplete: wait for more bytes
            if frame is None:
                del buf[:1]  # resync after this start code's 00
                continue
            del buf[:used]
            out.append(frame)

    def _reject(self, what: str) -> tuple[None, int]:
        if what == "checksum":
            self.counters.bad_checksum += 1
        else:
            self.counters.bad_frames += 1
        log.debug("pn532_frame_rejected", problem=what, head=bytes(self._buf[:8]).hex())
        return None, -1

    def _one(self) -> tuple[Frame | None, int]:
        """Parse at buf[0:2] == 00 FF. Returns (frame, bytes used); used 0 = need more,
        frame None with used -1 = rejected."""
        buf = self._buf
        if len(buf) < 4:
            return None, 0
        n, lcs = buf[2], buf[3]
        if n == 0x00 and lcs == 0xFF:
            return Frame(Kind.ACK), 4
        if n == 0xFF and lcs == 0x00:
            return Frame(Kind.NACK), 4
        if n == 0xFF and lcs == 0xFF:
            if len(buf) < 7:
                return None, 0
            hi, lo, lcs = buf[4], buf[5], buf[6]
            if (hi + lo + lcs) & 0xFF:
                return self._reject("checksum")
            n, body_at = (hi << 8) | lo, 7
        else:
            if (n + lcs) & 0xFF:
                return self._reject("checksum")
            body_at = 4
        if n == 0 or n > MAX_LEN:
            return self._reject("length")
        end = body_at + n + 1  # body plus DCS; the postamble is not required
        if len(buf) < end:
            return None, 0
        body = bytes(buf[body_at : end - 1])
        if (sum(body) + buf[end - 1]) & 0xFF:
            return self._reject("checksum")
        tfi = body[0]
        if tfi == TFI_ERROR and n == 1:
            return Frame(Kind.ERROR, tfi), end
        if tfi not in (TFI_HOST, TFI_CHIP) or (self.tfi is not None and tfi != self.tfi):
            return self._reject("tfi")
        return Frame(Kind.DATA, tfi, body[1:]), end
